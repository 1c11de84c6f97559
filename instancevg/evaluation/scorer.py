"""Every metric of one evaluation, fed one :class:`~instancevg.runtime.result.GroundingResult` at a time.

The one scoring loop body shared by ``instancevg eval`` (:func:`instancevg.evaluation.evaluate.evaluate`, the
PyTorch model) and ``export/evaluate_bundle.py`` (a bundle under the torch-free runtime), so both
report the same metrics under the same keys. NumPy only.
"""
from __future__ import annotations

import numpy as np

from .consistency import ConsistencyEvaluator
from .grec import GRECEvaluator
from .gres import GRESEvaluator
from .rec_res import RECEvaluator, RESEvaluator

__all__ = ["GroundingScorer", "headline"]


class GroundingScorer:
    """GREC, GRES, REC, RES, per-category REC, no-target false positives and instance consistency.

    GREC scores the final prediction (kept boxes and scores, after duplicate suppression, as the
    InstanceVG reference's ``filtered_boxes``); GRES the union mask and no-target decision; REC
    (top-1 of every query, before suppression) and RES only the single-target samples, the
    classic REC/RES special cases (InstanceVG ``apis/test.py``).
    """

    def __init__(self):
        self.grec, self.gres, self.rec, self.res = GRECEvaluator(), GRESEvaluator(), RECEvaluator(), RESEvaluator()
        self.consistency = ConsistencyEvaluator()
        self.per_category: dict[str, list[int]] = {}  # category -> [single-target samples, top-1 IoU >= 0.5]
        self.per_granularity: dict[str, RESEvaluator] = {}  # "object" / "part" -> RES over its targeted samples
        self.confident_fp = 0  # no-target samples answered with a kept box
        self.n = 0

    def update(self, result, gt_boxes, gt_union: np.ndarray, category: str | None = None,
               points: np.ndarray | None = None, granularity: str | None = None) -> None:
        """Add one sample.

        Args:
            result: the post-processed prediction (``extra["all_boxes"]`` / ``["all_scores"]``
                hold every query, for REC's top-1).
            gt_boxes: (K, 4) xyxy pixels of the referred instances; K = 0 for no-target.
            gt_union: (H, W) bool union of their masks, at the result's size.
            category: the single target's category name (COCO-label sources), or None.
            points: (K', 2) reference points (x, y) in pixels of the kept instances, or None
                when the predictor does not report them (the runtime).
            granularity: ``"object"`` or ``"part"`` for multi-granularity data (part-level
                sources); a targeted sample's union-mask IoU then also counts in that
                granularity's mIoU / oIoU, as RefCOCOm reports them. None: not counted.

        Raises:
            ValueError: from the evaluators (shapes, NaN boxes, masks of different sizes).
        """
        gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
        self.consistency.update(result.boxes, result.masks, points)
        self.grec.update(result.boxes, result.scores, gt_boxes)
        self.gres.update(result.union_mask, result.no_target, gt_union, gt_boxes.shape[0] == 0)
        self.confident_fp += int(gt_boxes.shape[0] == 0 and len(result.boxes) > 0)
        if granularity and gt_boxes.shape[0]:
            self.per_granularity.setdefault(granularity, RESEvaluator()).update(result.union_mask, gt_union)
        if gt_boxes.shape[0] == 1:
            iou = self.rec.update(result.extra["all_boxes"], result.extra["all_scores"], gt_boxes[0])
            self.res.update(result.union_mask, gt_union)
            if category:
                counts = self.per_category.setdefault(category, [0, 0])
                counts[0] += 1
                counts[1] += int(iou >= 0.5)
        self.n += 1

    def merge(self, other: "GroundingScorer") -> None:
        """Add another scorer's samples (sharded evaluation)."""
        for mine, theirs in ((self.grec, other.grec), (self.gres, other.gres), (self.rec, other.rec),
                             (self.res, other.res), (self.consistency, other.consistency)):
            mine.merge(theirs)
        self.n += other.n
        self.confident_fp += other.confident_fp
        for name, res in other.per_granularity.items():
            self.per_granularity.setdefault(name, RESEvaluator()).merge(res)
        for cat, (k, hits) in other.per_category.items():
            counts = self.per_category.setdefault(cat, [0, 0])
            counts[0], counts[1] = counts[0] + k, counts[1] + hits

    def compute(self) -> dict:
        """``{"GREC": {...}, "GRES": {...}, "REC": {...}, "RES": {...}, "n_samples": N,
        "no-target FP": int, "consistency": {...}, "REC per category": {name: {"n", "Acc@0.5"}},
        "RES per granularity": {"object" / "part": {"mIoU", "oIoU", ...}}}`` (the last empty
        unless granularities were given); metric values are fractions in [0, 1]."""
        return {"GREC": self.grec.compute(), "GRES": self.gres.compute(), "REC": self.rec.compute(),
                "RES": self.res.compute(), "n_samples": self.n, "no-target FP": self.confident_fp,
                "consistency": self.consistency.compute(),
                "REC per category": {c: {"n": k, "Acc@0.5": hits / k}
                                     for c, (k, hits) in sorted(self.per_category.items())},
                "RES per granularity": {g: res.compute() for g, res in sorted(self.per_granularity.items())}}


def headline(metrics: dict) -> dict[str, float]:
    """The numbers the model card reports, flattened (fractions), from :meth:`GroundingScorer.compute`."""
    return {
        "GREC Pr@(F1=1,IoU>=0.5)": metrics["GREC"]["precision"],
        "GREC N-acc": metrics["GREC"]["n_acc"],
        "GRES cIoU": metrics["GRES"]["cIoU"],
        "GRES gIoU": metrics["GRES"]["gIoU"],
        "GRES N-acc": metrics["GRES"]["N-acc"],
        "GRES T-acc": metrics["GRES"]["T-acc"],
        "REC Acc@0.5": metrics["REC"]["Acc@0.5"],
        "RES mIoU": metrics["RES"]["mIoU"],
        "RES oIoU": metrics["RES"]["oIoU"],
    }
