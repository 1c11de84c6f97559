"""TensorRT engine builder (instancevg.runtime.engine_build, and export/build_engine.py on it):
what runs without TensorRT (arguments, the missing-TensorRT message, precision checks, profile
shapes); the build itself only where TensorRT and a GPU exist."""
import argparse
import json
import sys
from dataclasses import replace

import pytest
from instancevg.export import build_engine as script
from instancevg.runtime import engine_build as build_engine
from instancevg.runtime.bundle import BundleError
from instancevg.runtime.decision import Decision
from instancevg.runtime.manifest import InputSpec, Manifest


def _parse(argv, bundle_required=False):
    p = argparse.ArgumentParser()
    build_engine.add_arguments(p, bundle_required=bundle_required)
    return p.parse_args(argv)

MANIFEST = Manifest(input=InputSpec(320, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), decision=Decision(), max_text_len=40,
                    graphs={}, text_dim=384, precision="fp32")


def test_profile_shapes():
    shapes = build_engine.profile_shapes(MANIFEST, max_batch=4, opt_batch=2, opt_text_len=12)
    assert shapes["grounder"]["image"] == ((1, 3, 320, 320), (1, 3, 320, 320), (4, 3, 320, 320))
    assert shapes["grounder"]["text_features"] == ((1, 2, 384), (2, 12, 384), (4, 40, 384))
    assert shapes["grounder"]["text_mask"] == ((1, 2), (2, 12), (4, 40))
    assert shapes["text_encoder"]["input_ids"] == shapes["text_encoder"]["attention_mask"] == ((1, 2), (2, 12), (4, 40))
    # opt text length is clipped into [2, max_text_len]
    assert build_engine.profile_shapes(MANIFEST, opt_text_len=100)["text_encoder"]["input_ids"][1] == (1, 40)
    for bad in ({"max_batch": 0}, {"max_batch": 2, "opt_batch": 3}):
        with pytest.raises(ValueError, match="opt_batch"):
            build_engine.profile_shapes(MANIFEST, **bad)


def test_arguments():
    args = _parse(["--fp16"])
    assert args.fp16 and not args.int8 and args.bundle is None and args.workspace == 2048
    args = _parse(["--int8", "--bundle", "b", "--timing-cache", "t.cache", "--workspace", "512"])
    assert args.int8 and str(args.bundle) == "b" and str(args.timing_cache) == "t.cache" and args.workspace == 512
    for bad in ([], ["--fp16", "--int8"], ["--fp16", "--workspace", "0"]):
        with pytest.raises(SystemExit):
            _parse(bad)
    with pytest.raises(SystemExit):
        _parse(["--fp16"], bundle_required=True)


def test_missing_tensorrt_message(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` raise ImportError
    assert script.main(["--fp16", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "TensorRT is not installed" in err
    assert not (tmp_path / "b").exists()  # nothing exported or faked
    with pytest.raises(ImportError):
        build_engine.build_bundle_engines(tmp_path, "fp16")


def test_precision_checks(tmp_path, capsys):
    with pytest.raises(BundleError, match="quantize.py"):
        build_engine.check_precision(MANIFEST, "int8")
    uint8 = replace(MANIFEST, precision="int8", quantization={"activations": "uint8 asymmetric per-tensor"})
    with pytest.raises(BundleError, match="symmetric int8"):
        build_engine.check_precision(uint8, "int8")
    build_engine.check_precision(replace(uint8, quantization={"activations": "int8 symmetric per-tensor"}), "int8")
    build_engine.check_precision(MANIFEST, "fp16")
    assert script.main(["--int8"]) == 2
    assert "Q/DQ bundle" in capsys.readouterr().err
    assert script.main(["--fp16", "--bundle", str(tmp_path / "none")]) == 2
    with pytest.raises(SystemExit):  # the runtime's own command has no shipped model to export
        build_engine.main(["--fp16"])


def test_int8_refused_on_fp32_bundle(tiny_bundle, capsys):
    assert build_engine.main(["--int8", "--bundle", str(tiny_bundle)]) == 2
    assert "Q/DQ" in capsys.readouterr().err


def test_fp16_engine_build(tiny_bundle, tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (it needs a CUDA GPU; none here)")
    out = build_engine.build_bundle_engines(tiny_bundle, "fp16", out=tmp_path / "trt", workspace_mib=512,
                                            timing_cache=tmp_path / "timing.cache", max_batch=2)
    m = json.loads((out / "manifest.json").read_text())
    assert set(m["engines"]["fp16"]) >= {"text_encoder", "grounder", "tensorrt"}
    assert (tmp_path / "timing.cache").stat().st_size > 0
