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


# Fill of the canvas around a zoomed-out photo: the ImageNet mean in uint8 RGB, which the model's
# normalisation maps to about zero.
ZOOM_FILL = (124, 116, 104)


def draw_zoom(scale_jitter: float, rng: np.random.Generator) -> float:
    """A zoom factor drawn log-uniformly from ``[1 / (1 + scale_jitter), 1 + scale_jitter]``
    (``scale_jitter`` >= 0; 0 gives 1.0 without drawing from ``rng``)."""
    if scale_jitter == 0:
        return 1.0
    return float(np.exp(rng.uniform(-np.log1p(scale_jitter), np.log1p(scale_jitter))))


def zoom(image: np.ndarray, boxes_xyxy: np.ndarray, masks: np.ndarray, factor: float,
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scale jitter of a photo at its own resolution: crop or pad, keeping the aspect ratio.

    ``factor`` > 1 crops a window of ``1 / factor`` of each side at a uniformly drawn position
    (objects come out larger once the model input is resized; objects across the border are cut);
    ``factor`` < 1 places the photo at a uniformly drawn position on a canvas ``1 / factor`` times
    larger, filled with :data:`ZOOM_FILL` (objects come out smaller). The model's resize to its
    square input happens later, as for any photo. Large-scale jitter as in Ghiasi et al., "Simple
    Copy-Paste is a Strong Data Augmentation Method for Instance Segmentation", CVPR 2021, Sec. 3.

    Args:
        image: (H, W, 3) uint8; boxes_xyxy: (K, 4) float xyxy in pixels; masks: (K, H, W) bool.
        factor: zoom factor > 0 (:func:`draw_zoom`); 1.0 returns the inputs unchanged.
        rng: draws the window or the photo's position.

    Returns:
        ``(image, boxes, masks, visible)``: boxes clipped to the new frame (pixels), and ``visible``
        (K,) float, the fraction of each object's mask pixels still in the frame (1 where the mask
        was empty), for :func:`~.generators.coco_expressions.scene_objects`.

    Raises:
        ValueError: ``factor`` is not a positive finite number, or the counts disagree.
    """
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"zoom factor must be a positive number, got {factor!r}")
    b = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4)
    if len(b) != len(masks):
        raise ValueError(f"{len(b)} boxes but {len(masks)} masks")
    h, w = image.shape[:2]
    if factor == 1.0:
        return image, b, masks, np.ones(len(b), np.float32)
    visible = np.ones(len(b), np.float32)  # padding keeps every pixel
    if factor > 1:
        before = masks.sum((1, 2), dtype=np.float64)
        ch, cw = max(1, round(h / factor)), max(1, round(w / factor))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        image = np.ascontiguousarray(image[y0:y0 + ch, x0:x0 + cw])
        masks = np.ascontiguousarray(masks[:, y0:y0 + ch, x0:x0 + cw])
        b = b - np.array([x0, y0, x0, y0], np.float32)
        b = np.clip(b, 0, np.array([cw, ch, cw, ch], np.float32))
        after = masks.sum((1, 2), dtype=np.float64)
        visible = np.where(before > 0, after / np.maximum(before, 1), 1.0).astype(np.float32)
    else:
        ch, cw = round(h / factor), round(w / factor)
        y0, x0 = int(rng.integers(0, ch - h + 1)), int(rng.integers(0, cw - w + 1))
        canvas = np.empty((ch, cw, 3), np.uint8)
        canvas[:] = ZOOM_FILL
        canvas[y0:y0 + h, x0:x0 + w] = image
        padded = np.zeros((len(masks), ch, cw), masks.dtype)
        padded[:, y0:y0 + h, x0:x0 + w] = masks
        image, masks = canvas, padded
        b = b + np.array([x0, y0, x0, y0], np.float32)
    return image, b, masks, visible
