"""Torch-free runtime: results against the PyTorch model, no torch import, thread safety,
text cache, and clear errors for bad frames, expressions and bundles."""
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the runtime tests need onnxruntime (pip install -e '.[test]')")

from instancevg.runtime import BundleError, Decision, FrameError, Grounder, GroundingResult
from instancevg.runtime.frames import preprocess_frame
from instancevg.runtime.postprocess import postprocess_one

from instancevg.data.generators.procedural import render_sample
from instancevg.data.transforms import preprocess_image
from instancevg.postprocess import postprocess
from instancevg.modeling.text_encoder import TextTokenizer
from fake_outputs import make_outputs

TEXTS = ["the red circle", "all squares to the left of the big green star", "the third triangle from the right"]


def _iou(a, b):
    u = np.logical_or(a, b).sum()
    return 1.0 if u == 0 else np.logical_and(a, b).sum() / u


@pytest.fixture(scope="module")
def grounder(tiny_bundle):
    return Grounder.from_bundle(tiny_bundle, backend="onnxruntime", threads=1)


@pytest.fixture(scope="module")
def frames():
    """BGR frames of procedural test scenes (varied sizes)."""
    return [cv2.cvtColor(render_sample(0, i, "test").image, cv2.COLOR_RGB2BGR) for i in range(4)]


def test_preprocess_matches_training_transform():
    rgb = render_sample(0, 3, "val").image
    ref = preprocess_image(rgb, 128, (0.4, 0.5, 0.6), (0.2, 0.3, 0.4)).numpy()
    got = preprocess_frame(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), 128, (0.4, 0.5, 0.6), (0.2, 0.3, 0.4))
    assert got.shape == (1, 3, 128, 128) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], ref, atol=1e-5)


def test_numpy_postprocess_matches_torch_postprocess():
    g = torch.Generator().manual_seed(3)
    nq, m, h, w = 7, 20, 53, 81
    scores, boxes = torch.rand(1, nq, generator=g), torch.rand(1, nq, 4, generator=g) * 0.6 + 0.2
    mask_embed, pixel_embed = torch.randn(1, nq, 8, generator=g), torch.randn(1, 8, m, m, generator=g)
    out = make_outputs(scores=scores, pred_boxes=boxes, mask_embed=mask_embed, pixel_embed=pixel_embed,
                       global_mask=torch.randn(1, 1, m, m, generator=g),
                       pred_masks=torch.einsum("bqd,bdhw->bqhw", mask_embed, pixel_embed))
    decision = Decision(score=0.5, mask=0.5, nms_iou=0.7, consistency="off")
    ref = postprocess(out, 0, "x", (h, w), decision)
    got = postprocess_one(out.scores[0].numpy(), out.pred_boxes[0].numpy(), out.pred_masks[0].numpy(),
                          out.global_mask[0].numpy(), "x", (h, w), decision)
    assert got.no_target == ref.no_target and len(got) == len(ref) > 0
    np.testing.assert_allclose(got.scores, ref.scores)
    np.testing.assert_allclose(got.boxes, ref.boxes, atol=1e-4)
    np.testing.assert_allclose(got.extra["all_boxes"], ref.extra["all_boxes"], atol=1e-4)
    assert got.masks.shape == (len(ref), h, w) and got.union_mask.shape == (h, w)
    for a, b in zip(got.masks, ref.masks):
        assert _iou(a, b) >= 0.99
    assert _iou(got.union_mask, ref.union_mask) >= 0.99


def test_ground_matches_pytorch(grounder, tiny_export_model, frames):
    cfg = tiny_export_model.config
    tok = TextTokenizer(cfg.max_text_len)
    kept = 0
    for frame in frames:
        results = grounder.ground(frame, TEXTS)
        assert len(results) == len(TEXTS)
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        x = preprocess_image(rgb, cfg.image_size, cfg.image_mean, cfg.image_std)[None].expand(len(TEXTS), -1, -1, -1)
        ids, mask = tok(TEXTS)
        with torch.no_grad():
            out = tiny_export_model(x, ids, mask)
        for i, r in enumerate(results):
            ref = postprocess(out, i, TEXTS[i], frame.shape[:2], cfg.decision)
            assert r.text == TEXTS[i] and r.image_size == frame.shape[:2]
            assert r.no_target == ref.no_target
            np.testing.assert_allclose(r.scores, ref.scores, atol=1e-4)
            np.testing.assert_allclose(r.boxes, ref.boxes, atol=0.05)  # pixels
            assert r.masks.shape == ref.masks.shape and r.masks.dtype == bool
            assert _iou(r.union_mask, ref.union_mask) >= 0.99
            if r.no_target:
                assert not r.union_mask.any() and r.boxes.shape == (0, 4)
            kept += len(r)
    assert kept > 0, "nothing kept: the comparison would not cover instances"


def test_single_string_and_order(grounder, frames):
    one = grounder.ground(frames[0], TEXTS[1])  # a str: one result, not a list
    listed = grounder.ground(frames[0], [TEXTS[1]])
    many = grounder.ground(frames[0], TEXTS)
    assert isinstance(one, GroundingResult) and isinstance(listed, list) and len(listed) == 1
    np.testing.assert_allclose(one.extra["all_scores"], many[1].extra["all_scores"], atol=1e-5)
    np.testing.assert_array_equal(listed[0].extra["all_scores"], one.extra["all_scores"])


def test_spinning_is_opt_in_and_reaches_both_sessions(tiny_bundle, grounder, frames):
    key = "session.intra_op.allow_spinning"
    sessions = (grounder.backend.text_session, grounder.backend.grounder_session)
    assert [s.get_session_options().get_session_config_entry(key) for s in sessions] == ["0", "0"]
    spinning = Grounder.from_bundle(tiny_bundle, backend="onnxruntime", threads=1, spinning=True)
    sessions = (spinning.backend.text_session, spinning.backend.grounder_session)
    assert [s.get_session_options().get_session_config_entry(key) for s in sessions] == ["1", "1"]
    a, b = grounder.ground(frames[2], TEXTS[0]), spinning.ground(frames[2], TEXTS[0])
    np.testing.assert_array_equal(a.extra["all_scores"], b.extra["all_scores"])


def test_one_image_for_all_expressions(tiny_bundle, frames, monkeypatch):
    g = Grounder.from_bundle(tiny_bundle, backend="onnxruntime", threads=1)
    shapes = []
    real = g.backend.ground

    def spy(image, text_features, text_mask):
        shapes.append((image.shape[0], text_features.shape[0]))
        return real(image, text_features, text_mask)

    monkeypatch.setattr(g.backend, "ground", spy)
    many = g.ground(frames[1], TEXTS)
    assert shapes == [(1, len(TEXTS))]  # one frame, one backbone pass, three expressions
    for i, t in enumerate(TEXTS):  # the same answers as one expression at a time
        np.testing.assert_allclose(g.ground(frames[1], t).extra["all_scores"], many[i].extra["all_scores"],
                                   atol=1e-5)


def test_grounder_batch_mismatch_is_an_error(grounder, frames):
    image = grounder.encode_image(frames[0]).maps
    text = grounder.encode_text(TEXTS)
    two = np.concatenate([image, image])
    with pytest.raises(ValueError, match="image batch 2 must be 1 .* or 3"):
        grounder.backend.ground(two, text.features, text.mask)
    with pytest.raises(ValueError, match="text_mask shape"):
        grounder.backend.ground(image, text.features, text.mask[:2])
    with pytest.raises(ValueError, match="must be image"):
        grounder.backend.ground(image[0], text.features, text.mask)
    three = np.concatenate([image] * 3)  # one image per expression is allowed
    out = grounder.backend.ground(three, text.features, text.mask)
    np.testing.assert_allclose(out["scores"], grounder.backend.ground(image, text.features, text.mask)["scores"],
                               atol=1e-5)


def test_text_cache(tiny_bundle, frames):
    g = Grounder.from_bundle(tiny_bundle, backend="onnxruntime", threads=1)
    calls = []
    real = g.backend.encode_text
    g.backend.encode_text = lambda ids, mask: calls.append(ids.shape) or real(ids, mask)
    a = g.encode_text(TEXTS[:2])
    b = g.encode_text([TEXTS[1], TEXTS[0]])
    assert len(calls) == 1
    np.testing.assert_array_equal(a.features[0], b.features[1])
    assert a.mask.dtype == np.int64 and a.features.shape[:2] == a.mask.shape
    g.encode_text([TEXTS[2], TEXTS[0]])
    assert calls[1][0] == 1  # only the new expression is encoded


def test_threads_match_serial(grounder, frames):
    jobs = [(f, [TEXTS[(i + j) % 3] for j in range(1 + i % 3)]) for i, f in enumerate(frames * 2)]
    serial = [grounder.ground(f, t) for f, t in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:  # exceptions re-raise in result()
        results = [f.result() for f in [pool.submit(grounder.ground, *job) for job in jobs]]
    for s, p in zip(serial, results):
        for a, b in zip(s, p):
            np.testing.assert_array_equal(a.extra["all_scores"], b.extra["all_scores"])
            np.testing.assert_array_equal(a.boxes, b.boxes)
            np.testing.assert_array_equal(a.union_mask, b.union_mask)


@pytest.mark.parametrize("frame,match", [
    (np.zeros((40, 50, 3), np.float32), "dtype must be uint8"),
    (np.zeros((40, 50, 4), np.uint8), "4 channels"),
    (np.zeros((40, 50), np.uint8), "a gray frame with no channel axis\\)"),
    (np.zeros((40, 50, 1), np.uint8), "\\(1 channel\\)"),
    (np.zeros((0, 50, 3), np.uint8), "empty"),
    ([[0, 0, 0]], "numpy array"),
])
def test_bad_frames(grounder, frame, match):
    with pytest.raises(FrameError, match=match):
        grounder.ground(frame, "the red circle")
    with pytest.raises(ValueError, match=match):  # FrameError is a ValueError
        grounder.encode_image(frame)


def test_bad_expressions(grounder, frames):
    for texts in ("", "   ", [], ["ok", ""]):
        with pytest.raises(ValueError, match="expression"):
            grounder.ground(frames[0], texts)
    with pytest.raises(TypeError, match="str"):
        grounder.ground(frames[0], [3])


def test_overlong_expression_is_truncated_with_warning(grounder, frames):
    long_text = " ".join(["the small red circle left of the blue square"] * 10)
    with pytest.warns(UserWarning, match="truncated"):
        r = grounder.ground(frames[0], long_text)
    assert r.text == long_text
    assert grounder.encode_text(long_text).mask.shape[1] == grounder.manifest.max_text_len


def test_bundle_errors(tiny_bundle, tmp_path):
    with pytest.raises(BundleError, match="not found"):
        Grounder.from_bundle(tmp_path / "nope")
    with pytest.raises(ValueError, match="backend"):
        Grounder.from_bundle(tiny_bundle, backend="tflite")
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match="missing"):
        Grounder.from_bundle(copy)
    shutil.copyfile(tiny_bundle / "tokenizer.json", copy / "tokenizer.json")
    with open(copy / "grounder.onnx", "r+b") as f:  # flip one byte
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BundleError, match="checksum mismatch.*grounder.onnx|grounder.onnx.*checksum"):
        Grounder.from_bundle(copy, backend="onnxruntime")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format"] = "something-else/9"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format"):
        Grounder.from_bundle(copy)
    manifest["format"] = "instancevg-edge-bundle/1"  # one image per expression: refused, with the way out
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="re-export .*quantize.py.*build_engine.py"):
        Grounder.from_bundle(copy)


def _edit(manifest: dict, path: str, value) -> dict:
    """A copy of ``manifest`` with the dotted ``path`` set to ``value`` (``DELETE`` removes it)."""
    out = json.loads(json.dumps(manifest))
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out


DELETE = object()


@pytest.mark.parametrize("path, value, match", [
    ("files.grounder.onnx.sha256", DELETE, "files\\['grounder.onnx'\\] needs a 'sha256'"),
    ("thresholds", DELETE, "field 'thresholds' is missing"),
    ("thresholds.score", "high", "field 'thresholds.score' must be a number, got 'high'"),
    ("thresholds.mask", None, "field 'thresholds.mask' must be a number"),
    ("input.image_size", "320", "input.image_size"),
    ("input.std", [1, 0, 1], "std.*positive"),
    ("max_text_len", DELETE, "max_text_len"),
    ("graphs", DELETE, "field 'graphs' is missing"),
])
def test_malformed_manifest_names_the_field(tiny_bundle, tmp_path, path, value, match):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    if path.startswith("files."):  # the file name holds a dot
        entry = dict(manifest["files"]["grounder.onnx"])
        entry.pop("sha256")
        manifest["files"]["grounder.onnx"] = entry
    else:
        manifest = _edit(manifest, path, value)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=match):
        Grounder.from_bundle(copy, backend="onnxruntime")


def test_nms_iou_from_manifest(tiny_bundle, tmp_path):
    assert Grounder.from_bundle(tiny_bundle).decision.nms_iou == json.loads((tiny_bundle / "manifest.json").read_text())[
        "thresholds"]["nms_iou"]
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["thresholds"]["nms_iou"]  # a bundle exported before duplicate suppression existed
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert Grounder.from_bundle(copy).decision.nms_iou == 1.0
    manifest["thresholds"]["nms_iou"] = 0.0
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="thresholds.nms_iou"):
        Grounder.from_bundle(copy)


def test_ground_applies_the_manifest_nms_iou(tiny_bundle, tmp_path, frames, monkeypatch):
    """The Grounder must hand its bundle's threshold to the post-processing (a spy records it)."""
    import instancevg.runtime.grounder as grounder_module

    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["thresholds"]["nms_iou"] = 0.42
    (copy / "manifest.json").write_text(json.dumps(manifest))
    seen = []
    real = grounder_module.postprocess_one

    def spy(*args, **kwargs):
        seen.append((args[6] if len(args) > 6 else kwargs["decision"]).nms_iou)
        return real(*args, **kwargs)

    monkeypatch.setattr(grounder_module, "postprocess_one", spy)
    Grounder.from_bundle(copy).ground(frames[0], TEXTS[:2])
    assert seen == [0.42, 0.42]


def test_tensorrt_backend_without_engines(tiny_bundle):
    with pytest.raises(BundleError, match="no TensorRT engines"):
        Grounder.from_bundle(tiny_bundle, backend="tensorrt")


def test_auto_backend_uses_onnxruntime_without_engines(tiny_bundle):
    assert Grounder.from_bundle(tiny_bundle).backend_name == "onnxruntime"


def test_runtime_never_imports_torch(tiny_bundle):
    code = f"""
import sys
import numpy as np
from instancevg.runtime import Grounder
g = Grounder.from_bundle({str(tiny_bundle)!r})
frame = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
r = g.ground(frame, ["the red circle", "all squares"])
assert len(r) == 2 and r[0].union_mask.shape == (90, 120)
print("torch" in sys.modules, sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")))
"""
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False []", out.stdout


def test_loop_and_robot_example_on_a_video_file(tiny_bundle, frames, tmp_path, capsys, monkeypatch):
    import importlib.util
    from pathlib import Path

    from instancevg.runtime import cli, loop

    video, out = tmp_path / "in.avi", tmp_path / "out.mp4"
    frame = cv2.resize(frames[0], (160, 120))
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (160, 120))
    for _ in range(4):
        writer.write(frame)
    writer.release()
    args = ["loop", "--bundle", str(tiny_bundle), "--source", str(video), "--text", TEXTS[0], "--text", TEXTS[1],
            "--backend", "onnxruntime", "--no-show", "--max-frames", "3", "--spinning", "--out", str(out)]
    assert cli.main(args) == 0
    assert capsys.readouterr().err.startswith("3 frames")
    check = cv2.VideoCapture(str(out))
    ok, first = check.read()
    check.release()
    assert ok and first.shape == (120, 160, 3)
    # as the README shows it (a window asked for), with OpenCV built without GUI support
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  Video I/O:\n  GUI:                           NONE\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["loop", "--bundle", str(tiny_bundle), "--source", str(video), "--text", TEXTS[0],
                     "--max-frames", "2"]) == 0
    err = capsys.readouterr().err
    assert "headless" in err.splitlines()[0] and loop.HEADLESS_OUT in err
    check = cv2.VideoCapture(str(tmp_path / loop.HEADLESS_OUT))
    assert check.read()[0]
    check.release()
    assert loop.opencv_has_gui() is False

    spec = importlib.util.spec_from_file_location(
        "robot_loop", Path(__file__).resolve().parents[1] / "examples" / "robot_loop.py")
    robot_loop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(robot_loop)
    assert robot_loop.main(["--bundle", str(tiny_bundle), "--source", str(video), "--text", TEXTS[0],
                            "--max-frames", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert {line.split(":")[0] for line in lines} == {"frame 0", "frame 1", "frame 2"}
