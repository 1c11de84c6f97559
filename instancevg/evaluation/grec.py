"""GREC (generalized referring expression comprehension) metrics in pure numpy.

Follows the official evaluation of InstanceVG, ``instancevg/evaluations/grefcoco.py``
(function ``grec_evaluate_f1_nacc``, repository Dmmm1997/InstanceVG), which is the
gRefCOCO GREC protocol.  Behaviour confirmed in that file and reproduced here:

* Predictions are sorted by score, descending (ties between equal scores broken by the
  box coordinates, descending, as Python's ``sorted(zip(scores, boxes), reverse=True)``
  does), then those with ``score >= score_threshold`` (0.7) are kept.  ``>=``: a score
  of exactly 0.7 is kept.
* No-target sample (no GT box): correct iff no prediction is kept.
* Targeted sample: kept predictions and GT boxes are matched one-to-one on the
  *generalized* IoU (GIoU, not IoU).  Matching is greedy on the GIoU matrix, **highest
  GIoU first** (not highest score first): repeatedly take the largest remaining GIoU;
  stop when it is below ``iou_threshold`` (so ``GIoU >= 0.5`` matches); otherwise count
  a TP and remove that prediction's row and that GT's column.  At most
  ``min(#kept, #GT)`` rounds.  Then ``FP = #kept - TP``, ``FN = #GT - TP``,
  ``F1 = 2TP / (2TP + FP + FN)`` and the sample is correct iff ``F1 >= 1`` (i.e. every
  kept prediction and every GT box is matched).
* Precision@(F1=1, IoU>=0.5) = correct samples / all samples.
* N-acc = no-target samples with nothing kept / no-target samples.
* T-acc = targeted samples with at least one kept prediction / targeted samples.

Deviations (documented, deliberate):

* The official code crashes (``zip(*[])`` unpacking) on a sample with no prediction at
  all; here ``pred_boxes=None`` or ``N=0`` means "nothing kept".
* Callers in this package pass the post-processed prediction (queries with score
  ``> 0.7`` after duplicate suppression, ``instancevg.runtime.nms``), like the official code's
  ``filtered_boxes`` path; a query scoring exactly 0.7 is therefore not kept.
* The official code removes matched rows/columns by setting them to 0.0, which is only
  safe for ``iou_threshold > 0``; here they are set to ``-inf``.  Identical results for
  any ``iou_threshold > 0`` (the default 0.5).
* Ties between equal GIoU values are broken by the first entry in row-major order (rows
  = kept predictions in the sorted order above, columns = GT boxes in the given order),
  which is numpy ``argmax``'s rule; the official code uses ``torch.topk``, whose
  tie-breaking is unspecified.
* Empty denominators (no samples, no no-target samples, no targeted samples) give
  ``float('nan')``; the official code returns 0 for N-acc/T-acc there (and raises
  ``ZeroDivisionError`` for precision with no samples).
* Zero-area degenerate pairs (union 0 or enclosing box area 0), for which the official
  torch code produces NaN, give IoU 0 and GIoU 0 here.

All metric values are fractions in [0, 1] (the official code prints percentages:
multiply by 100 to compare with papers).  Boxes are ``(x1, y1, x2, y2)`` in pixels, with
no ``+1`` convention (area = ``(x2 - x1) * (y2 - y1)``).
"""

from __future__ import annotations

import math

import numpy as np

# The box operations live in the torch-free runtime (one implementation for the metrics, the
# duplicate suppression and the runtime's post-processing); re-exported here.
from ..runtime.boxes import as_boxes_xyxy as _as_boxes
from ..runtime.boxes import box_iou_xyxy, generalized_box_iou_xyxy

__all__ = [
    "box_iou_xyxy",
    "generalized_box_iou_xyxy",
    "sort_predictions_by_score",
    "greedy_giou_match",
    "GRECEvaluator",
]


def _as_scores(scores, name: str, n: int) -> np.ndarray:
    """Validate and convert scores to a float64 ``(n,)`` array; ``ValueError`` otherwise."""
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric scores of shape (N,); got {scores!r}") from exc
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match {n} predicted boxes; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite scores")
    return arr


def sort_predictions_by_score(pred_boxes, pred_scores):
    """Order predictions by score, descending, the way the official evaluation does.

    The official code sorts ``zip(scores, boxes)`` with ``reverse=True``, so equal
    scores are ordered by the box coordinates ``(x1, y1, x2, y2)``, descending,
    lexicographically.  This matters for the top-1 box of REC and for GIoU tie-breaking
    in GREC.

    Args:
        pred_boxes: ``(N, 4)`` float64 array, xyxy pixels (already validated).
        pred_scores: ``(N,)`` float64 array.

    Returns:
        ``(boxes, scores)``, the same arrays reordered.

    Source: Dmmm1997/InstanceVG ``instancevg/evaluations/grefcoco.py``
    (``grec_evaluate_f1_nacc``) and ``instancevg/apis/test.py`` (``accuracy``).
    """
    boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"got {boxes.shape[0]} boxes but {scores.shape[0]} scores")
    # np.lexsort: last key is primary; negate for descending order.
    order = np.lexsort((-boxes[:, 3], -boxes[:, 2], -boxes[:, 1], -boxes[:, 0], -scores))
    return boxes[order], scores[order]


def greedy_giou_match(giou, iou_threshold: float = 0.5) -> int:
    """Count one-to-one matches by greedy highest-GIoU-first matching.

    Repeats at most ``min(N, M)`` times: take the largest remaining entry (ties: first in
    row-major order); if it is ``< iou_threshold`` stop; otherwise count a match and
    remove its row (prediction) and column (GT).

    Args:
        giou: ``(N, M)`` array-like of GIoU values, rows = kept predictions (sorted by
            score, descending), columns = GT boxes.  Not modified.
        iou_threshold: minimum GIoU for a match (``>=``).

    Returns:
        The number of matches (true positives), an ``int`` in ``[0, min(N, M)]``.

    Raises:
        ValueError: ``giou`` is not 2-D or contains NaN.

    Source: the matching loop of ``grec_evaluate_f1_nacc`` in Dmmm1997/InstanceVG
    ``instancevg/evaluations/grefcoco.py`` (removed entries set to ``-inf`` instead of
    0.0; identical for ``iou_threshold > 0``).
    """
    mat = np.array(giou, dtype=np.float64, copy=True)
    if mat.ndim != 2:
        raise ValueError(f"giou must be a 2-D (N, M) matrix; got shape {mat.shape}")
    if np.isnan(mat).any():
        raise ValueError("giou contains NaN")
    n, m = mat.shape
    matches = 0
    for _ in range(min(n, m)):
        flat = int(np.argmax(mat))
        if not mat.flat[flat] >= iou_threshold:
            break
        row, col = divmod(flat, m)
        matches += 1
        mat[row, :] = -np.inf
        mat[:, col] = -np.inf
    return matches


def _ratio(num: int, den: int) -> float:
    """``num / den`` as float, ``nan`` when ``den == 0``."""
    return float(num) / float(den) if den > 0 else math.nan


class GRECEvaluator:
    """Streaming GREC evaluator: Precision@(F1=1, IoU>=0.5), N-acc and T-acc.

    Call :meth:`update` once per (image, referring expression) sample, then
    :meth:`compute`.  Only counters are stored.  See the module docstring for the exact
    protocol and the deviations from the official code.

    Args:
        score_threshold: predictions with ``score >= score_threshold`` are kept (0.7).
        iou_threshold: minimum GIoU for a kept prediction to match a GT box (0.5).

    Raises:
        ValueError: thresholds that are not finite numbers.

    Source: ``grec_evaluate_f1_nacc`` in Dmmm1997/InstanceVG
    ``instancevg/evaluations/grefcoco.py`` (= gRefCOCO GREC evaluation).
    """

    def __init__(self, score_threshold: float = 0.7, iou_threshold: float = 0.5):
        for name, value in (("score_threshold", score_threshold), ("iou_threshold", iou_threshold)):
            if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number; got {value!r}")
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.reset()

    def reset(self) -> None:
        """Clear all counters."""
        self.n_samples = 0
        self.n_correct = 0
        self.n_no_target = 0
        self.n_no_target_correct = 0  # no-target GT, nothing kept ("TP" in the official nt dict)
        self.n_targeted = 0
        self.n_targeted_detected = 0  # targeted GT, >= 1 kept ("TN" in the official nt dict)

    def update(self, pred_boxes, pred_scores, gt_boxes) -> bool:
        """Add one sample and return whether it is correct (F1 = 1).

        Args:
            pred_boxes: ``(N, 4)`` float array-like, xyxy pixels; ``N`` may be 0, and
                ``None`` means no prediction at all (treated as nothing kept).
            pred_scores: ``(N,)`` float array-like of confidences; ignored (may be
                ``None``) when ``pred_boxes`` is ``None``.
            gt_boxes: ``(K, 4)`` float array-like, xyxy pixels; ``K = 0`` (shape
                ``(0, 4)`` or ``(0,)``) means a no-target sample.

        Returns:
            ``True`` iff the sample counts as correct.

        Raises:
            ValueError: boxes not of shape ``(N, 4)``, scores not of shape ``(N,)``,
                NaN/inf values, ``pred_scores`` given without boxes or missing with boxes,
                or a kept prediction / GT box with ``x2 < x1`` or ``y2 < y1``.  The
                counters are unchanged when it raises.
        """
        gt = _as_boxes(gt_boxes, "gt_boxes")
        if pred_boxes is None:
            if pred_scores is not None and np.asarray(pred_scores).size > 0:
                raise ValueError("pred_scores given but pred_boxes is None")
            kept = np.zeros((0, 4), dtype=np.float64)
        else:
            boxes = _as_boxes(pred_boxes, "pred_boxes", check_order=False)
            if pred_scores is None:
                raise ValueError(f"pred_scores is None but pred_boxes has {boxes.shape[0]} boxes")
            scores = _as_scores(pred_scores, "pred_scores", boxes.shape[0])
            boxes, scores = sort_predictions_by_score(boxes, scores)
            kept = boxes[scores >= self.score_threshold]
            # The official code asserts x2 >= x1, y2 >= y1 on the kept boxes only.
            kept = _as_boxes(kept, "pred_boxes (kept, score >= threshold)")

        n_kept, n_gt = kept.shape[0], gt.shape[0]
        if n_gt == 0:
            correct = n_kept == 0
            self.n_no_target += 1
            self.n_no_target_correct += int(correct)
        else:
            self.n_targeted += 1
            self.n_targeted_detected += int(n_kept >= 1)
            tp = greedy_giou_match(generalized_box_iou_xyxy(kept, gt), self.iou_threshold)
            fp, fn = n_kept - tp, n_gt - tp
            f1 = 2.0 * tp / (2.0 * tp + fp + fn)
            correct = f1 >= 1.0
        self.n_samples += 1
        self.n_correct += int(correct)
        return bool(correct)

    def merge(self, other: "GRECEvaluator") -> None:
        """Add the counters of another evaluator (e.g. from another process) into this one."""
        if not isinstance(other, GRECEvaluator):
            raise ValueError(f"can only merge a GRECEvaluator; got {type(other).__name__}")
        for key in ("n_samples", "n_correct", "n_no_target", "n_no_target_correct", "n_targeted",
                    "n_targeted_detected"):
            setattr(self, key, getattr(self, key) + getattr(other, key))

    def compute(self) -> dict:
        """Return the GREC metrics as fractions in [0, 1] plus the counts.

        Returns:
            dict with ``"precision"`` (Precision@(F1=1, IoU>=0.5) = correct / samples),
            ``"n_acc"`` (N-acc), ``"t_acc"`` (T-acc), and the int counts
            ``"n_samples"``, ``"n_correct"``, ``"n_no_target"``,
            ``"n_no_target_correct"``, ``"n_targeted"``, ``"n_targeted_detected"``.
            A metric whose denominator is 0 is ``float('nan')`` (the official code
            reports 0 for N-acc/T-acc there).
        """
        return {
            "precision": _ratio(self.n_correct, self.n_samples),
            "n_acc": _ratio(self.n_no_target_correct, self.n_no_target),
            "t_acc": _ratio(self.n_targeted_detected, self.n_targeted),
            "n_samples": self.n_samples,
            "n_correct": self.n_correct,
            "n_no_target": self.n_no_target,
            "n_no_target_correct": self.n_no_target_correct,
            "n_targeted": self.n_targeted,
            "n_targeted_detected": self.n_targeted_detected,
        }
