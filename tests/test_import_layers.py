"""Import layering: which parts of the package may import what.

* ``instancevg.runtime`` and the NumPy-only core modules it shares with the PyTorch package
  import no torch (the runtime runs on devices without it).
* ``instancevg.config`` does not import the kernel machinery (``instancevg.kernels.dispatch``).
* Inference (``instancevg.api``) imports nothing of the training or evaluation code.
* Statically: no module under ``runtime/`` imports torch, and nothing under ``runtime/`` or in
  the core (directly, or through the package modules it imports) imports from the training or
  evaluation modules.

The dynamic checks run in a fresh interpreter, since this test process has long imported torch.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Top-level directories that install as subpackages of instancevg (setup.py package_dir).
SUBPACKAGE_DIRS = {"runtime": ROOT / "runtime", "kernels": ROOT / "kernels", "export": ROOT / "export"}

# Training and evaluation code, one folder each: the data pipeline; the trainer, its config,
# matching, losses and checkpoint averaging; the evaluation loop and the metrics.
TRAINING_OR_EVALUATION = ("instancevg.data", "instancevg.training", "instancevg.evaluation")
# The command line sits above everything (it starts training, evaluation and inference), and
# export/ exports and checks trained models, evaluating them on data; neither is core.
NOT_CORE = TRAINING_OR_EVALUATION + ("instancevg.cli", "instancevg.export")

TORCH_PACKAGES = {"torch", "torchvision", "triton"}

# Meant to import without torch: the runtime and the NumPy-only modules it shares with the
# PyTorch package (plus the package itself, whose __init__ is lazy).
TORCH_FREE_CORE = (
    "instancevg",
    "instancevg.kernel_backends",
    "instancevg.config",
)


def _runtime_modules() -> list[str]:
    return sorted(f"instancevg.runtime.{p.stem}" for p in SUBPACKAGE_DIRS["runtime"].glob("*.py")
                  if p.stem != "__init__")


def _fresh_modules_after(imports: list[str], calls: str = "") -> set[str]:
    """``sys.modules`` keys of a fresh interpreter after importing ``imports`` (and running
    ``calls``)."""
    code = "\n".join(["import importlib, json, sys",
                      f"for name in {imports!r}:",
                      "    importlib.import_module(name)",
                      calls,
                      "print(json.dumps(sorted(sys.modules)))"])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def _is_within(name: str, packages) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


# --- dynamic checks (fresh interpreter) --------------------------------------------------------


def test_runtime_and_numpy_core_import_no_torch():
    names = ["instancevg.runtime", *_runtime_modules(), *TORCH_FREE_CORE]
    # Calling the shared NumPy functions runs their deferred imports too.
    calls = "\n".join([
        "import numpy as np",
        "from instancevg.runtime.nms import suppress_duplicates",
        "from instancevg.runtime.consistency import apply_consistency_rule",
        "b = np.array([[0, 0, 4, 4], [0, 0, 4, 3]], np.float32)",
        "suppress_duplicates(b, np.array([0, 1]), 0.5)",
        "apply_consistency_rule(b, np.ones((2, 4, 4), bool), 'agree')",
    ])
    loaded = _fresh_modules_after(names, calls)
    torch_like = sorted(m for m in loaded if m.split(".")[0] in TORCH_PACKAGES)
    assert not torch_like, f"importing the runtime / torch-free core imported {torch_like[:5]}"
    evaluation = sorted(m for m in loaded if _is_within(m, TRAINING_OR_EVALUATION))
    assert not evaluation, f"importing the runtime / torch-free core imported {evaluation}"
    assert "instancevg.runtime.boxes" in loaded  # the box operations, run by the calls above


def test_config_does_not_import_kernels():
    loaded = _fresh_modules_after(["instancevg.config"], "from instancevg.config import get_preset; get_preset('edge')")
    assert "instancevg.kernels.dispatch" not in loaded
    assert not any(_is_within(m, ["instancevg.kernels"]) for m in loaded)
    assert "torch" not in loaded


def test_inference_api_imports_no_training_or_evaluation_code():
    loaded = _fresh_modules_after(["instancevg.api"])
    assert "instancevg.api" in loaded
    for name in ["instancevg.data.transforms", "instancevg.training.trainer", "instancevg.training.losses", "instancevg.training.matcher"]:
        assert name not in loaded, f"instancevg.api imports {name}"
    bad = sorted(m for m in loaded if _is_within(m, TRAINING_OR_EVALUATION))
    assert not bad, f"instancevg.api imports training/evaluation code: {bad}"


def test_one_box_iou_implementation():
    from instancevg.data import transforms
    from instancevg.evaluation import grec
    from instancevg.preprocess import preprocess_image
    from instancevg.runtime import boxes, consistency, nms

    # duplicate suppression and the consistency rule use the runtime's box IoU
    assert nms.box_iou_xyxy is boxes.box_iou_xyxy and consistency.box_iou_xyxy is boxes.box_iou_xyxy

    # the metrics re-export the runtime's functions (same objects, no copies)
    assert grec.box_iou_xyxy is boxes.box_iou_xyxy
    assert grec.generalized_box_iou_xyxy is boxes.generalized_box_iou_xyxy
    assert transforms.preprocess_image is preprocess_image


# --- static checks (ast) -----------------------------------------------------------------------


def _module_file(name: str) -> Path | None:
    """The source file of in-package module ``name`` (``instancevg...``), or None if none."""
    parts = name.split(".")
    if parts[0] != "instancevg":
        return None
    if len(parts) > 1 and parts[1] in SUBPACKAGE_DIRS:
        base, rest = SUBPACKAGE_DIRS[parts[1]], parts[2:]
    else:
        base, rest = ROOT / "instancevg", parts[1:]
    path = base.joinpath(*rest)
    for candidate in (path.with_suffix(".py") if rest else None, path / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _imported_names(name: str, path: Path) -> set[str]:
    """Absolute names of every module imported anywhere in ``path`` (function-level imports
    included), ``name`` being its module name. ``from pkg import x`` gives ``pkg.x`` when that is
    a module of the package, else ``pkg``."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                out.add(sub if _module_file(sub) is not None else mod)
    return out


def _static_closure(start: list[str]) -> dict[str, str]:
    """In-package modules reachable from ``start`` through import statements, each mapped to
    the module that imports it (``start`` modules map to themselves); external modules are
    included (not followed)."""
    seen = {name: name for name in start}
    todo = list(start)
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None:
            continue
        for imported in _imported_names(name, path):
            if imported not in seen:
                seen[imported] = name
                if _module_file(imported) is not None:
                    todo.append(imported)
    return seen


def _chain(closure: dict[str, str], name: str) -> str:
    chain = [name]
    while closure[chain[-1]] != chain[-1]:
        chain.append(closure[chain[-1]])
    return " <- ".join(chain)


def test_runtime_sources_import_no_torch_or_training_code():
    modules = ["instancevg.runtime", *_runtime_modules()]
    # each runtime file on its own (every import statement, also inside functions)
    for name in modules:
        for imported in _imported_names(name, _module_file(name)):
            assert imported.split(".")[0] not in TORCH_PACKAGES, f"{name} imports {imported}"
            assert not _is_within(imported, NOT_CORE), f"{name} imports {imported}"
            # self-contained: the runtime is the base the PyTorch package builds on, never the reverse
            assert imported.split(".")[0] != "instancevg" or _is_within(imported, ("instancevg.runtime",)), \
                f"{name} imports {imported}, outside instancevg.runtime"
    # and through the package modules they import (e.g. instancevg.runtime.nms)
    closure = _static_closure(modules)
    for imported in closure:
        assert imported.split(".")[0] not in TORCH_PACKAGES, f"runtime imports torch: {_chain(closure, imported)}"
        assert not _is_within(imported, NOT_CORE), f"runtime imports {_chain(closure, imported)}"


def _core_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "instancevg").glob("*.py")) + sorted((ROOT / "instancevg" / "modeling").glob("*.py")):
        package = "instancevg" if path.parent.name == "instancevg" else f"instancevg.{path.parent.name}"
        name = package if path.stem == "__init__" else f"{package}.{path.stem}"
        if not _is_within(name, NOT_CORE):
            names.append(name)
    for sub in ("runtime", "kernels"):  # with their op folders (kernels/msda, kernels/mask_head)
        for path in sorted(SUBPACKAGE_DIRS[sub].rglob("*.py")):
            parts = [f"instancevg.{sub}", *path.relative_to(SUBPACKAGE_DIRS[sub]).with_suffix("").parts]
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("name", _core_modules())
def test_core_imports_no_training_or_evaluation_code(name):
    closure = _static_closure([name])
    bad = [_chain(closure, m) for m in closure if _is_within(m, NOT_CORE)]
    assert not bad, f"core module {name} imports training/evaluation code: {bad}"


def test_static_import_graph_sees_the_imports():
    # guards the checks above against a resolver that finds nothing
    closure = _static_closure(["instancevg.runtime.postprocess"])
    assert {"instancevg.runtime.nms", "instancevg.runtime.consistency", "instancevg.runtime.boxes", "numpy"} <= set(closure)
    assert "instancevg.data.transforms" in _static_closure(["instancevg.training.trainer"])
