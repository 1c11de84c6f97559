"""Mixed precision: which parts of the model stay in float32 under bf16/fp16 autocast.

Training runs the network under ``torch.autocast`` (bf16 on CUDA and on CPUs with AVX-512 BF16,
fp16 elsewhere on CUDA), but the outputs that are compared with coordinates or thresholds --
the class and box heads, the existence head and the reference-point heatmap -- are computed in
float32, as Deformable-DETR keeps its box refinement in float32 (``models/deformable_detr.py``).
Outside autocast (inference, ONNX export) :func:`float32_region` does nothing, so exported
graphs are unchanged.
"""
from __future__ import annotations

import contextlib

import torch

__all__ = ["float32_region", "cpu_supports_bf16"]


def float32_region(x: torch.Tensor):
    """Context manager that turns autocast off on ``x``'s device while it is on (else a no-op).

    Inside it, cast inputs with ``.float()``: autocast no longer does it.
    """
    if torch.is_autocast_enabled(x.device.type):
        return torch.autocast(x.device.type, enabled=False)
    return contextlib.nullcontext()


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX-512 BF16 or AMX), read from ``/proc/cpuinfo``
    (Linux); ``False`` where that file is missing."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
