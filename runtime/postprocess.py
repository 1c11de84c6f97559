"""Grounder outputs -> :class:`instancevg.result.GroundingResult` at the frame size, in NumPy/OpenCV
(``extra["all_scores"]`` (Nq,) and ``extra["all_boxes"]`` (Nq, 4) xyxy pixels hold every query
before duplicate suppression, for REC's top-1).

Same semantics as ``instancevg.postprocess.postprocess`` (docs/DESIGN.md "Post-processing"): keep
queries with score > threshold sorted by descending score, drop duplicates by greedy box NMS
(``instancevg.nms``), no-target when none is kept; boxes
cxcywh normalised -> xyxy frame pixels clipped to the frame; mask logits bilinearly upsampled
(``cv2.resize`` INTER_LINEAR = half-pixel centres, as ``F.interpolate(align_corners=False)``)
and thresholded in logit space; union = global | kept instances, all False for no-target.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from instancevg.consistency import apply_consistency_rule  # numpy only: no torch import
from instancevg.nms import suppress_duplicates  # numpy only: no torch import
from instancevg.result import GroundingResult  # numpy-only dataclass: no torch import
from instancevg.thresholds import NMS_IOU  # constants only

from .boxes import box_cxcywh_to_xyxy


def postprocess_one(scores: np.ndarray, boxes: np.ndarray, instance_logits: np.ndarray, global_logits: np.ndarray,
                    text: str, frame_hw: tuple[int, int], score_threshold: float,
                    mask_threshold: float, nms_iou: float = NMS_IOU, consistency: str = "off") -> GroundingResult:
    """Post-process one expression's grounder outputs.

    Args:
        scores: (Nq,) float32 in [0, 1].
        boxes: (Nq, 4) float32 cxcywh normalised.
        instance_logits: (Nq, m, m) float32 mask logits.
        global_logits: (1, m, m) float32 global mask logits.
        text: the expression (copied into the result).
        frame_hw: (H, W) of the frame in pixels.
        score_threshold: keep a query when its score is above this.
        mask_threshold: sigmoid threshold of the masks, in (0, 1).
        nms_iou: duplicate-suppression IoU in (0, 1]; 1.0 keeps every query above the threshold.
        consistency: box/mask rule applied to the kept instances (``instancevg.consistency``,
            the same function as the PyTorch post-processing).

    Raises:
        ValueError: if ``mask_threshold`` is not in (0, 1), ``nms_iou`` not in (0, 1] or
            ``consistency`` unknown.
    """
    if not 0.0 < mask_threshold < 1.0:
        raise ValueError(f"mask_threshold must be in (0, 1), got {mask_threshold}")
    h, w = int(frame_hw[0]), int(frame_hw[1])
    scores = np.asarray(scores, dtype=np.float32)
    xyxy = box_cxcywh_to_xyxy(boxes) * np.float32([w, h, w, h])
    xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, w)
    xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, h)
    order = np.argsort(-scores, kind="stable")
    keep = suppress_duplicates(xyxy, order[scores[order] > score_threshold], nms_iou)
    logit_thr = math.log(mask_threshold / (1 - mask_threshold))
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
    kept_boxes, masks, agree = apply_consistency_rule(xyxy[keep], masks, consistency)
    keep = keep[agree]
    if keep.size == 0:
        union = np.zeros_like(union)  # every instance dropped by the consistency rule: no target
    return GroundingResult(text=text, boxes=kept_boxes,
                           scores=scores[keep], masks=masks, union_mask=union, no_target=keep.size == 0,
                           image_size=(h, w),
                           extra={"all_scores": scores, "all_boxes": xyxy, "kept_queries": keep})
