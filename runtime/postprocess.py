"""Grounder outputs -> :class:`instancevg.runtime.result.GroundingResult` at the frame size, in NumPy/OpenCV
(``extra["all_scores"]`` (Nq,) and ``extra["all_boxes"]`` (Nq, 4) xyxy pixels hold every query
before duplicate suppression, for REC's top-1).

Query selection (:func:`select_instances`) and the final result (:func:`grounding_result`) are
the one implementation the PyTorch ``instancevg.postprocess.postprocess`` also calls; only the
mask upsampling differs (OpenCV here; Triton or torch there). docs/DESIGN.md "Post-processing": keep
queries with score > threshold sorted by descending score, drop duplicates by greedy box NMS
(``instancevg.runtime.nms``), no-target when none is kept; boxes
cxcywh normalised -> xyxy frame pixels clipped to the frame; mask logits bilinearly upsampled
(``cv2.resize`` INTER_LINEAR = half-pixel centres, as ``F.interpolate(align_corners=False)``)
and thresholded in logit space; union = global | kept instances, all False for no-target.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .boxes import box_cxcywh_to_xyxy
from .consistency import apply_consistency_rule
from .decision import DEFAULT_DECISION, Decision
from .nms import suppress_duplicates
from .result import GroundingResult


def select_instances(scores: np.ndarray, boxes: np.ndarray, frame_hw: tuple[int, int],
                     decision: Decision = DEFAULT_DECISION) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which queries become instances: score threshold, then greedy box NMS.

    The one implementation of query selection, used by this runtime and by the PyTorch
    post-processing (``instancevg.postprocess``).

    Args:
        scores: (Nq,) float scores in [0, 1].
        boxes: (Nq, 4) float cxcywh, normalised to [0, 1].
        frame_hw: (H, W) of the frame in pixels.
        decision: keep a query when its score is above ``decision.score``, then greedy box NMS
            at ``decision.nms_iou``.

    Returns:
        ``(scores, xyxy, keep)``: scores as (Nq,) float32; every query's box as (Nq, 4) float32
        xyxy frame pixels clipped to the frame; the kept query indices (K,) int64 by descending
        score (ties in query order), K = 0 for no-target.

    Raises:
        ValueError: a box is NaN/inf.
    """
    h, w = int(frame_hw[0]), int(frame_hw[1])
    scores = np.asarray(scores, dtype=np.float32)
    xyxy = box_cxcywh_to_xyxy(boxes) * np.float32([w, h, w, h])
    xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, w)
    xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, h)
    order = np.argsort(-scores, kind="stable")
    keep = suppress_duplicates(xyxy, order[scores[order] > decision.score], decision.nms_iou)
    return scores, xyxy, keep


def grounding_result(text: str, scores: np.ndarray, xyxy: np.ndarray, keep: np.ndarray, masks: np.ndarray,
                     union: np.ndarray, frame_hw: tuple[int, int],
                     decision: Decision = DEFAULT_DECISION) -> GroundingResult:
    """Apply the box/mask consistency rule to the selected instances and build the result.

    The one implementation shared by this runtime and ``instancevg.postprocess``.

    Args:
        text: the expression (copied into the result).
        scores, xyxy, keep: from :func:`select_instances`.
        masks: (K, H, W) bool instance masks of the kept queries, in ``keep`` order.
        union: (H, W) bool, the global mask OR the kept instance masks.
        frame_hw: (H, W) in pixels.
        decision: its ``consistency`` box/mask rule is applied (``instancevg.runtime.consistency``).

    Returns:
        a GroundingResult; ``no_target`` (and an all-False union) when no instance is left.
        ``extra``: ``all_scores`` (Nq,), ``all_boxes`` (Nq, 4) xyxy pixels before duplicate
        suppression (REC's top-1), ``kept_queries`` (K,) query index of each kept instance.
    """
    kept_boxes, masks, agree = apply_consistency_rule(xyxy[keep], masks, decision.consistency)
    keep = keep[agree]
    if keep.size == 0:
        union = np.zeros_like(union)  # no instance left (none kept, or all dropped by the rule): no mask
    return GroundingResult(text=text, boxes=kept_boxes, scores=scores[keep], masks=masks, union_mask=union,
                           no_target=keep.size == 0, image_size=(int(frame_hw[0]), int(frame_hw[1])),
                           extra={"all_scores": scores, "all_boxes": xyxy, "kept_queries": keep})


def postprocess_one(scores: np.ndarray, boxes: np.ndarray, instance_logits: np.ndarray, global_logits: np.ndarray,
                    text: str, frame_hw: tuple[int, int], decision: Decision = DEFAULT_DECISION) -> GroundingResult:
    """Post-process one expression's grounder outputs (:func:`select_instances`, the masks
    upsampled with OpenCV, then :func:`grounding_result`).

    Args:
        scores: (Nq,) float32 in [0, 1].
        boxes: (Nq, 4) float32 cxcywh normalised.
        instance_logits: (Nq, m, m) float32 mask logits.
        global_logits: (1, m, m) float32 global mask logits.
        text: the expression (copied into the result).
        frame_hw: (H, W) of the frame in pixels.
        decision: score threshold, mask threshold, NMS IoU and box/mask rule.
    """
    h, w = int(frame_hw[0]), int(frame_hw[1])
    scores, xyxy, keep = select_instances(scores, boxes, (h, w), decision)
    logit_thr = math.log(decision.mask / (1 - decision.mask))
    k = keep.size
    if k:
        stack = np.concatenate([instance_logits[keep], global_logits[:1]], 0).astype(np.float32)
        # cv2.resize takes (m, m, C) with C <= 512 channels; 2-D in, 2-D out
        up = cv2.resize(np.ascontiguousarray(stack.transpose(1, 2, 0)), (w, h), interpolation=cv2.INTER_LINEAR)
        up = up.reshape(h, w, k + 1) > logit_thr
        masks = np.ascontiguousarray(up[..., :k].transpose(2, 0, 1))
        union = up[..., k] | masks.any(0)
    else:
        masks = np.zeros((0, h, w), dtype=bool)
        union = np.zeros((h, w), dtype=bool)
    return grounding_result(text, scores, xyxy, keep, masks, union, (h, w), decision)
