"""Image and target preparation for the model: letterbox-free resize to the square model
input (as the InstanceVG reference) and normalisation (:func:`preprocess_image`, defined in
``instancevg.preprocess`` and re-exported here), cxcywh boxes and stride-4 mask targets."""
from __future__ import annotations

import re

import cv2
import numpy as np
import torch

# Re-exported: the image transform is shared with inference and lives in instancevg.preprocess.
from ..preprocess import preprocess_image  # noqa: F401


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


_LEFT_RIGHT = re.compile(r"\b(left|right|leftmost|rightmost|left-most|right-most|lefthand|righthand)\b",
                         re.IGNORECASE)
_MIRROR = {"left": "right", "right": "left", "leftmost": "rightmost", "rightmost": "leftmost",
           "left-most": "right-most", "right-most": "left-most", "lefthand": "righthand", "righthand": "lefthand"}


def swap_left_right(text: str) -> str:
    """The expression of the mirrored image: "left" <-> "right" (and -most, -hand forms), case kept
    for a leading capital. "the cup left of the laptop" -> "the cup right of the laptop"."""
    def repl(m: re.Match) -> str:
        word = _MIRROR[m.group(0).lower()]
        return word.capitalize() if m.group(0)[0].isupper() else word

    return _LEFT_RIGHT.sub(repl, text)


def hflip(image: np.ndarray, boxes_xyxy: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror a sample left to right.

    Args:
        image: (H, W, 3) uint8; boxes_xyxy: (K, 4) float xyxy in pixels; masks: (K, H, W).

    Returns:
        (image, boxes, masks) mirrored: ``x1' = W - x2``, ``x2' = W - x1`` (contiguous copies).
    """
    w = image.shape[1]
    b = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4)
    b = np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1) if len(b) else b
    return (np.ascontiguousarray(image[:, ::-1]), b, np.ascontiguousarray(masks[:, :, ::-1]))
