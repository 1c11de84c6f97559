"""From network outputs to a :class:`GroundingResult` at the original image size
(docs/DESIGN.md "Post-processing")."""
from __future__ import annotations

import torch

from .kernels import mask_head
from .runtime.result import GroundingResult
from .runtime.postprocess import check_mask_threshold, grounding_result, select_instances
from .runtime.thresholds import MASK_THRESHOLD, NMS_IOU, SCORE_THRESHOLD


@torch.no_grad()
def postprocess(outputs: dict, index: int, text: str, image_size: tuple[int, int],
                score_threshold: float = SCORE_THRESHOLD, mask_threshold: float = MASK_THRESHOLD,
                kernels: str = "auto", nms_iou: float = NMS_IOU, consistency: str = "off") -> GroundingResult:
    """Post-process sample ``index`` of a batch of model outputs.

    Query selection and the result are the runtime's one implementation
    (:func:`instancevg.runtime.postprocess.select_instances` and
    :func:`~instancevg.runtime.postprocess.grounding_result`); only the masks are computed here.
    Keeps queries with score > ``score_threshold`` (sorted by score), then drops duplicates:
    a kept query whose box has IoU > ``nms_iou`` with a higher-scoring kept box
    (:func:`instancevg.runtime.nms.suppress_duplicates`); no-target when none is kept. Boxes: cxcywh
    normalised -> xyxy original pixels, clipped to the image. Masks: instance and global logits
    bilinearly upsampled to (H, W), thresholded at ``mask_threshold`` after the sigmoid.
    union = global mask | kept instance masks, and all False for no-target (as ReLA's inference
    zeroes the mask when no-target is predicted).
    The masks come from :func:`instancevg.kernels.mask_head` (the fused Triton kernel on CUDA,
    the unfused PyTorch path elsewhere; ``kernels`` forces either).

    Args:
        outputs: the :class:`GroundingOutput` of :meth:`InstanceVGModel.ground`.
        index: sample index in the batch.
        text: the expression (copied into the result).
        image_size: (H, W) of the original image in pixels.
        kernels: mask-head backend, ``auto`` | ``triton`` | ``reference``.
        nms_iou: duplicate-suppression IoU in (0, 1]; 1.0 keeps every query above the threshold.
        consistency: box/mask rule applied to the kept instances (``instancevg.runtime.consistency``).

    Raises:
        ValueError: if ``mask_threshold`` is not in (0, 1), ``nms_iou`` not in (0, 1] or
            ``consistency`` unknown.

    Returns:
        a GroundingResult; ``extra["all_scores"]`` holds every query's score (Nq,) and
        ``extra["all_boxes"]`` every query's box (Nq, 4) xyxy pixels, before duplicate
        suppression (REC's top-1; GREC is scored on ``boxes``/``scores``);
        ``extra["kept_queries"]`` (K,) the query index of each kept instance.
    """
    check_mask_threshold(mask_threshold)
    h, w = int(image_size[0]), int(image_size[1])
    scores_np, boxes_np, keep_np = select_instances(outputs.scores[index].float().cpu().numpy(),
                                                    outputs.pred_boxes[index].float().cpu().numpy(),
                                                    (h, w), score_threshold, nms_iou)
    keep = torch.as_tensor(keep_np, dtype=torch.long, device=outputs.scores.device)
    keep_mask = torch.zeros(scores_np.shape, dtype=torch.bool, device=keep.device)
    keep_mask[keep] = True
    inst, union = mask_head(outputs.mask_embed[index:index + 1], outputs.pixel_embed[index:index + 1],
                            outputs.global_mask[index:index + 1], keep_mask[None], (h, w), mask_threshold,
                            backend=kernels)
    masks = inst[0, keep.to(inst.device)].bool().cpu().numpy()
    return grounding_result(text, scores_np, boxes_np, keep_np, masks, union[0].bool().cpu().numpy(), (h, w),
                            consistency)
