"""Draw a :class:`~instancevg.runtime.result.GroundingResult` on an RGB image and save it as PNG.

The drawing itself is the runtime's (:func:`instancevg.runtime.draw.draw_results`, OpenCV
only), shared with the camera loop; this module adds what the PyTorch package's callers pass
(any image :func:`instancevg.image_io.as_rgb_uint8` accepts, in RGB) and the atomic PNG writer.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import cv2
import numpy as np

from .image_io import as_rgb_uint8
from .runtime.atomic_io import atomic_write_bytes
from .runtime.draw import MASK_ALPHA, draw_results, instance_color
from .runtime.result import GroundingResult

__all__ = ["draw_overlay", "save_overlay", "instance_color", "MASK_ALPHA"]

PathLike = Union[str, "os.PathLike[str]"]


def draw_overlay(image, result: GroundingResult | Sequence[GroundingResult]) -> np.ndarray:
    """Draw masks, boxes, scores and the expression of ``result`` over an RGB ``image``.

    Args:
        image: (H, W, 3) uint8 RGB, or anything :func:`instancevg.image_io.as_rgb_uint8` accepts
            (converted first). It is never modified.
        result: one result or a sequence of them, as :func:`instancevg.runtime.draw.draw_results` takes.

    Returns:
        A new (H, W, 3) uint8 RGB array.

    Raises:
        instancevg.image_io.ImageLoadError: ``image`` is not a valid image.
        ValueError: see :func:`instancevg.runtime.draw.draw_results`.
    """
    return draw_results(as_rgb_uint8(image), result, channel_order="rgb")


def save_overlay(path: PathLike, overlay_rgb: np.ndarray) -> Path:
    """Write an RGB image as a PNG file, atomically.

    The image is encoded in memory, written to a temporary file in the destination directory,
    flushed to disk and moved over ``path`` with ``os.replace``, so readers never see a partial
    file and an existing file is either fully replaced or left untouched.

    Args:
        path: destination; must end in ``.png`` (case-insensitive). Its directory must exist.
        overlay_rgb: (H, W, 3) uint8 RGB image (anything
            :func:`instancevg.image_io.as_rgb_uint8` accepts). Converted to BGR for OpenCV.

    Returns:
        The destination as a ``pathlib.Path``.

    Raises:
        ValueError: ``path`` does not end in ``.png``; ``ImageLoadError`` (a ValueError) if the
            image is invalid.
        FileNotFoundError: the destination directory does not exist.
        IsADirectoryError: ``path`` is an existing directory.
        OSError: encoding or writing failed (permissions, disk full, ...). No temporary file is
            left behind in any failure case.
    """
    dest = Path(os.fspath(path))
    if dest.suffix.lower() != ".png":
        raise ValueError(f"cannot save overlay to '{dest}': file name must end in .png")
    rgb = as_rgb_uint8(overlay_rgb)
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(
            f"cannot save overlay to '{dest}': directory '{parent}' does not exist"
        )
    if dest.is_dir():
        raise IsADirectoryError(f"cannot save overlay to '{dest}': it is a directory")

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"cannot save overlay to '{dest}': PNG encoding failed")

    try:
        atomic_write_bytes(dest, buf.tobytes())
    except OSError as exc:
        msg = f"cannot save overlay to '{dest}': {exc.strerror or exc}"
        # OSError(errno, msg) maps to the matching subclass (PermissionError, ...).
        err = OSError(exc.errno, msg) if exc.errno is not None else OSError(msg)
        raise err from exc
    return dest
