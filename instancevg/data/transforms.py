"""Image and target preparation for the model: letterbox-free resize to the square model
input (as the InstanceVG reference), normalisation, cxcywh boxes and stride-4 mask targets."""
from __future__ import annotations

import cv2
import numpy as np
import torch


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


def prepare_targets(boxes_xyxy: np.ndarray, masks: np.ndarray, image_hw: tuple[int, int], mask_size: int) -> dict:
    """Turn pixel-space targets into training targets.

    Args:
        boxes_xyxy: (K, 4) float, xyxy in original pixels (K = 0 for no-target).
        masks: (K, H, W) bool/uint8 instance masks at the original size.
        image_hw: (H, W) of the original image.
        mask_size: side of the stride-4 mask logits (config.mask_size).

    Returns:
        ``{"boxes": (K, 4) float32 cxcywh in [0, 1], "masks": (K, m, m) float32 area-resized
        in [0, 1], "union": (m, m) float32}``.

    Raises:
        ValueError: on mismatched counts or mask sizes.
    """
    h, w = int(image_hw[0]), int(image_hw[1])
    boxes_xyxy = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    k = boxes_xyxy.shape[0]
    if masks.shape[0] != k or (k and masks.shape[1:] != (h, w)):
        raise ValueError(f"{k} boxes but masks of shape {masks.shape} for an image of {h}x{w}")
    scale = np.array([w, h, w, h], dtype=np.float32)
    b = np.clip(boxes_xyxy / scale, 0.0, 1.0)
    cxcywh = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
    small = np.zeros((k, mask_size, mask_size), dtype=np.float32)
    for i in range(k):
        small[i] = cv2.resize(masks[i].astype(np.float32), (mask_size, mask_size), interpolation=cv2.INTER_AREA)
    union = small.max(0) if k else np.zeros((mask_size, mask_size), dtype=np.float32)
    return {
        "boxes": torch.from_numpy(cxcywh.astype(np.float32)),
        "masks": torch.from_numpy(small),
        "union": torch.from_numpy(union),
    }
