"""`instancevg` command line: ground (shipped model and a given checkpoint), eval, errors."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import skimage
import torch
from PIL import Image

from instancevg.api import DEFAULT_WEIGHTS, InstanceVG
from instancevg.checkpoint import save_model
from instancevg.cli import build_parser, main
from instancevg.config import get_preset
from instancevg.data.make_data import make_data
from instancevg.image_io import load_image
from instancevg.modeling.model import InstanceVGModel

COFFEE = os.path.join(skimage.data.data_dir, "coffee.png")


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_model(InstanceVGModel(get_preset("edge-tiny")), path)
    return path


def _run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_ground_shipped_model_on_real_photo(tmp_path):
    """The README's main command: shipped default model, real photo, overlay PNG."""
    assert DEFAULT_WEIGHTS.is_file(), "the default model must ship with the package"
    assert DEFAULT_WEIGHTS.stat().st_size <= 25 * 2**20
    out = tmp_path / "overlay.png"
    proc = subprocess.run([sys.executable, "-m", "instancevg.cli", "ground", "--image", COFFEE, "--text",
                           "the white object", "--out", str(out), "--json"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "instancevg.ground/1" and doc["image"] == COFFEE
    assert doc["checkpoint"] == str(DEFAULT_WEIGHTS) and len(doc["results"]) == 1
    result = doc["results"][0]
    h, w = load_image(COFFEE).shape[:2]
    assert result["image_size"] == [h, w]
    assert result["no_target"] == (len(result["instances"]) == 0)
    for inst in result["instances"]:
        x0, y0, x1, y1 = inst["box_xyxy"]
        assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
        assert 0.7 < inst["score"] <= 1.0
    assert load_image(out).shape == (h, w, 3)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_ground_accepts_gray_rgba_any_size(tiny_ckpt, tmp_path, capsys, mode):
    rng = np.random.default_rng(0)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    arr = rng.integers(0, 255, (37, 91, channels), dtype=np.uint8).squeeze()
    path = tmp_path / f"img_{mode}.png"
    Image.fromarray(arr, mode).save(path)
    code, out, _ = _run(["ground", "--image", str(path), "--text", "the red circle", "--checkpoint",
                         str(tiny_ckpt), "--json", "--out", str(tmp_path / "o.png")], capsys)
    assert code == 0
    res = json.loads(out)["results"][0]
    assert res["image_size"] == [37, 91]
    assert load_image(tmp_path / "o.png").shape == (37, 91, 3)


def test_ground_text_output(tiny_ckpt, capsys):
    code, out, _ = _run(["ground", "--image", COFFEE, "--text", "the cup", "--checkpoint", str(tiny_ckpt)], capsys)
    assert code == 0
    assert out.startswith('"the cup":') and ("no target" in out or "instance(s)" in out)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--image", "/nonexistent/x.png", "--text", "a"], "x.png"),
        (["--image", COFFEE, "--text", "   "], "empty"),
        (["--image", COFFEE, "--text", "\u200b"], "empty"),       # zero-width space
        (["--image", COFFEE, "--text", "\ufeff\u00ad"], "empty"),  # BOM, soft hyphen
        (["--image", COFFEE, "--text", "\x00\x07 \t"], "empty"),  # NUL, BEL, whitespace
        (["--image", COFFEE, "--text", "a", "--device", "gpu"], "unknown device 'gpu'"),
        (["--image", COFFEE, "--text", "a", "--device", "cuda:x"], "unknown device"),
        (["--image", COFFEE, "--text", "a", "--checkpoint", "/nonexistent/model.safetensors"], "not found"),
    ],
)
def test_ground_errors_are_one_line(args, fragment, capsys, tiny_ckpt):
    code, _, err = _run(["ground", *args] + ([] if "--checkpoint" in args else ["--checkpoint", str(tiny_ckpt)]),
                        capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("instancevg: error:") and fragment in err


def test_ground_corrupt_image_and_checkpoint(tmp_path, capsys, tiny_ckpt):
    bad_img = tmp_path / "bad.jpg"
    bad_img.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    code, _, err = _run(["ground", "--image", str(bad_img), "--text", "a", "--checkpoint", str(tiny_ckpt)], capsys)
    assert code == 2 and "bad.jpg" in err and err.count("\n") == 1
    bad_ckpt = tmp_path / "bad.safetensors"
    bad_ckpt.write_bytes(os.urandom(256))
    code, _, err = _run(["ground", "--image", COFFEE, "--text", "a", "--checkpoint", str(bad_ckpt)], capsys)
    assert code == 2 and "bad.safetensors" in err and err.count("\n") == 1


def test_api_matches_cli(tiny_ckpt, capsys):
    model = InstanceVG.from_pretrained(tiny_ckpt, device="cpu")
    res = model.ground(COFFEE, "the cup")
    code, out, _ = _run(["ground", "--image", COFFEE, "--text", "the cup", "--checkpoint", str(tiny_ckpt), "--json"],
                        capsys)
    assert code == 0
    assert json.loads(out)["results"] == json.loads(json.dumps([res.to_dict()]))
    assert res.masks.shape[1:] == res.union_mask.shape == load_image(COFFEE).shape[:2]


def test_ground_several_expressions(tiny_ckpt, tmp_path, capsys):
    """Repeated --text: one result per expression, as ground with a list gives them, one overlay each."""
    texts = ["the cup", "all saucers on the left"]
    base = ["ground", "--image", COFFEE, "--checkpoint", str(tiny_ckpt)]
    for t in texts:
        base += ["--text", t]
    code, out, _ = _run([*base, "--json", "--out", str(tmp_path / "ov.png")], capsys)
    assert code == 0
    want = InstanceVG.from_pretrained(tiny_ckpt, device="cpu").ground(COFFEE, texts)
    doc = json.loads(out)
    assert doc["schema"] == "instancevg.ground/1" and doc["checkpoint"] == str(tiny_ckpt)
    assert doc["results"] == json.loads(json.dumps([r.to_dict() for r in want]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ov-1.png", "ov-2.png"]
    first, second = load_image(tmp_path / "ov-1.png"), load_image(tmp_path / "ov-2.png")
    assert second.shape == load_image(COFFEE).shape
    assert (first != second).any()  # each overlay is labelled with its own expression
    code, out, _ = _run(base, capsys)
    assert code == 0 and [line.split(":")[0] for line in out.splitlines() if line.startswith('"')] == [
        f'"{t}"' for t in texts]
    code, _, err = _run([*base, "--text", " "], capsys)
    assert code == 2 and "--text 3 is empty" in err


def test_ground_list_matches_single_calls(tiny_ckpt):
    """ground with a list shares one backbone pass between expressions; each result must equal the
    result of grounding that expression alone."""
    model = InstanceVG.from_pretrained(tiny_ckpt, device="cpu")
    texts = ["the cup", "all saucers on the left", "the second spoon"]
    many = model.ground(COFFEE, texts)
    assert [r.text for r in many] == texts
    for text, r in zip(texts, many):
        one = model.ground(COFFEE, text)
        np.testing.assert_allclose(r.extra["all_scores"], one.extra["all_scores"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(r.extra["all_boxes"], one.extra["all_boxes"], rtol=1e-4, atol=1e-3)
        assert r.no_target == one.no_target
        assert (r.union_mask == one.union_mask).mean() > 0.999
    # different expressions must give different outputs (the text reaches the network)
    assert not np.allclose(many[0].extra["all_scores"], many[1].extra["all_scores"])


def test_eval_writes_metrics(tiny_ckpt, tmp_path, capsys):
    data = tmp_path / "data"
    make_data(data, seed=5, n_train=0, n_val=0, n_test=3, progress=False)
    out = tmp_path / "m.json"
    code, text, _ = _run(["eval", "--checkpoint", str(tiny_ckpt), "--data", str(data), "--split", "test",
                          "--out", str(out)], capsys)
    assert code == 0
    metrics = json.loads(out.read_text())
    assert metrics["n_samples"] == 3 and metrics["split"] == "test"
    assert "GREC" in metrics and "GRES" in metrics
    assert "GRES cIoU" in text


def test_eval_released_format_with_shipped_model_by_default(tmp_path, capsys, monkeypatch):
    """`instancevg eval --data grefcoco:ROOT --split val` needs no --checkpoint."""
    from released_formats import write_grefcoco

    root = write_grefcoco(tmp_path / "g")
    monkeypatch.chdir(tmp_path)
    code, text, err = _run(["eval", "--data", f"grefcoco:{root}", "--split", "val"], capsys)
    assert code == 0, err
    assert "GREC Pr@(F1=1,IoU>=0.5)" in text and "samples" in text
    metrics = json.loads((tmp_path / "runs" / "eval" / "metrics_grefcoco_val.json").read_text())
    assert metrics["n_samples"] == 1 and metrics["checkpoint"] == str(DEFAULT_WEIGHTS)
    assert metrics["data"] == f"grefcoco:{root}"
    code, _, err = _run(["eval", "--data", f"grefcoco:{root}", "--split", "testB"], capsys)
    assert code == 2 and "unknown split 'testB'" in err


def test_make_data_cli_is_deterministic(tmp_path, capsys):
    for name in ("a", "b"):
        assert main(["make-data", "--out", str(tmp_path / name), "--seed", "9", "--n-val", "2", "--n-test", "2"]) == 0
    capsys.readouterr()
    a = (tmp_path / "a" / "dataset.json").read_bytes()
    assert a == (tmp_path / "b" / "dataset.json").read_bytes()
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert len(files) == 4
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a torch without a usable GPU")
@pytest.mark.parametrize("command", [["ground", "--image", COFFEE, "--text", "a"],
                                     ["eval", "--data", "procedural:/nonexistent"],
                                     ["train", "--data", "procedural:/nonexistent", "--out", "x"]])
def test_cuda_without_gpu_is_one_line(command, capsys):
    code, _, err = _run([*command, "--device", "cuda"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "device 'cuda'" in err and "--device cpu" in err


def test_version_and_help_describe_every_option(capsys):
    from instancevg import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"instancevg {__version__}"
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sp in sub.choices.items():
        assert sp.description, f"instancevg {name} has no description"
        for action in sp._actions:
            if action.dest != "help":
                assert action.help, f"instancevg {name} {action.option_strings} has no help text"
    assert "edge" in sub.choices["train"].format_help()  # allowed --preset values are listed
