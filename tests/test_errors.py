"""One exception base class (InstanceVGError) and one exit-status rule for the `instancevg`
command and the export tools: 2 with one line ``error: ...`` on stderr for bad input or an error
raised by the package, 1 only when a check ran and failed."""
from __future__ import annotations

import importlib
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from instancevg.runtime.errors import InstanceVGError

ROOT = Path(__file__).resolve().parents[1]
# source folder -> the package it installs as (setup.py package_dir)
PACKAGES = {"instancevg": "instancevg", "runtime": "instancevg.runtime", "export": "instancevg.export",
            "kernels": "instancevg.kernels"}
ERROR_CLASS = re.compile(r"^class\s+(\w+Error)\b", re.MULTILINE)
KNOWN = {"BackboneUnavailableError", "TextEncoderUnavailableError", "CheckpointError", "ImageLoadError",
         "FrameError", "BundleError", "EngineBuildError", "ExportError"}


def _defined_error_classes() -> list[tuple[str, str]]:
    """(module, class name) of every top-level ``class ...Error`` in the package's source files."""
    found = []
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            module = ".".join([package, *parts])
            found += [(module, name) for name in ERROR_CLASS.findall(path.read_text(encoding="utf-8"))]
    return found


def test_every_error_class_derives_from_instancevg_error():
    found = _defined_error_classes()
    assert KNOWN <= {name for _, name in found}, "the source scan missed known error classes"
    wrong = []
    for module, name in found:
        cls = getattr(importlib.import_module(module), name)
        if not issubclass(cls, InstanceVGError):
            wrong.append(f"{module}.{name}")
    assert not wrong, f"not subclasses of InstanceVGError: {wrong}"


def test_error_classes_keep_their_builtin_base():
    from instancevg.checkpoint import CheckpointError
    from instancevg.image_io import ImageLoadError
    from instancevg.runtime.bundle import BundleError
    from instancevg.runtime.frames import FrameError

    assert issubclass(ImageLoadError, ValueError) and issubclass(FrameError, ValueError)
    assert issubclass(CheckpointError, RuntimeError) and issubclass(BundleError, RuntimeError)


def test_base_class_is_exported():
    import instancevg
    import instancevg.runtime

    assert instancevg.InstanceVGError is InstanceVGError and "InstanceVGError" in instancevg.__all__
    assert instancevg.runtime.InstanceVGError is InstanceVGError and "InstanceVGError" in instancevg.runtime.__all__


def test_errors_module_never_imports_torch():
    code = "import sys, instancevg.runtime.errors; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", out.stdout


def _raise(exc):
    def fail(*args, **kwargs):
        raise exc

    return fail


def test_cli_reports_a_missing_backbone_in_one_line(monkeypatch, capsys):
    import skimage

    from instancevg.api import InstanceVG
    from instancevg.modeling.backbone import BackboneUnavailableError
    from instancevg.cli import main

    monkeypatch.setattr(InstanceVG, "from_pretrained",
                        _raise(BackboneUnavailableError("efficientnet-lite-pytorch is not installed")))
    image = str(Path(skimage.data.data_dir) / "coffee.png")
    code = main(["ground", "--image", image, "--text", "the cup", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("instancevg: error: efficientnet-lite-pytorch"), err


@pytest.mark.parametrize("command", ["eval", "pack"])
def test_cli_reports_a_missing_text_encoder_in_one_line(command, monkeypatch, capsys, tmp_path):
    import instancevg.checkpoint
    from instancevg.cli import main
    from instancevg.modeling.text_encoder import TextEncoderUnavailableError

    monkeypatch.setattr(instancevg.checkpoint, "load_model",
                        _raise(TextEncoderUnavailableError("the MiniLM text encoder is missing:\n  pip install x")))
    args = {"eval": ["eval", "--data", f"procedural:{tmp_path}", "--device", "cpu", "--out", str(tmp_path / "m.json")],
            "pack": ["pack", "--checkpoint", str(tmp_path / "c.safetensors"), "--out", str(tmp_path / "p.safetensors")]}
    code = main(args[command])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "instancevg: error: the MiniLM text encoder is missing: pip install x\n"


def test_parity_tool_exits_2_on_a_missing_bundle(tmp_path, capsys):
    from instancevg.export import parity

    assert parity.main(["--bundle", str(tmp_path / "nobundle"), "--n", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nobundle" in err and err.count("\n") == 1, err


def test_engine_build_failure_exits_2(tiny_bundle, monkeypatch, capsys):
    from instancevg.export import build_engine
    from instancevg.runtime import engine_build

    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setattr(engine_build, "build_bundle_engines",
                        _raise(engine_build.EngineBuildError("TensorRT could not parse grounder.onnx")))
    assert build_engine.main(["--fp16", "--bundle", str(tiny_bundle)]) == 2
    err = capsys.readouterr().err
    assert err == "error: TensorRT could not parse grounder.onnx\n"
