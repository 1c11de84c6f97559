"""Instance consistency: does a kept instance's box agree with its own mask? (NumPy only, shared
by ``instancevg.postprocess``, the evaluation and the torch-free runtime.)

InstanceVG anchors each instance query on a reference point so that its point, box and mask
describe one object (Dai et al., InstanceVG, Sec. 3). A small model can still give a query a box
on one object and a mask on another. This module measures that agreement (IoU of the box with
the bounding box of the mask) and holds the post-processing rule that enforces it:

* ``"off"``: boxes as predicted.
* ``"mask_box"``: a kept instance whose box has IoU < ``MIN_BOX_MASK_IOU`` with its mask's
  bounding box gets the mask's bounding box instead (an empty mask leaves the box as it is).
* ``"box_clip"``: each kept instance's mask is clipped to its box (pixels whose centre lies in
  the box). Boxes, scores and the union mask (global mask | unclipped instance masks) are left
  as they are, so GREC and GRES figures cannot change.
* ``"agree"``: ``box_clip``, then a kept instance whose box still has IoU < ``MIN_BOX_MASK_IOU``
  with its clipped mask's bounding box (a box on background, its mask elsewhere or empty) is
  dropped: the answer keeps only instances whose box and mask describe one object. When every
  instance is dropped the answer is "no target". The union mask is left as it is.

Pixel convention: mask pixel (y, x) covers [x, x + 1) x [y, y + 1), so a mask's box is
(x_min, y_min, x_max + 1, y_max + 1) in the same pixel frame as the predicted xyxy boxes.
"""
from __future__ import annotations

import numpy as np

from .boxes import box_iou_xyxy

__all__ = ["CONSISTENCY_RULES", "MIN_BOX_MASK_IOU", "check_consistency_rule", "mask_boxes", "box_mask_iou",
           "apply_consistency_rule"]

CONSISTENCY_RULES = ("off", "mask_box", "box_clip", "agree")
MIN_BOX_MASK_IOU = 0.5


def check_consistency_rule(rule: str, what: str = "consistency") -> str:
    """Validate a rule name. Raises ValueError naming the allowed values."""
    if rule not in CONSISTENCY_RULES:
        raise ValueError(f"{what} must be one of {list(CONSISTENCY_RULES)}, got {rule!r}")
    return rule


def mask_boxes(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounding boxes of binary masks.

    Args:
        masks: (K, H, W) bool.

    Returns:
        ``(boxes, nonempty)``: (K, 4) float32 xyxy pixels (zeros for an empty mask) and (K,) bool.
    """
    masks = np.asarray(masks, dtype=bool)
    boxes = np.zeros((masks.shape[0], 4), np.float32)
    rows, cols = masks.any(2), masks.any(1)  # (K, H), (K, W)
    nonempty = rows.any(1)
    for k in np.flatnonzero(nonempty):
        ys, xs = np.flatnonzero(rows[k]), np.flatnonzero(cols[k])
        boxes[k] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes, nonempty


def box_mask_iou(boxes: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """IoU of each box with its own mask's bounding box.

    Args:
        boxes: (K, 4) xyxy pixels. masks: (K, H, W) bool in the same pixel frame.

    Returns:
        (K,) float64 in [0, 1]; 0 for an empty mask.
    """
    mboxes, nonempty = mask_boxes(masks)
    iou = np.zeros(len(mboxes))
    for k in np.flatnonzero(nonempty):
        iou[k] = box_iou_xyxy(np.asarray(boxes[k:k + 1], np.float64), mboxes[k:k + 1])[0, 0]
    return iou


def apply_consistency_rule(boxes: np.ndarray, masks: np.ndarray,
                           rule: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kept instances' boxes and masks after ``rule`` (see the module docstring).

    Args:
        boxes: (K, 4) float32 xyxy pixels. masks: (K, H, W) bool. rule: one of
            :data:`CONSISTENCY_RULES`.

    Returns:
        ``(boxes (K', 4) float32, masks (K', H, W) bool, kept (K,) bool)``: the instances that
        stay (``kept``; all of them except under ``"agree"``), new arrays when the rule changes
        them (the inputs are never modified).

    Raises:
        ValueError: an unknown rule.
    """
    check_consistency_rule(rule)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    kept = np.ones(len(boxes), dtype=bool)
    if rule == "off" or not len(boxes):
        return boxes, masks, kept
    if rule == "mask_box":
        mboxes, nonempty = mask_boxes(masks)
        replace = nonempty & (box_mask_iou(boxes, masks) < MIN_BOX_MASK_IOU)
        boxes = boxes.copy()
        boxes[replace] = mboxes[replace]
        return boxes, masks, kept
    h, w = masks.shape[1:]
    xs, ys = np.arange(w) + 0.5, np.arange(h) + 0.5  # pixel centres
    inside_x = (xs[None] >= boxes[:, 0:1]) & (xs[None] <= boxes[:, 2:3])  # (K, W)
    inside_y = (ys[None] >= boxes[:, 1:2]) & (ys[None] <= boxes[:, 3:4])  # (K, H)
    masks = masks & inside_y[:, :, None] & inside_x[:, None, :]
    if rule == "agree":
        kept = box_mask_iou(boxes, masks) >= MIN_BOX_MASK_IOU
        return boxes[kept], masks[kept], kept
    return boxes, masks, kept
