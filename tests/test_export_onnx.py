"""ONNX export: bundle contents, manifest checksums, parity with PyTorch, dynamic batch and
text length, atomic writes."""
import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="export needs onnx (pip install -e '.[test]')")
ort = pytest.importorskip("onnxruntime", reason="export needs onnxruntime (pip install -e '.[test]')")

from instancevg.export import export_onnx
from instancevg.export.parity import check_parity
from instancevg.runtime.bundle import MANIFEST_NAME, sha256_file

from instancevg.data.dataset import ProceduralGroundingDataset


def test_bundle_files_and_manifest(tiny_bundle, tiny_export_model):
    cfg = tiny_export_model.config
    m = json.loads((tiny_bundle / MANIFEST_NAME).read_text())
    assert set(m["files"]) == {"text_encoder.onnx", "grounder.onnx", "tokenizer.json"}
    for name, entry in m["files"].items():
        assert entry["sha256"] == sha256_file(tiny_bundle / name)
        assert entry["bytes"] == (tiny_bundle / name).stat().st_size
    assert m["opset"] >= 17
    assert m["input"]["image_size"] == cfg.image_size
    assert m["input"]["mean"] == list(cfg.image_mean) and m["input"]["std"] == list(cfg.image_std)
    assert m["thresholds"] == {"score": cfg.score_threshold, "mask": cfg.mask_threshold, "nms_iou": cfg.nms_iou,
                               "consistency": cfg.consistency}
    assert m["max_text_len"] == cfg.max_text_len
    assert m["versions"]["torch"] == torch.__version__ and m["versions"]["onnx"] == onnx.__version__
    # no temporary directories left beside the bundle
    assert [p.name for p in tiny_bundle.parent.iterdir()] == [tiny_bundle.name]


def test_graphs_pass_checker_with_symbolic_axes(tiny_bundle):
    for name, axes in (("text_encoder.onnx", {"input_ids": (0, 1), "attention_mask": (0, 1)}),
                       ("grounder.onnx", {"image": (0,), "text_features": (0, 1), "text_mask": (0, 1)})):
        model = onnx.load(str(tiny_bundle / name))
        onnx.checker.check_model(model)
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
        inputs = {i.name: i.type.tensor_type.shape.dim for i in model.graph.input}
        assert set(inputs) == set(axes)
        for inp, dyn in axes.items():
            for ax in dyn:
                assert inputs[inp][ax].dim_param, f"{name}:{inp} axis {ax} is static"
        ops = {n.op_type for n in model.graph.node}
        if name == "grounder.onnx":
            # its own symbol: one image may serve a batch of expressions
            assert inputs["image"][0].dim_param != inputs["text_features"][0].dim_param
            assert "GridSample" in ops  # MSDeformAttn traced through the grid_sample reference


def test_parity_on_procedural_test_samples(tiny_bundle, tiny_export_model):
    data = ProceduralGroundingDataset(tiny_export_model.config, seed=0, split="test", length=8, offset=100,
                                      full_masks=True)
    report = check_parity(tiny_export_model, tiny_bundle, data)
    assert report["n"] == 8
    assert report["kept_instances"] > 0, "threshold keeps nothing: the test would not compare instances"
    assert report["passed"], report
    assert report["max_box_diff_kept"] <= 1e-3 and report["min_union_iou"] >= 0.99


@pytest.mark.parametrize("batch,length,image_batch", [(1, 3, 1), (3, 9, 3), (2, 24, 2), (3, 9, 1)])
def test_dynamic_batch_and_text_length(tiny_bundle, tiny_export_model, batch, length, image_batch):
    """image_batch 1: one image shared by every expression (the runtime's call), compared with
    PyTorch on the image repeated per expression."""
    cfg = tiny_export_model.config
    g = torch.Generator().manual_seed(batch * 100 + length)
    ids = torch.randint(1000, 20000, (batch, length), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[0, max(2, length - 2):] = 0
    image = torch.randn(image_batch, 3, cfg.image_size, cfg.image_size, generator=g)
    with torch.no_grad():
        feats = tiny_export_model.encode_text(ids, mask)
        ref = tiny_export_model.ground(image.expand(batch, -1, -1, -1), feats, mask)
    te = ort.InferenceSession(str(tiny_bundle / "text_encoder.onnx"), providers=["CPUExecutionProvider"])
    gr = ort.InferenceSession(str(tiny_bundle / "grounder.onnx"), providers=["CPUExecutionProvider"])
    f = te.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    assert f.shape == (batch, length, 384)
    valid = mask.numpy().astype(bool)
    np.testing.assert_allclose(f[valid], feats.numpy()[valid], atol=1e-4)
    scores, boxes, inst, glob, exist = gr.run(None, {"image": image.numpy(), "text_features": feats.numpy(),
                                                     "text_mask": mask.numpy()})
    m = cfg.mask_size
    assert inst.shape == (batch, cfg.num_queries, m, m) and glob.shape == (batch, 1, m, m)
    np.testing.assert_allclose(scores, ref.scores.numpy(), atol=1e-4)
    np.testing.assert_allclose(boxes, ref.pred_boxes.numpy(), atol=1e-4)
    np.testing.assert_allclose(exist, ref.existence.numpy(), atol=1e-3)
    np.testing.assert_allclose(inst, ref.pred_masks.numpy(), atol=1e-3)


def test_failed_export_keeps_the_old_bundle(tiny_bundle, tiny_export_model, tmp_path, monkeypatch):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "manifest.json").write_text("old")

    def boom(*args, **kwargs):
        raise export_onnx.ExportError("simulated failure")

    monkeypatch.setattr(export_onnx, "_export_graph", boom)
    with pytest.raises(export_onnx.ExportError, match="simulated"):
        export_onnx.export_bundle(tiny_export_model, target)
    assert (target / "manifest.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_export_rejects_old_opset(tiny_export_model, tmp_path):
    with pytest.raises(ValueError, match="opset"):
        export_onnx.export_bundle(tiny_export_model, tmp_path / "b", opset=16)
    assert not (tmp_path / "b").exists()


def test_cli_reports_a_bad_checkpoint(tmp_path, capsys):
    assert export_onnx.main(["--out", str(tmp_path / "b"), "--checkpoint", str(tmp_path / "missing.safetensors")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_cli_check_without_data_fails_before_exporting(tmp_path, capsys):
    """--check on a missing data directory: one clear error, exit 2, and no bundle written
    (the shipped model is not exported for nothing)."""
    code = export_onnx.main(["--out", str(tmp_path / "b"), "--check", "--data", str(tmp_path / "nodata")])
    assert code == 2
    err = capsys.readouterr().err
    assert "nodata" in err and "make-data" in err and err.count("\n") == 1
    assert not (tmp_path / "b").exists()


def test_evaluate_bundle_cli_reports_missing_data_and_bundle(tmp_path, capsys):
    from instancevg.data.make_data import make_data
    from instancevg.export import evaluate_bundle

    assert evaluate_bundle.main(["--bundle", str(tmp_path / "nobundle"), "--data", str(tmp_path / "nodata")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "dataset.json" in err and err.count("\n") == 1
    make_data(tmp_path / "data", seed=1, n_train=0, n_val=0, n_test=1, progress=False)
    assert evaluate_bundle.main(["--bundle", str(tmp_path / "nobundle"), "--data", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nobundle" in err and err.count("\n") == 1


def test_cli_on_a_fresh_clone_needs_no_data_and_makes_folders(tiny_export_model, tmp_path, monkeypatch, capsys):
    """The README's export line on a fresh clone: no data/procedural, no bundles/ folder."""
    from instancevg.checkpoint import save_model

    ckpt = tmp_path / "tiny.safetensors"
    save_model(tiny_export_model, ckpt)
    monkeypatch.chdir(tmp_path)
    assert export_onnx.main(["--out", "outputs/bundles/edge", "--checkpoint", str(ckpt), "--check", "--n", "3"]) == 0
    assert (tmp_path / "outputs" / "bundles" / "edge" / MANIFEST_NAME).is_file()
    assert "parity on 3 held-out samples: PASS" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs", "tiny.safetensors"]  # nothing else written


def test_procedural_default_is_the_make_data_test_split(tiny_export_model, tmp_path):
    """--data procedural renders in memory exactly the samples `make-data --seed 0` writes."""
    from instancevg.data.make_data import make_data
    from instancevg.export.parity import load_test_dataset

    make_data(tmp_path / "data", seed=0, n_train=0, n_val=0, n_test=3, progress=False)
    cfg = tiny_export_model.config
    rendered, read = load_test_dataset(cfg, "procedural", 3), load_test_dataset(cfg, str(tmp_path / "data"), 3)
    assert len(rendered) == len(read) == 3
    for a, b in zip(rendered, read):
        assert a["text"] == b["text"]
        torch.testing.assert_close(a["image"], b["image"])
        torch.testing.assert_close(a["target"]["boxes_xyxy"], b["target"]["boxes_xyxy"], atol=1e-3, rtol=0)
        assert (a["target"]["union_full"] == b["target"]["union_full"]).all()


def test_evaluate_bundle_scores_as_instancevg_eval(tiny_bundle, tiny_export_model):
    # One scorer serves both: the bundle under the runtime and the PyTorch model on the same
    # samples report the same metrics under the same keys (the tiny model keeps about half its
    # queries, so the scores are not all zero).
    from instancevg.evaluation.evaluate import evaluate, headline
    from instancevg.export.evaluate_bundle import evaluate_bundle
    from instancevg.export.parity import load_test_dataset

    m = evaluate_bundle(tiny_bundle, limit=4)
    t = evaluate(tiny_export_model, load_test_dataset(tiny_export_model.config, "procedural", 4), progress=False)
    assert m["n_samples"] == t["n_samples"] == 4
    assert set(m) == set(t) and set(m["REC"]) == set(t["REC"]) and m["consistency"]["point in mask"] is None
    for key, value in headline(t).items():
        assert headline(m)[key] == pytest.approx(value, abs=1e-6, nan_ok=True), key
