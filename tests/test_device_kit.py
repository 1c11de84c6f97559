"""tools/device_kit.py: the MiniLM carried to a GPU machine gives the same procedural text features."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _kit_module():
    spec = importlib.util.spec_from_file_location("device_kit", ROOT / "tools" / "device_kit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FEATURES = """
import sys, torch
from instancevg.data.generators.procedural import render_sample
from instancevg.modeling.text_encoder import MiniLMTextEncoder, TextTokenizer, minilm_dir
texts = [render_sample(2, 7_000_000 + i, "test").expression for i in range(24)]
ids, mask = TextTokenizer(40)(texts)
torch.save({"features": MiniLMTextEncoder(6)(ids, mask), "mask": mask, "dir": str(minilm_dir())}, sys.argv[1])
"""


def test_pack_unpack_round_trip(tmp_path):
    kit = _kit_module()
    path = kit.pack(tmp_path / "kit", n_samples=100, n_check=300)
    assert path.stat().st_size < 24 * 2**20  # fits beside the repository in one 64 MiB call
    kit.unpack(tmp_path / "kit", tmp_path / "site")
    results = {}
    for name, pythonpath in (("original", ""), ("rebuilt", str(tmp_path / "site"))):
        out = tmp_path / f"{name}.pt"
        env = {"PYTHONPATH": pythonpath, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-c", FEATURES, str(out)], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results[name] = torch.load(out)
    assert results["rebuilt"]["dir"].startswith(str(tmp_path))  # the rebuilt package was the one loaded
    valid = results["original"]["mask"].bool()
    a, b = results["rebuilt"]["features"][valid], results["original"]["features"][valid]
    assert ((a - b).norm() / b.norm()).item() < 5e-3  # fp16 rounding of the weights only
