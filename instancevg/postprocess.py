"""From network outputs to a :class:`GroundingResult` at the original image size
(DESIGN.md "Post-processing")."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .box_ops import box_cxcywh_to_xyxy
from .result import GroundingResult


@torch.no_grad()
def postprocess(outputs: dict, index: int, text: str, image_size: tuple[int, int],
                score_threshold: float = 0.7, mask_threshold: float = 0.5) -> GroundingResult:
    """Post-process sample ``index`` of a batch of model outputs.

    Keeps queries with score > ``score_threshold`` (sorted by score); no-target when none is
    kept. Boxes: cxcywh normalised -> xyxy original pixels, clipped to the image. Masks:
    instance and global logits bilinearly upsampled to (H, W), thresholded at
    ``mask_threshold`` after the sigmoid. union = global mask | kept instance masks, and all
    False for no-target (as ReLA's inference zeroes the mask when no-target is predicted).

    Args:
        outputs: dict of :meth:`InstanceVGModel.ground`.
        index: sample index in the batch.
        text: the expression (copied into the result).
        image_size: (H, W) of the original image in pixels.

    Raises:
        ValueError: if ``mask_threshold`` is not in (0, 1).

    Returns:
        a GroundingResult; ``extra["all_scores"]`` holds every query's score (Nq,) and
        ``extra["all_boxes"]`` every query's box (Nq, 4) xyxy pixels, for evaluation.
    """
    if not 0.0 < mask_threshold < 1.0:
        raise ValueError(f"mask_threshold must be in (0, 1), got {mask_threshold}")
    h, w = int(image_size[0]), int(image_size[1])
    scores = outputs["scores"][index].float()
    boxes = box_cxcywh_to_xyxy(outputs["pred_boxes"][index].float())
    boxes = boxes * torch.tensor([w, h, w, h], dtype=torch.float32, device=boxes.device)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    order = torch.argsort(scores, descending=True)
    keep = order[scores[order] > score_threshold]
    logit_thr = float(np.log(mask_threshold / (1 - mask_threshold)))
    if keep.numel():
        inst = F.interpolate(outputs["pred_masks"][index, keep][None].float(), size=(h, w), mode="bilinear",
                             align_corners=False)[0]
        masks = (inst > logit_thr).cpu().numpy()
        glob = F.interpolate(outputs["global_mask"][index][None].float(), size=(h, w), mode="bilinear",
                             align_corners=False)[0, 0]
        union = (glob > logit_thr).cpu().numpy() | masks.any(0)
    else:
        masks = np.zeros((0, h, w), dtype=bool)
        union = np.zeros((h, w), dtype=bool)
    return GroundingResult(
        text=text,
        boxes=boxes[keep].cpu().numpy().astype(np.float32),
        scores=scores[keep].cpu().numpy().astype(np.float32),
        masks=masks,
        union_mask=union,
        no_target=keep.numel() == 0,
        image_size=(h, w),
        extra={"all_scores": scores.cpu().numpy(), "all_boxes": boxes.cpu().numpy()},
    )
