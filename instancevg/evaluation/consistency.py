"""Instance consistency of the kept instances (point, box and mask of one instance agree).

Per kept instance: the IoU of its box with its mask's bounding box
(:func:`instancevg.runtime.consistency.box_mask_iou`) and whether its reference point (the query's
anchor, ``reference_points`` of the model) lies inside its mask.
"""
from __future__ import annotations

import numpy as np

from ..runtime.consistency import MIN_BOX_MASK_IOU, box_mask_iou

IOU_BINS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0 + 1e-9)


class ConsistencyEvaluator:
    """Accumulates box/mask-box IoU and point-in-mask over kept instances."""

    def __init__(self):
        self.ious: list[float] = []
        self.points_in: list[bool] = []

    def update(self, boxes: np.ndarray, masks: np.ndarray, points: np.ndarray | None = None) -> None:
        """Add one result's kept instances.

        Args:
            boxes: (K, 4) xyxy pixels. masks: (K, H, W) bool at the same size.
            points: (K, 2) reference points (x, y) in pixels of that size, or None.
        """
        self.ious.extend(box_mask_iou(boxes, masks).tolist())
        if points is not None:
            h, w = masks.shape[1:]
            for k, (x, y) in enumerate(np.asarray(points, np.float64).reshape(-1, 2)):
                xi, yi = min(max(int(x), 0), w - 1), min(max(int(y), 0), h - 1)
                self.points_in.append(bool(masks[k, yi, xi]))

    def merge(self, other: "ConsistencyEvaluator") -> None:
        """Add another evaluator's instances (sharded evaluation)."""
        self.ious += other.ious
        self.points_in += other.points_in

    def compute(self) -> dict:
        """``{"instances": K, "box/mask-box IoU>=0.5": fraction, "mean box/mask-box IoU",
        "point in mask": fraction (None without points), "IoU histogram": {bin: count}}``."""
        ious = np.asarray(self.ious)
        hist = np.histogram(ious, bins=IOU_BINS)[0] if ious.size else np.zeros(len(IOU_BINS) - 1, int)
        labels = [f"[{a:.1f},{min(b, 1.0):.1f}{']' if b > 1 else ')'}" for a, b in zip(IOU_BINS[:-1], IOU_BINS[1:])]
        return {
            "instances": int(ious.size),
            f"box/mask-box IoU>={MIN_BOX_MASK_IOU}": float((ious >= MIN_BOX_MASK_IOU).mean()) if ious.size else 1.0,
            "mean box/mask-box IoU": float(ious.mean()) if ious.size else 1.0,
            "point in mask": float(np.mean(self.points_in)) if self.points_in else None,
            "IoU histogram": dict(zip(labels, (int(c) for c in hist))),
        }
