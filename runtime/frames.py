"""Camera frames -> model input, with OpenCV (no torch).

:func:`preprocess_frame` is the one implementation of the model's input transform (resize
without letterbox, bilinear, then (x/255 - mean)/std); ``instancevg.preprocess.preprocess_image``
calls it for RGB images in training and in the PyTorch API.
"""
from __future__ import annotations

import cv2
import numpy as np

from .errors import InstanceVGError
from .predictor import check_channel_order


class FrameError(InstanceVGError, ValueError):
    """A frame that is not a non-empty (H, W, 3) uint8 BGR array."""


def check_frame(frame) -> np.ndarray:
    """Validate a camera frame.

    Args:
        frame: (H, W, 3) uint8 BGR numpy array (OpenCV convention), H, W > 0.

    Returns:
        the same array.

    Raises:
        FrameError: not a numpy array, wrong dtype, wrong number of dimensions or channels, or empty.
    """
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array (H, W, 3) uint8 BGR, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame dtype must be uint8 (BGR 0..255), got {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        if frame.ndim == 2:
            what = "a gray frame with no channel axis"
        elif frame.ndim == 3:
            what = f"{frame.shape[2]} channel{'s' if frame.shape[2] != 1 else ''}"
        else:
            what = f"{frame.ndim} dimensions"
        raise FrameError(f"frame must be (H, W, 3) BGR, got shape {frame.shape} ({what}); "
                         "convert gray/BGRA frames with cv2.cvtColor first")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"frame is empty: shape {frame.shape}")
    return frame


def preprocess_frame(frame: np.ndarray, size: int, mean, std, channel_order: str = "bgr") -> np.ndarray:
    """(H, W, 3) uint8 BGR (or RGB) -> (1, 3, size, size) float32 RGB, normalised as (x/255 - mean)/std.

    Resize: ``cv2.resize(..., INTER_LINEAR)`` to size x size (no letterbox), as the training
    transform. ``mean``/``std`` are RGB triples. The normalisation is one multiply-add per plane,
    written straight into the NCHW output, with no float HWC copy or transpose.
    ``channel_order`` is the frame's: ``"bgr"``
    (OpenCV, the default) or ``"rgb"``; the output is RGB either way.

    Raises:
        FrameError: see :func:`check_frame`.
        ValueError: ``channel_order`` is neither ``"bgr"`` nor ``"rgb"``.
    """
    check_channel_order(channel_order)
    check_frame(frame)
    resized = cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    scale = (1.0 / (255.0 * std)).astype(np.float32)  # (x/255 - mean)/std == x*scale + offset
    offset = (-mean / std).astype(np.float32)
    out = np.empty((1, 3, size, size), dtype=np.float32)
    for c in range(3):  # RGB plane c reads BGR channel 2 - c; one pass per plane, no HWC float copy
        np.multiply(resized[:, :, 2 - c if channel_order == "bgr" else c], scale[c], out=out[0, c],
                    casting="unsafe")
        out[0, c] += offset[c]
    return out
