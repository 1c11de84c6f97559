"""GRES (generalized referring expression segmentation) metrics in pure numpy.

Follows ``gres_model/evaluation/refer_evaluation.py`` of ReLA (henghuiding/ReLA,
``ReferEvaluator.evaluate``) and its copy ``gres_evaluate`` in Dmmm1997/InstanceVG
``instancevg/evaluations/grefcoco.py``.  Behaviour confirmed there and reproduced here:

* Predicted no-target: InstanceVG sets ``pred_nt = (scores > 0.7).sum() == 0``, strict
  ``>``: a score of exactly 0.7 does *not* make the sample targeted.  The caller passes
  the flag; :func:`gres_pred_no_target` computes it that way.
* ``I = |pred & gt|`` and ``U = |pred | gt|`` are computed from the predicted mask *as
  given*, whatever the no-target flags say (the predicted mask is never zeroed).
* No-target GT, predicted no-target: per-sample IoU 1; adds 0 to ΣI and ΣU.
* No-target GT, predicted targeted: IoU 0; ΣU grows by ``U`` (= predicted mask area when
  the GT mask is empty, as it is for no-target samples).
* Targeted GT, predicted no-target: ``I`` is forced to 0 but ``U`` keeps the full union
  ``|pred | gt|`` (so it still includes the predicted mask); IoU ``0``.
* Targeted GT, predicted targeted: IoU ``I / U`` (0 when ``U == 0``).
* cIoU = ΣI / ΣU over all samples; gIoU = mean per-sample IoU over *all* samples
  (no-target ones included, contributing 1 or 0).
* Pr@t = fraction of *targeted* samples with IoU ``>= t`` (``>=``, not ``>``), t in
  {0.7, 0.8, 0.9}.
* N-acc = TP / (TP + FN) over no-target GT (TP: predicted no-target); T-acc = TN / (TN +
  FP) over targeted GT (TN: not predicted no-target).  These are InstanceVG's formulas.
  ReLA's own file differs: it adds ``+ 1`` to both denominators and computes its
  ``T_acc`` as ``TP / (TP + FP + 1)``; that is not reproduced.

Deviations (documented, deliberate): empty denominators give ``float('nan')`` (the
official code raises ``ZeroDivisionError`` for cIoU/gIoU/Pr with no samples and reports
N-acc = T-acc = 0 when there is no no-target sample, even if T-acc would be defined).

All metric values are fractions in [0, 1] (the official code prints percentages).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["as_binary_mask", "mask_intersection_union", "gres_pred_no_target", "GRESEvaluator"]


def as_binary_mask(mask, name: str = "mask") -> np.ndarray:
    """Validate a binary mask and return it as a ``(H, W)`` bool array.

    Args:
        mask: ``(H, W)`` array-like (numpy array or CPU tensor) of dtype bool, any
            integer type (nonzero = foreground, e.g. uint8 0/1 or 0/255), or float with
            values exactly 0 or 1.
        name: name used in error messages.

    Returns:
        ``(H, W)`` bool numpy array.

    Raises:
        ValueError: not 2-D, a non-numeric dtype, NaN/inf, or float values other than 0
            and 1 (probability maps must be thresholded by the caller).
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) mask; got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind == "b":
        return arr
    if kind in "ui":
        return arr != 0
    if kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        if not np.isin(arr, (0.0, 1.0)).all():
            raise ValueError(f"{name} is a float mask with values other than 0 and 1; threshold it first")
        return arr != 0
    raise ValueError(f"{name} must have a bool, integer or float dtype; got {arr.dtype}")


def mask_intersection_union(pred_mask, gt_mask) -> tuple[int, int]:
    """Pixel counts ``I = |pred & gt|`` and ``U = |pred | gt|`` of two binary masks.

    Args:
        pred_mask: ``(H, W)`` binary mask (see :func:`as_binary_mask`).
        gt_mask: ``(H, W)`` binary mask of the same shape.

    Returns:
        ``(I, U)`` as Python ints, in pixels.

    Raises:
        ValueError: invalid masks or mismatched shapes.

    Source: ``computeIoU`` in henghuiding/ReLA ``gres_model/evaluation/refer_evaluation.py``.
    """
    pred = as_binary_mask(pred_mask, "pred_mask")
    gt = as_binary_mask(gt_mask, "gt_mask")
    if pred.shape != gt.shape:
        raise ValueError(f"pred_mask shape {pred.shape} does not match gt_mask shape {gt.shape}")
    return int(np.count_nonzero(pred & gt)), int(np.count_nonzero(pred | gt))


def gres_pred_no_target(pred_scores, score_threshold: float = 0.7) -> bool:
    """Predicted no-target flag as InstanceVG's GRES evaluation derives it.

    Args:
        pred_scores: ``(N,)`` array-like of instance confidences; ``None`` or ``N = 0``
            means no prediction.
        score_threshold: a sample is targeted iff some score is strictly ``>`` this.

    Returns:
        ``True`` iff no score is ``> score_threshold`` (a score of exactly 0.7 gives
        no-target, unlike GREC's ``>=`` box filter).

    Raises:
        ValueError: scores not 1-D or containing NaN.

    Source: ``gres_evaluate`` in Dmmm1997/InstanceVG ``instancevg/evaluations/grefcoco.py``.
    """
    if pred_scores is None:
        return True
    scores = np.asarray(pred_scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"pred_scores must have shape (N,); got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("pred_scores contains NaN")
    return not bool((scores > score_threshold).any())


def _as_flag(value, name: str) -> bool:
    """Validate a single boolean flag (bool, numpy bool, 0/1 int, one-element array)."""
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "bui":
        raise ValueError(f"{name} must be a single bool; got {value!r}")
    flag = arr.reshape(()).item()
    if flag not in (0, 1):
        raise ValueError(f"{name} must be a single bool; got {value!r}")
    return bool(flag)


def _ratio(num, den) -> float:
    """``num / den`` as float, ``nan`` when ``den == 0``."""
    return float(num) / float(den) if den > 0 else math.nan


class GRESEvaluator:
    """Streaming GRES evaluator: cIoU, gIoU, N-acc, T-acc and Pr@{0.7, 0.8, 0.9}.

    Call :meth:`update` once per (image, referring expression) sample, then
    :meth:`compute`.  Only counters are stored, never masks.  See the module docstring
    for the protocol, including the no-target quirks of the official code.

    Args:
        pr_thresholds: IoU thresholds for Pr@t, counted with ``IoU >= t`` over targeted
            samples.  Default ``(0.7, 0.8, 0.9)``.

    Raises:
        ValueError: a threshold that is not a finite number.

    Source: henghuiding/ReLA ``gres_model/evaluation/refer_evaluation.py`` and
    ``gres_evaluate`` in Dmmm1997/InstanceVG ``instancevg/evaluations/grefcoco.py``.
    """

    def __init__(self, pr_thresholds: Sequence[float] = (0.7, 0.8, 0.9)):
        thresholds = []
        for t in pr_thresholds:
            if not isinstance(t, (int, float, np.floating, np.integer)) or not math.isfinite(t):
                raise ValueError(f"pr_thresholds must be finite numbers; got {t!r}")
            thresholds.append(float(t))
        self.pr_thresholds = tuple(thresholds)
        self.reset()

    def reset(self) -> None:
        """Clear all counters."""
        self.n_samples = 0
        self.n_no_target = 0
        self.n_targeted = 0
        self.sum_I = 0  # pixels
        self.sum_U = 0  # pixels
        self.sum_IoU = 0.0
        # Official naming: "positive" = no-target.
        self.nt_TP = 0  # no-target GT, predicted no-target
        self.nt_FN = 0  # no-target GT, predicted targeted
        self.nt_FP = 0  # targeted GT, predicted no-target
        self.nt_TN = 0  # targeted GT, predicted targeted
        self.pr_counts = [0] * len(self.pr_thresholds)

    def update(self, pred_mask, pred_no_target: bool, gt_mask, gt_no_target: bool) -> float:
        """Add one sample and return its per-sample IoU (the value averaged by gIoU).

        Args:
            pred_mask: ``(H, W)`` binary mask (bool, integer nonzero = foreground, or
                float 0/1), the merged prediction, as given (not zeroed when
                ``pred_no_target``; see the module docstring).
            pred_no_target: ``True`` if the model predicts no target (InstanceVG: no
                instance score ``> 0.7``; see :func:`gres_pred_no_target`).
            gt_mask: ``(H, W)`` binary mask, same shape as ``pred_mask`` (empty for
                no-target samples).
            gt_no_target: ``True`` for a no-target sample.

        Returns:
            The per-sample IoU in [0, 1].

        Raises:
            ValueError: masks not 2-D, of different shapes, with NaN or non-binary float
                values, or flags that are not single booleans.  The counters are
                unchanged when it raises.
        """
        inter, union = mask_intersection_union(pred_mask, gt_mask)
        pred_nt = _as_flag(pred_no_target, "pred_no_target")
        gt_nt = _as_flag(gt_no_target, "gt_no_target")

        if gt_nt:
            self.n_no_target += 1
            if pred_nt:
                self.nt_TP += 1
                iou = 1.0
            else:
                self.nt_FN += 1
                iou = 0.0
                self.sum_U += union
        else:
            self.n_targeted += 1
            if pred_nt:
                self.nt_FP += 1
                inter = 0  # official quirk: I dropped, U kept
            else:
                self.nt_TN += 1
            iou = 0.0 if union == 0 else inter / union
            self.sum_I += inter
            self.sum_U += union
            for k, t in enumerate(self.pr_thresholds):
                if iou >= t:
                    self.pr_counts[k] += 1
        self.sum_IoU += iou
        self.n_samples += 1
        return float(iou)

    def merge(self, other: "GRESEvaluator") -> None:
        """Add the counters of another evaluator with the same ``pr_thresholds``."""
        if not isinstance(other, GRESEvaluator):
            raise ValueError(f"can only merge a GRESEvaluator; got {type(other).__name__}")
        if other.pr_thresholds != self.pr_thresholds:
            raise ValueError(f"pr_thresholds differ: {self.pr_thresholds} vs {other.pr_thresholds}")
        for key in ("n_samples", "n_no_target", "n_targeted", "sum_I", "sum_U", "sum_IoU", "nt_TP", "nt_FN",
                    "nt_FP", "nt_TN"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        self.pr_counts = [a + b for a, b in zip(self.pr_counts, other.pr_counts)]

    def compute(self) -> dict:
        """Return the GRES metrics as fractions in [0, 1] plus the counts.

        Returns:
            dict with ``"cIoU"`` (ΣI/ΣU), ``"gIoU"`` (mean per-sample IoU over all
            samples), ``"N-acc"`` (TP/(TP+FN) over no-target GT), ``"T-acc"``
            (TN/(TN+FP) over targeted GT), ``"Pr@0.7"``, ``"Pr@0.8"``, ``"Pr@0.9"`` (one
            key ``f"Pr@{t:g}"`` per threshold, over targeted samples), and the counts
            ``"n_samples"``, ``"n_no_target"``, ``"n_targeted"``, ``"I"``, ``"U"``
            (pixels), ``"nt_TP"``, ``"nt_FN"``, ``"nt_FP"``, ``"nt_TN"``.  A metric
            whose denominator is 0 is ``float('nan')``.
        """
        res = {
            "cIoU": _ratio(self.sum_I, self.sum_U),
            "gIoU": _ratio(self.sum_IoU, self.n_samples),
            "N-acc": _ratio(self.nt_TP, self.nt_TP + self.nt_FN),
            "T-acc": _ratio(self.nt_TN, self.nt_TN + self.nt_FP),
        }
        for t, count in zip(self.pr_thresholds, self.pr_counts):
            res[f"Pr@{t:g}"] = _ratio(count, self.n_targeted)
        res.update(
            n_samples=self.n_samples,
            n_no_target=self.n_no_target,
            n_targeted=self.n_targeted,
            I=self.sum_I,
            U=self.sum_U,
            nt_TP=self.nt_TP,
            nt_FN=self.nt_FN,
            nt_FP=self.nt_FP,
            nt_TN=self.nt_TN,
        )
        return res
