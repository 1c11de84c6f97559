"""From network outputs to a :class:`GroundingResult` at the original image size
(docs/DESIGN.md "Post-processing")."""
from __future__ import annotations

import torch

from .kernels import mask_head
from .runtime.decision import DEFAULT_DECISION, Decision
from .runtime.postprocess import grounding_result, select_instances
from .runtime.result import GroundingResult


@torch.no_grad()
def postprocess(outputs: dict, index: int, text: str, image_size: tuple[int, int],
                decision: Decision = DEFAULT_DECISION, kernels: str = "auto") -> GroundingResult:
    """Post-process sample ``index`` of a batch of model outputs.

    Query selection and the result are the runtime's one implementation
    (:func:`instancevg.runtime.postprocess.select_instances` and
    :func:`~instancevg.runtime.postprocess.grounding_result`); only the masks are computed here.
    Keeps queries with score > ``decision.score`` (sorted by score), then drops duplicates:
    a kept query whose box has IoU > ``decision.nms_iou`` with a higher-scoring kept box
    (:func:`instancevg.runtime.nms.suppress_duplicates`); no-target when none is kept. Boxes: cxcywh
    normalised -> xyxy original pixels, clipped to the image. Masks: instance and global logits
    bilinearly upsampled to (H, W), thresholded at ``decision.mask`` after the sigmoid; then the
    ``decision.consistency`` box/mask rule.
    union = global mask | kept instance masks, and all False for no-target (as ReLA's inference
    zeroes the mask when no-target is predicted).
    The masks come from :func:`instancevg.kernels.mask_head` (the fused Triton kernel on CUDA,
    the unfused PyTorch path elsewhere; ``kernels`` forces either).

    Args:
        outputs: the :class:`GroundingOutput` of :meth:`InstanceVGModel.ground`.
        index: sample index in the batch.
        text: the expression (copied into the result).
        image_size: (H, W) of the original image in pixels.
        decision: thresholds and box/mask rule (:class:`instancevg.runtime.decision.Decision`;
            a model's own is ``model.config.decision``).
        kernels: mask-head backend, ``auto`` | ``triton`` | ``reference``.

    Returns:
        a GroundingResult; ``extra["all_scores"]`` holds every query's score (Nq,) and
        ``extra["all_boxes"]`` every query's box (Nq, 4) xyxy pixels, before duplicate
        suppression (REC's top-1; GREC is scored on ``boxes``/``scores``);
        ``extra["kept_queries"]`` (K,) the query index of each kept instance.
    """
    h, w = int(image_size[0]), int(image_size[1])
    scores_np, boxes_np, keep_np = select_instances(outputs.scores[index].float().cpu().numpy(),
                                                    outputs.pred_boxes[index].float().cpu().numpy(),
                                                    (h, w), decision)
    keep = torch.as_tensor(keep_np, dtype=torch.long, device=outputs.scores.device)
    keep_mask = torch.zeros(scores_np.shape, dtype=torch.bool, device=keep.device)
    keep_mask[keep] = True
    inst, union = mask_head(outputs.mask_embed[index:index + 1], outputs.pixel_embed[index:index + 1],
                            outputs.global_mask[index:index + 1], keep_mask[None], (h, w), decision.mask,
                            backend=kernels)
    masks = inst[0, keep.to(inst.device)].bool().cpu().numpy()
    return grounding_result(text, scores_np, boxes_np, keep_np, masks, union[0].bool().cpu().numpy(), (h, w),
                            decision)
