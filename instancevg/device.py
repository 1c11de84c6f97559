"""The ``--device`` / ``device=`` argument: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
from __future__ import annotations

import torch

__all__ = ["resolve_device", "DEVICE_CHOICES"]

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """The torch device a name stands for.

    Args:
        name: ``None`` or ``"auto"`` (CUDA when this torch has it and a GPU is visible, else the
            CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``, or a ``torch.device``.

    Returns:
        the ``torch.device``.

    Raises:
        ValueError: an unknown name (e.g. ``"gpu"``), CUDA asked of a CPU-only torch build or of a
            machine with no visible GPU, or a GPU index out of range.
    """
    if name is None or (isinstance(name, str) and name.strip().lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name.strip().lower() if isinstance(name, str) else name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r}: use {DEVICE_CHOICES}") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ValueError(f"unsupported device {name!r}: use {DEVICE_CHOICES}")
    if torch.version.cuda is None:
        raise ValueError(f"device {name!r}: this torch {torch.__version__} is a CPU-only build; use --device cpu "
                         "(or auto), or install a CUDA build of torch")
    if not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: no CUDA GPU is visible (torch.cuda.is_available() is False); use "
                         "--device cpu (or auto)")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA GPU(s) are visible")
    return dev
