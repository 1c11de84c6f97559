"""Run-time choice between the Triton kernels and their pure-PyTorch references.

Order of precedence:

1. While tracing or exporting (``torch.onnx`` export, ``torch.jit`` tracing, ``torch.export``)
   the reference is always used, so ONNX graphs hold only standard operators (grid_sample).
2. The environment variable ``INSTANCEVG_KERNELS`` = ``triton`` | ``reference`` forces either
   for the whole process (``auto`` or unset defers to the next rule).
3. The caller's request, normally ``ModelConfig.kernels``: ``triton``, ``reference`` or ``auto``.
4. ``auto``: Triton for CUDA tensors when Triton is installed, the reference elsewhere.

Forcing ``triton`` for CPU tensors works only under ``TRITON_INTERPRET=1`` (the tests do this);
otherwise it is an error rather than a silent fallback.
"""
from __future__ import annotations

import os

import torch

# The backend names and their check are defined in a module that imports nothing, so that
# ``instancevg.config`` can validate ``ModelConfig.kernels`` without importing the kernels.
# Absolute import: this directory is also importable as a top-level ``kernels`` package (from a
# checkout, e.g. when transformers probes for a ``kernels`` package), where ``..`` would fail.
from instancevg.kernel_backends import KERNEL_BACKENDS as BACKENDS
from instancevg.kernel_backends import check_kernel_backend as check_backend

from .triton_support import INTERPRETING, triton_available

BACKEND_ENV = "INSTANCEVG_KERNELS"


def is_exporting() -> bool:
    """True inside ONNX export, ``torch.jit`` tracing or ``torch.export``."""
    if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing():
        return True
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_exporting") and compiler.is_exporting())


def resolve_backend(requested: str, device: torch.device) -> str:
    """The backend (``"triton"`` or ``"reference"``) to use for tensors on ``device``.

    Args:
        requested: ``auto``, ``triton`` or ``reference`` (e.g. ``ModelConfig.kernels``).
        device: device of the kernel's inputs.

    Raises:
        ValueError: unknown backend name in ``requested`` or in ``INSTANCEVG_KERNELS``.
        RuntimeError: ``triton`` forced where it cannot run (Triton missing, or CPU tensors
            without ``TRITON_INTERPRET=1``).
    """
    check_backend(requested)
    env = check_backend(os.environ.get(BACKEND_ENV, "auto") or "auto", f"${BACKEND_ENV}")
    if is_exporting():
        return "reference"
    choice = env if env != "auto" else requested
    if choice == "auto":
        return "triton" if device.type == "cuda" and triton_available() else "reference"
    if choice == "triton":
        if not triton_available():
            raise RuntimeError("Triton kernels were requested but Triton is not installed (pip install triton)")
        if device.type != "cuda" and not INTERPRETING:
            raise RuntimeError(
                f"Triton kernels were requested for {device} tensors; they need CUDA, or TRITON_INTERPRET=1 on the CPU"
            )
    return choice
