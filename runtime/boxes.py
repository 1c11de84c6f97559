"""Box operations in NumPy, shared by the torch-free runtime and the PyTorch package (installs as
``instancevg.runtime.boxes``; imports nothing beyond NumPy).

One implementation of each operation, used by the duplicate suppression (``instancevg.runtime.nms``), the
box/mask consistency rule (``instancevg.runtime.consistency``), the GREC/REC metrics
(``instancevg.evaluation.grec``, which re-exports the IoU functions) and the runtime's
post-processing (``instancevg.runtime.postprocess``). The PyTorch counterparts used in training
live in ``instancevg.training.box_ops``.

Conventions: a box is ``(x1, y1, x2, y2)`` ("xyxy"), or ``(cx, cy, w, h)`` ("cxcywh") where
stated; IoU and GIoU take xyxy boxes in pixels (any one unit works, as long as both sets share
it) with no ``+1`` convention: area = ``(x2 - x1) * (y2 - y1)``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["as_boxes_xyxy", "box_cxcywh_to_xyxy", "box_iou_xyxy", "generalized_box_iou_xyxy"]


def as_boxes_xyxy(boxes, name: str = "boxes", check_order: bool = True) -> np.ndarray:
    """Validate and convert boxes to a float64 ``(N, 4)`` array.

    Args:
        boxes: anything ``np.asarray`` accepts, ``(N, 4)`` xyxy in pixels (float or int). A
            size-0 array of shape ``(0,)`` or ``(0, 4)`` is an empty set of boxes.
        name: what the error messages call the argument.
        check_order: also reject boxes with ``x2 < x1`` or ``y2 < y1``.

    Returns:
        ``(N, 4)`` float64 array (a new array unless ``boxes`` already is one).

    Raises:
        ValueError: a shape other than ``(N, 4)``, non-numeric data, NaN/inf coordinates, or
            (``check_order``) boxes with ``x2 < x1`` or ``y2 < y1``.
    """
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric boxes of shape (N, 4); got {boxes!r}") from exc
    if arr.size == 0 and arr.ndim == 1:
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) (x1, y1, x2, y2 in pixels); got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite coordinates")
    if check_order and ((arr[:, 2] < arr[:, 0]).any() or (arr[:, 3] < arr[:, 1]).any()):
        raise ValueError(f"{name} contains a box with x2 < x1 or y2 < y1 (boxes must be xyxy)")
    return arr


def _pairwise_inter_union(b1: np.ndarray, b2: np.ndarray):
    """Pairwise intersection and union areas of validated ``(N, 4)`` and ``(M, 4)`` float64 xyxy
    boxes: both ``(N, M)`` float64 (pixels^2)."""
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = np.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return inter, union


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise ``num / den`` as float64, with 0 wherever ``den <= 0``."""
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def box_iou_xyxy(boxes1, boxes2) -> np.ndarray:
    """Pairwise plain IoU of two sets of axis-aligned boxes.

    Args:
        boxes1: ``(N, 4)`` array-like, ``(x1, y1, x2, y2)`` in pixels (float or int).
        boxes2: ``(M, 4)`` array-like, same format.

    Returns:
        ``(N, M)`` float64 array, ``inter / union`` with areas ``(x2-x1)*(y2-y1)`` (no
        ``+1``).  A pair whose union is 0 (two zero-area boxes) gets IoU 0.

    Raises:
        ValueError: a shape other than ``(N, 4)``, NaN/inf coordinates, or ``x2 < x1`` /
            ``y2 < y1``.

    Source: ``box_iou`` in Dmmm1997/InstanceVG ``instancevg/evaluations/grefcoco.py``
    (the DETR formulation), in numpy.
    """
    b1 = as_boxes_xyxy(boxes1, "boxes1")
    b2 = as_boxes_xyxy(boxes2, "boxes2")
    inter, union = _pairwise_inter_union(b1, b2)
    return _safe_div(inter, union)


def generalized_box_iou_xyxy(boxes1, boxes2) -> np.ndarray:
    """Pairwise generalized IoU (GIoU, Rezatofighi et al. 2019) of two sets of boxes.

    ``GIoU = IoU - (C - U) / C`` with ``U`` the union and ``C`` the area of the smallest
    box enclosing both.  Range ``(-1, 1]``; always ``GIoU <= IoU``.

    Args:
        boxes1: ``(N, 4)`` array-like, ``(x1, y1, x2, y2)`` in pixels.
        boxes2: ``(M, 4)`` array-like, same format.

    Returns:
        ``(N, M)`` float64 array.  Where ``C`` is 0 (degenerate zero-area pair) the
        penalty term is taken as 0, so GIoU equals the IoU (itself 0 there).

    Raises:
        ValueError: a shape other than ``(N, 4)``, NaN/inf coordinates, or ``x2 < x1`` /
            ``y2 < y1`` (the official code asserts the latter).

    Source: ``generalized_box_iou`` in Dmmm1997/InstanceVG
    ``instancevg/evaluations/grefcoco.py``, in numpy.
    """
    b1 = as_boxes_xyxy(boxes1, "boxes1")
    b2 = as_boxes_xyxy(boxes2, "boxes2")
    inter, union = _pairwise_inter_union(b1, b2)
    iou = _safe_div(inter, union)
    lt = np.minimum(b1[:, None, :2], b2[None, :, :2])
    rb = np.maximum(b1[:, None, 2:], b2[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    enclosing = wh[..., 0] * wh[..., 1]
    return iou - _safe_div(enclosing - union, enclosing)


def box_cxcywh_to_xyxy(boxes) -> np.ndarray:
    """``(cx, cy, w, h)`` -> ``(x1, y1, x2, y2)``, same units (the model's boxes are cxcywh
    normalised to [0, 1]; scale the result by ``(W, H, W, H)`` for pixels).

    The NumPy counterpart of ``instancevg.training.box_ops.box_cxcywh_to_xyxy``; computed in float32
    as ``cx - w / 2`` etc.

    Args:
        boxes: ``(N, 4)`` array-like cxcywh (any float or int dtype; converted to float32).

    Returns:
        ``(N, 4)`` float32 xyxy. No validation or clipping.
    """
    cx, cy, w, h = np.asarray(boxes, dtype=np.float32).T
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
