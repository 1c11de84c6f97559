"""Names of the kernel backends and their check, shared by ``ModelConfig.kernels``
(``instancevg.config``) and the run-time choice (``instancevg.kernels.dispatch``).

This module imports nothing, so validating a config does not import the kernels (torch, Triton).
"""
from __future__ import annotations

__all__ = ["KERNEL_BACKENDS", "check_kernel_backend"]

# ``auto``: Triton kernels for CUDA tensors when Triton is installed, the PyTorch references
# elsewhere; ``triton`` / ``reference`` force either (see ``instancevg.kernels.dispatch``).
KERNEL_BACKENDS = ("auto", "triton", "reference")


def check_kernel_backend(name: str, source: str = "backend") -> str:
    """Return ``name`` if it is one of :data:`KERNEL_BACKENDS`.

    Raises:
        ValueError: naming ``source`` (e.g. the environment variable) and the allowed values.
    """
    if name not in KERNEL_BACKENDS:
        raise ValueError(f"{source} must be one of {KERNEL_BACKENDS}, got {name!r}")
    return name
