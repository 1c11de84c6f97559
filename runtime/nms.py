"""Duplicate suppression among kept instances: greedy box NMS over the queries above the score
threshold (NumPy only, shared by ``instancevg.postprocess`` and ``instancevg.runtime``).

One-to-one Hungarian matching should teach the decoder to give each object one query, but a
small model trained briefly still lets two queries settle on the same object (on the
validation split at step 8,000, 16 of 200 expressions had every target found plus a second box
with IoU > 0.5 on one of them, and each costs GREC Precision@(F1=1), which counts any extra
box as a false positive). The InstanceVG reference's GREC evaluation
(``instancevg/evaluations/grefcoco.py``) imports a box NMS for the same purpose, with the call
left commented out at IoU 0.8. This is the usual greedy rule, applied only to the queries above
the score threshold, so no-target decisions never change.
"""
from __future__ import annotations

import numpy as np

from .boxes import box_iou_xyxy
from .real_number import is_real_number


def check_nms_iou(value: float, what: str = "nms_iou") -> float:
    """Validate an NMS IoU threshold: a number in (0, 1]; 1.0 turns suppression off.

    Raises:
        ValueError: if ``value`` is not a number in (0, 1].
    """
    if not is_real_number(value) or not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{what} must be a number in (0, 1] (1.0 turns duplicate suppression off), got {value!r}")
    return float(value)


def suppress_duplicates(boxes_xyxy: np.ndarray, keep: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS over the kept queries.

    Walks ``keep`` in order (callers pass it sorted by descending score) and drops a query whose
    box overlaps an already accepted one with IoU > ``iou_threshold``. The first (best) query is
    always accepted, so a non-empty ``keep`` stays non-empty.

    Args:
        boxes_xyxy: (Nq, 4) boxes of every query, xyxy (pixels or normalised, any one unit).
        keep: (K,) int indices into ``boxes_xyxy`` of the queries above the score threshold,
            sorted by descending score.
        iou_threshold: in (0, 1]; 1.0 accepts every query.

    Returns:
        (K',) int64 indices, a subsequence of ``keep`` (same order).

    Raises:
        ValueError: if ``iou_threshold`` is not in (0, 1], or a kept box has NaN/inf coordinates
            or x2 < x1 / y2 < y1 (from :func:`instancevg.runtime.boxes.box_iou_xyxy`).
    """
    iou_threshold = check_nms_iou(iou_threshold, "iou_threshold")
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    if keep.size < 2 or iou_threshold >= 1.0:
        return keep
    iou = box_iou_xyxy(boxes_xyxy[keep], boxes_xyxy[keep])
    accepted: list[int] = []
    for i in range(keep.size):
        if all(iou[i, j] <= iou_threshold for j in accepted):
            accepted.append(i)
    return keep[accepted]
