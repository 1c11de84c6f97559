"""Whether Triton can run here, shared by the kernels and the dispatcher: the ``triton`` module
(None when it is not installed) and whether ``TRITON_INTERPRET=1`` runs kernels on the CPU."""
from __future__ import annotations

import os

try:
    import triton
    import triton.language as tl
except ImportError:  # the reference paths work without Triton
    triton = None
    tl = None

__all__ = ["INTERPRETING", "tl", "triton", "triton_available"]

INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_available() -> bool:
    """True when Triton is importable (a GPU, or ``TRITON_INTERPRET=1`` on the CPU, runs it)."""
    return triton is not None
