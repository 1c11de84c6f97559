"""Build ``instancevg-runtime``: a wheel that holds only the torch-free runtime, for robots.

    python tools/build_runtime_wheel.py [--out dist]
    pip install dist/instancevg_runtime-*.whl      # numpy, OpenCV, tokenizers, ONNX Runtime; no torch

The wheel installs ``instancevg.runtime`` (the repository's ``runtime/`` folder, which imports
nothing outside itself) under an implicit ``instancevg`` namespace, and requires what
``runtime/requirements.txt`` lists. Its version is the package's ``instancevg.__version__``.
setuptools builds it (``pip wheel --no-build-isolation``, so no build dependency is downloaded).

Exit status: 0 when the wheel is written (its path is printed), 2 when the build fails.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "runtime"
DIST_NAME = "instancevg-runtime"


def runtime_requirements() -> list[str]:
    """The requirement lines of ``runtime/requirements.txt`` (comments and blank lines dropped)."""
    lines = (RUNTIME / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def package_version() -> str:
    """``__version__`` of ``instancevg/__init__.py``.

    Raises:
        ValueError: the file has no ``__version__ = "..."`` line.
    """
    found = re.search(r'^__version__ = "([^"]+)"', (ROOT / "instancevg" / "__init__.py").read_text(), re.MULTILINE)
    if not found:
        raise ValueError("instancevg/__init__.py has no __version__ line")
    return found.group(1)


def pyproject() -> str:
    """The ``pyproject.toml`` of the runtime distribution."""
    deps = ", ".join(f'"{r}"' for r in runtime_requirements())
    return f"""[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{DIST_NAME}"
version = "{package_version()}"
description = "InstanceVG-edge torch-free runtime: ground phrases in camera frames with exported bundles"
requires-python = ">=3.10"
dependencies = [{deps}]

[project.scripts]
instancevg-runtime = "instancevg.runtime.cli:main"

[tool.setuptools]
packages = ["instancevg.runtime"]
"""


def build_wheel(out: str | Path) -> Path:
    """Build the wheel into ``out`` (created if missing) and return its path.

    Raises:
        RuntimeError: ``pip wheel`` failed (its last output lines in the message).
    """
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(RUNTIME, src / "instancevg" / "runtime",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt"))
        (src / "pyproject.toml").write_text(pyproject())
        wheels = Path(tmp) / "wheels"
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                               "-w", str(wheels), str(src)], capture_output=True, text=True)
        built = sorted(wheels.glob("*.whl"))
        if proc.returncode != 0 or len(built) != 1:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise RuntimeError(f"pip wheel failed for {DIST_NAME}: {tail}")
        target = out / built[0].name
        shutil.move(str(built[0]), target.with_suffix(".tmp"))
        target.with_suffix(".tmp").replace(target)  # no half-written wheel under the final name
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="dist", help="directory for the wheel (default dist/)")
    args = p.parse_args(argv)
    try:
        wheel = build_wheel(args.out)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
