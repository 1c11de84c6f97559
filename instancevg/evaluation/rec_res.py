"""Classic (single-target) REC and RES metrics in pure numpy.

Follows ``accuracy`` / ``mask_overlaps_withIU`` in Dmmm1997/InstanceVG
``instancevg/apis/test.py`` (the SeqTR/SimVG-style RefCOCO evaluation).  Behaviour
confirmed there and reproduced here:

* REC Acc@t: the top-1 prediction is the highest-score box (ties: the order of
  :func:`~instancevg.evaluation.grec.sort_predictions_by_score`); its *plain* IoU with the
  single GT box (mmdet ``bbox_overlaps``, no ``+1`` pixel offset) must be ``>= t``.
  Acc@0.5 is the headline number; Acc@{0.6, 0.7, 0.8, 0.9} are the official
  ``DetACC@0.5-0.9`` extras.
* RES per-sample IoU = ``I / U`` if ``U >= 1`` else 0 (so an empty prediction on an
  empty GT scores 0, not 1); mIoU = mean per-sample IoU; oIoU = ΣI / ΣU; Pr@t
  (``MaskACC@0.5-0.9``) = fraction of samples with IoU ``>= t``.

Deviations (documented, deliberate): a sample with no predicted box (``None`` or
``N = 0``), on which the official code crashes, counts as a miss with IoU 0; empty
denominators give ``float('nan')``; mmdet's ``eps = 1e-6`` union clamp is replaced by
"IoU 0 when the union is 0" (identical for any box pair with nonzero union area).

All metric values are fractions in [0, 1] (the official code prints percentages).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .grec import _as_boxes, _as_scores, box_iou_xyxy, sort_predictions_by_score
from .gres import mask_intersection_union

__all__ = ["RECEvaluator", "RESEvaluator"]


def _check_thresholds(values: Sequence[float], name: str) -> tuple:
    out = []
    for t in values:
        if not isinstance(t, (int, float, np.floating, np.integer)) or not math.isfinite(t):
            raise ValueError(f"{name} must be finite numbers; got {t!r}")
        out.append(float(t))
    return tuple(out)


def _ratio(num, den) -> float:
    """``num / den`` as float, ``nan`` when ``den == 0``."""
    return float(num) / float(den) if den > 0 else math.nan


class RECEvaluator:
    """Streaming REC evaluator: Acc@0.5 (top-1 box vs the single GT box, IoU >= 0.5).

    Args:
        iou_thresholds: thresholds t for the ``"Acc@t"`` keys (``IoU >= t``); default
            ``(0.5, 0.6, 0.7, 0.8, 0.9)``.  Must include whatever the caller reads.

    Raises:
        ValueError: a threshold that is not a finite number.

    Source: ``accuracy`` in Dmmm1997/InstanceVG ``instancevg/apis/test.py``.
    """

    def __init__(self, iou_thresholds: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9)):
        self.iou_thresholds = _check_thresholds(iou_thresholds, "iou_thresholds")
        self.reset()

    def reset(self) -> None:
        """Clear all counters."""
        self.n_samples = 0
        self.sum_iou = 0.0
        self.hits = [0] * len(self.iou_thresholds)

    def update(self, pred_boxes, pred_scores, gt_box) -> float:
        """Add one sample; return the IoU of the top-1 predicted box with the GT box.

        Args:
            pred_boxes: ``(N, 4)`` float array-like, xyxy pixels; ``None`` or ``N = 0``
                means no prediction (IoU 0, a miss).
            pred_scores: ``(N,)`` float array-like of confidences (ignored, may be
                ``None``, when ``pred_boxes`` is ``None``).
            gt_box: the single GT box, shape ``(4,)`` or ``(1, 4)``, xyxy pixels.

        Returns:
            The top-1 IoU in [0, 1]; the sample is correct at t iff it is ``>= t``.

        Raises:
            ValueError: wrong shapes (GT not exactly one box, boxes not ``(N, 4)``,
                scores not ``(N,)``), NaN/inf, ``pred_scores`` missing with boxes, or a
                GT / top-1 box with ``x2 < x1`` or ``y2 < y1``.  Counters are unchanged
                when it raises.
        """
        gt_arr = np.asarray(gt_box, dtype=np.float64) if gt_box is not None else None
        if gt_arr is None or gt_arr.shape not in ((4,), (1, 4)):
            shape = None if gt_arr is None else gt_arr.shape
            raise ValueError(f"gt_box must be one box of shape (4,) or (1, 4); got shape {shape}")
        gt = _as_boxes(gt_arr.reshape(1, 4), "gt_box")
        iou = 0.0
        if pred_boxes is not None:
            boxes = _as_boxes(pred_boxes, "pred_boxes", check_order=False)
            if pred_scores is None:
                raise ValueError(f"pred_scores is None but pred_boxes has {boxes.shape[0]} boxes")
            scores = _as_scores(pred_scores, "pred_scores", boxes.shape[0])
            if boxes.shape[0] > 0:
                boxes, _ = sort_predictions_by_score(boxes, scores)
                top1 = _as_boxes(boxes[:1], "pred_boxes (top-1)")
                iou = float(box_iou_xyxy(top1, gt)[0, 0])
        elif pred_scores is not None and np.asarray(pred_scores).size > 0:
            raise ValueError("pred_scores given but pred_boxes is None")
        self.n_samples += 1
        self.sum_iou += iou
        for k, t in enumerate(self.iou_thresholds):
            if iou >= t:
                self.hits[k] += 1
        return iou

    def merge(self, other: "RECEvaluator") -> None:
        """Add the counters of another evaluator with the same ``iou_thresholds``."""
        if not isinstance(other, RECEvaluator) or other.iou_thresholds != self.iou_thresholds:
            raise ValueError("can only merge a RECEvaluator with the same iou_thresholds")
        self.n_samples += other.n_samples
        self.sum_iou += other.sum_iou
        self.hits = [a + b for a, b in zip(self.hits, other.hits)]

    def compute(self) -> dict:
        """Return ``{"Acc@0.5": ..., "Acc@0.6": ..., ..., "mean_iou", "n_samples"}``.

        Accuracies are fractions in [0, 1] (one key ``f"Acc@{t:g}"`` per threshold);
        ``mean_iou`` is the mean top-1 box IoU.  ``float('nan')`` with no samples.
        """
        res = {f"Acc@{t:g}": _ratio(h, self.n_samples) for t, h in zip(self.iou_thresholds, self.hits)}
        res["mean_iou"] = _ratio(self.sum_iou, self.n_samples)
        res["n_samples"] = self.n_samples
        return res


class RESEvaluator:
    """Streaming RES evaluator: mIoU (mean per-sample IoU) and oIoU (ΣI / ΣU).

    Args:
        pr_thresholds: thresholds t for the ``"Pr@t"`` keys (fraction of samples with
            IoU ``>= t``); default ``(0.5, 0.6, 0.7, 0.8, 0.9)``.

    Raises:
        ValueError: a threshold that is not a finite number.

    Source: ``accuracy`` / ``mask_overlaps_withIU`` in Dmmm1997/InstanceVG
    ``instancevg/apis/test.py``.
    """

    def __init__(self, pr_thresholds: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9)):
        self.pr_thresholds = _check_thresholds(pr_thresholds, "pr_thresholds")
        self.reset()

    def reset(self) -> None:
        """Clear all counters."""
        self.n_samples = 0
        self.sum_I = 0  # pixels
        self.sum_U = 0  # pixels
        self.sum_iou = 0.0
        self.pr_counts = [0] * len(self.pr_thresholds)

    def update(self, pred_mask, gt_mask) -> float:
        """Add one sample; return its IoU (``I / U``, or 0 when ``U == 0``).

        Args:
            pred_mask: ``(H, W)`` binary mask (bool, integer nonzero = foreground, or
                float 0/1).
            gt_mask: ``(H, W)`` binary mask of the same shape.

        Returns:
            The per-sample IoU in [0, 1].

        Raises:
            ValueError: masks not 2-D, of different shapes, NaN or non-binary floats.
        """
        inter, union = mask_intersection_union(pred_mask, gt_mask)
        iou = inter / union if union >= 1 else 0.0
        self.n_samples += 1
        self.sum_I += inter
        self.sum_U += union
        self.sum_iou += iou
        for k, t in enumerate(self.pr_thresholds):
            if iou >= t:
                self.pr_counts[k] += 1
        return float(iou)

    def merge(self, other: "RESEvaluator") -> None:
        """Add the counters of another evaluator with the same ``pr_thresholds``."""
        if not isinstance(other, RESEvaluator) or other.pr_thresholds != self.pr_thresholds:
            raise ValueError("can only merge a RESEvaluator with the same pr_thresholds")
        self.n_samples += other.n_samples
        self.sum_I += other.sum_I
        self.sum_U += other.sum_U
        self.sum_iou += other.sum_iou
        self.pr_counts = [a + b for a, b in zip(self.pr_counts, other.pr_counts)]

    def compute(self) -> dict:
        """Return ``{"mIoU", "oIoU", "Pr@0.5", ..., "n_samples", "I", "U"}``.

        mIoU and oIoU and Pr@t (one key ``f"Pr@{t:g}"`` per threshold) are fractions in
        [0, 1]; ``I`` and ``U`` are pixel totals.  ``float('nan')`` for a metric whose
        denominator is 0 (no samples, or ΣU = 0 for oIoU).
        """
        res = {"mIoU": _ratio(self.sum_iou, self.n_samples), "oIoU": _ratio(self.sum_I, self.sum_U)}
        for t, c in zip(self.pr_thresholds, self.pr_counts):
            res[f"Pr@{t:g}"] = _ratio(c, self.n_samples)
        res.update(n_samples=self.n_samples, I=self.sum_I, U=self.sum_U)
        return res
