"""Model input preparation for inference (and training, which imports it from here): an
(H, W, 3) uint8 RGB image -> the normalised square tensor the network takes.

The torch-free runtime does the same transform in NumPy (``instancevg.runtime.frames``).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

__all__ = ["preprocess_image"]


def preprocess_image(image: np.ndarray, size: int, mean, std) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, size, size) float32, resized without letterbox, normalised as
    (x / 255 - mean) / std.

    Raises:
        ValueError: if the image is not (H, W, 3) uint8 with H, W > 0.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got shape {image.shape} dtype {image.dtype}")
    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    x = resized.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
