"""Model input preparation for the PyTorch package (training and the API): an (H, W, 3) uint8
RGB image -> the normalised square tensor the network takes, by the runtime's one implementation
(``instancevg.runtime.frames.preprocess_frame``) wrapped as a torch tensor.
"""
from __future__ import annotations

import numpy as np
import torch

from .runtime.frames import preprocess_frame

__all__ = ["preprocess_image"]


def preprocess_image(image: np.ndarray, size: int, mean, std) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, size, size) float32, resized without letterbox (``cv2.resize``,
    ``INTER_LINEAR``), normalised as (x / 255 - mean) / std; ``mean``/``std`` are RGB triples.

    Raises:
        ValueError: if the image is not (H, W, 3) uint8 with H, W > 0.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 \
            or 0 in image.shape:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got shape {np.shape(image)} "
                         f"dtype {getattr(image, 'dtype', type(image).__name__)}")
    return torch.from_numpy(preprocess_frame(image, size, mean, std, channel_order="rgb")[0])
