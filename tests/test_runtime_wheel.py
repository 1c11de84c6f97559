"""The torch-free runtime as its own distribution: build the ``instancevg-runtime`` wheel
(tools/build_runtime_wheel.py), install it in a fresh virtual environment (no torch, no
system site-packages; its requirements come from PyPI) and, there: ground a real photo with an
exported bundle (getting what the runtime in this environment gets), run the camera loop with
tracking on a short video, and run ``export/build_engine.py`` (TensorRT absent: one line, exit 2)."""
import importlib.util
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

from videos import pan_video

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the bundle fixture needs onnxruntime (pip install -e '.[test]')")
skimage_data = pytest.importorskip("skimage.data", reason="the real photo comes from scikit-image")

ROOT = Path(__file__).resolve().parents[1]
GROUND = """
import json, sys
import cv2
from instancevg.runtime import Grounder
g = Grounder.from_bundle(sys.argv[1])
r = g.ground(cv2.imread(sys.argv[2]), ["the cup", "all mugs"])
print(json.dumps({"torch": any(m.split(".")[0] == "torch" for m in sys.modules),
                  "where": sys.modules["instancevg.runtime"].__file__,
                  "results": [{"no_target": x.no_target, "boxes": x.boxes.tolist(), "scores": x.scores.tolist(),
                               "union": int(x.union_mask.sum())} for x in r]}))
"""


def _load_tool():
    spec = importlib.util.spec_from_file_location("build_runtime_wheel", ROOT / "tools" / "build_runtime_wheel.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_wheel_metadata_lists_the_runtime_requirements_only(tmp_path):
    tool = _load_tool()
    text = tool.pyproject()
    assert 'name = "instancevg-runtime"' in text and 'packages = ["instancevg.runtime"]' in text
    assert tool.runtime_requirements() == ["numpy", "opencv-python-headless", "tokenizers", "onnxruntime>=1.17",
                                           "scipy"]
    assert 'instancevg-runtime = "instancevg.runtime.cli:main"' in text
    deps = next(line for line in text.splitlines() if line.startswith("dependencies"))
    assert "torch" not in deps and "onnxruntime" in deps


def test_runtime_wheel_installs_and_grounds_a_photo_without_torch(tiny_bundle, tmp_path):
    wheel = _load_tool().build_wheel(tmp_path / "dist")
    names = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True).stdout
    assert "instancevg/runtime/grounder.py" in names and "instancevg/__init__.py" not in names
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                         env=clean_env, timeout=900)
    assert pip.returncode == 0, f"pip install of the runtime wheel failed: {pip.stderr.strip()[-500:]}"
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                            env=clean_env)
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "instancevg-runtime" in installed and "torch" not in installed, sorted(installed)

    photo = os.path.join(skimage_data.data_dir, "coffee.png")
    run = subprocess.run([str(python), "-c", GROUND, str(tiny_bundle), photo], capture_output=True, text=True,
                         env=clean_env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr.strip()[-800:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert not got["torch"], "the installed runtime imported torch"
    assert str(env_dir) in got["where"], f"imported the runtime from {got['where']}, not the wheel"

    from instancevg.runtime import Grounder  # the same code, in this environment

    expected = Grounder.from_bundle(tiny_bundle).ground(cv2.imread(photo), ["the cup", "all mugs"])
    assert len(got["results"]) == len(expected) == 2
    for a, b in zip(got["results"], expected):
        assert a["no_target"] == b.no_target and a["union"] == int(b.union_mask.sum())
        np.testing.assert_allclose(np.asarray(a["boxes"]).reshape(-1, 4), b.boxes, atol=1e-3)
        np.testing.assert_allclose(a["scores"], b.scores, atol=1e-5)

    # the camera loop, as the robot runs it: the wheel's console script on a video made here
    video = pan_video(tmp_path / "pan.mp4", n=6)
    looped = subprocess.run([str(env_dir / "bin" / "instancevg-runtime"), "loop", "--bundle", str(tiny_bundle),
                             "--source", str(video), "--text", "the cup", "--no-show", "--json"],
                            capture_output=True, text=True, env=clean_env, cwd=tmp_path, timeout=300)
    assert looped.returncode == 0, looped.stderr.strip()[-800:]
    frames = [json.loads(line) for line in looped.stdout.splitlines()]
    assert [f["frame"] for f in frames] == list(range(6))

    # engine building: the design card's command and the wheel's, both without TensorRT here
    for cmd in ([str(python), str(ROOT / "export" / "build_engine.py"), "--bundle", str(tiny_bundle), "--fp16"],
                [str(env_dir / "bin" / "instancevg-runtime"), "build-engine", "--bundle", str(tiny_bundle), "--fp16"]):
        built = subprocess.run(cmd, capture_output=True, text=True, env=clean_env, cwd=tmp_path, timeout=300)
        assert built.returncode == 2, built.stderr
        assert built.stderr.strip().splitlines() == [built.stderr.strip()] and "TensorRT is not installed" in built.stderr
