"""From network outputs to a :class:`GroundingResult` at the original image size
(docs/DESIGN.md "Post-processing")."""
from __future__ import annotations

import numpy as np
import torch

from .box_ops import box_cxcywh_to_xyxy
from .consistency import apply_consistency_rule
from .kernels import mask_head
from .nms import suppress_duplicates
from .result import GroundingResult
from .thresholds import MASK_THRESHOLD, NMS_IOU, SCORE_THRESHOLD


@torch.no_grad()
def postprocess(outputs: dict, index: int, text: str, image_size: tuple[int, int],
                score_threshold: float = SCORE_THRESHOLD, mask_threshold: float = MASK_THRESHOLD,
                kernels: str = "auto", nms_iou: float = NMS_IOU, consistency: str = "off") -> GroundingResult:
    """Post-process sample ``index`` of a batch of model outputs.

    Keeps queries with score > ``score_threshold`` (sorted by score), then drops duplicates:
    a kept query whose box has IoU > ``nms_iou`` with a higher-scoring kept box
    (:func:`instancevg.nms.suppress_duplicates`); no-target when none is kept. Boxes: cxcywh
    normalised -> xyxy original pixels, clipped to the image. Masks: instance and global logits
    bilinearly upsampled to (H, W), thresholded at ``mask_threshold`` after the sigmoid.
    union = global mask | kept instance masks, and all False for no-target (as ReLA's inference
    zeroes the mask when no-target is predicted).
    The masks come from :func:`instancevg.kernels.mask_head` (the fused Triton kernel on CUDA,
    the unfused PyTorch path elsewhere; ``kernels`` forces either).

    Args:
        outputs: dict of :meth:`InstanceVGModel.ground`.
        index: sample index in the batch.
        text: the expression (copied into the result).
        image_size: (H, W) of the original image in pixels.
        kernels: mask-head backend, ``auto`` | ``triton`` | ``reference``.
        nms_iou: duplicate-suppression IoU in (0, 1]; 1.0 keeps every query above the threshold.
        consistency: box/mask rule applied to the kept instances (``instancevg.consistency``).

    Raises:
        ValueError: if ``mask_threshold`` is not in (0, 1), ``nms_iou`` not in (0, 1] or
            ``consistency`` unknown.

    Returns:
        a GroundingResult; ``extra["all_scores"]`` holds every query's score (Nq,) and
        ``extra["all_boxes"]`` every query's box (Nq, 4) xyxy pixels, before duplicate
        suppression (REC's top-1; GREC is scored on ``boxes``/``scores``);
        ``extra["kept_queries"]`` (K,) the query index of each kept instance.
    """
    if not 0.0 < mask_threshold < 1.0:
        raise ValueError(f"mask_threshold must be in (0, 1), got {mask_threshold}")
    h, w = int(image_size[0]), int(image_size[1])
    scores = outputs["scores"][index].float()
    boxes = box_cxcywh_to_xyxy(outputs["pred_boxes"][index].float())
    boxes = boxes * torch.tensor([w, h, w, h], dtype=torch.float32, device=boxes.device)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    order = torch.argsort(scores, descending=True, stable=True)  # ties as the NumPy runtime's stable sort
    boxes_np, scores_np = boxes.cpu().numpy(), scores.cpu().numpy()  # (Nq, 4), (Nq,): one copy each
    keep_np = suppress_duplicates(boxes_np, order[scores[order] > score_threshold].cpu().numpy(), nms_iou)
    keep = torch.as_tensor(keep_np, dtype=torch.long, device=scores.device)
    keep_mask = torch.zeros_like(scores, dtype=torch.bool)
    keep_mask[keep] = True
    inst, union = mask_head(outputs["mask_embed"][index:index + 1], outputs["pixel_embed"][index:index + 1],
                            outputs["global_mask"][index:index + 1], keep_mask[None], (h, w), mask_threshold,
                            backend=kernels)
    masks = inst[0, keep].bool().cpu().numpy()
    union = union[0].bool().cpu().numpy()
    kept_boxes, masks, agree = apply_consistency_rule(boxes_np[keep_np], masks, consistency)
    keep_np = keep_np[agree]
    if keep_np.size == 0:
        union = np.zeros_like(union)  # "no target": no mask either, as the runtime answers
    return GroundingResult(
        text=text,
        boxes=kept_boxes,
        scores=scores_np[keep_np].astype(np.float32),
        masks=masks,
        union_mask=union,
        no_target=keep_np.size == 0,
        image_size=(h, w),
        extra={"all_scores": scores_np, "all_boxes": boxes_np, "kept_queries": keep_np},
    )
