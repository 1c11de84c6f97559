"""Training losses of InstanceVG-edge (docs/DESIGN.md "Losses").

* Detection, every decoder layer (own matching per layer): CE with no-object weight 0.1,
  5 * L1(box) + 2 * (1 - GIoU), normalised by the number of GT instances in the batch (min 1);
  ``LOSS_WEIGHTINGS["official"]`` scales it as the reference code does (see there).
  Samples without targets supervise every query as no-object.
* Masks, last layer: matched instance masks Dice + BCE; unmatched queries BCE against an empty
  mask * 0.2 (Dice is undefined against an empty target, so only BCE there); global mask
  Dice + BCE against the union; heatmap G BCE * 0.1 against the union at stride 16;
  existence CE * 0.2.
* With ``ModelConfig.mask_grounding``: MagNet's masked-word CE * 0.1 and cross-modal alignment
  InfoNCE * 0.1 (``instancevg.training.mask_grounding``).

Quirks of the reference that are fixed on purpose: the reference normalises the mask loss by
the matched count without a floor (NaN/inf on all-empty batches); here every normaliser is
clamped to >= 1, so a batch without any target gives finite losses.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .box_ops import box_cxcywh_to_xyxy, generalized_box_iou_pairwise
from .mask_grounding import alignment_loss, mask_grounding_loss
from .matcher import MatcherWeights, hungarian_match


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (defaults: docs/DESIGN.md "Losses").

    ``mask_grounding`` and ``alignment`` weigh MagNet's two terms, used only when the outputs
    carry the Mask Grounding head's predictions (``ModelConfig.mask_grounding``).
    ``detection_scale`` multiplies the whole detection loss (every layer); ``aux_ce`` /
    ``aux_l1`` / ``aux_giou`` weigh the earlier decoder layers (None: as the last layer).
    :data:`LOSS_WEIGHTINGS` names the two settings in use.
    """

    detection_scale: float = 1.0
    aux_ce: float | None = None
    aux_l1: float | None = None
    aux_giou: float | None = None
    ce: float = 1.0
    no_object: float = 0.1
    l1: float = 5.0
    giou: float = 2.0
    mask_bce: float = 1.0
    mask_dice: float = 1.0
    unmatched_mask: float = 0.2
    global_bce: float = 1.0
    global_dice: float = 1.0
    heatmap: float = 0.1
    existence: float = 0.2
    mask_grounding: float = 0.1
    alignment: float = 0.1


LOSS_WEIGHTINGS = {
    # The original specification (../shared/DESIGN.md): 1 / 5 / 2 on every decoder layer.
    "design": LossWeights(),
    # As Dmmm1997/InstanceVG applies it (configs/gres/InstanceVG-grefcoco.py, models/heads/
    # uni_gref_deformable_head.py): the detection sum is scaled by loss_weight["bbox"] = 0.1 and the
    # auxiliary layers' loss_class_i / loss_bbox_i / loss_giou_i are missing from the weight dict, so
    # they keep weight 1: effective 0.1 / 0.5 / 0.2 on the last layer, 0.1 / 0.1 / 0.1 on earlier ones.
    "official": LossWeights(detection_scale=0.1, aux_ce=1.0, aux_l1=1.0, aux_giou=1.0),
}


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss per row: logits/targets (N, P) -> (N,), smoothing 1 so empty targets are finite."""
    p = logits.sigmoid()
    num = 2 * (p * targets).sum(-1) + 1
    den = p.sum(-1) + targets.sum(-1) + 1
    return 1 - num / den


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _detection_losses(logits, boxes, matches, gt_boxes, num_gt, w: LossWeights):
    b, nq, _ = logits.shape
    target_cls = torch.ones(b, nq, dtype=torch.long, device=logits.device)  # 1 = no-object
    for i, (q, _) in enumerate(matches):
        target_cls[i, q.to(logits.device)] = 0
    class_weight = torch.tensor([1.0, w.no_object], device=logits.device)
    ce = F.cross_entropy(logits.float().reshape(-1, 2), target_cls.reshape(-1), weight=class_weight)
    src = [boxes[i, q.to(boxes.device)] for i, (q, _) in enumerate(matches)]
    tgt = [gt_boxes[i][t.to(boxes.device)] for i, (_, t) in enumerate(matches)]
    src = torch.cat(src).float()
    tgt = torch.cat(tgt).float()
    if src.shape[0]:
        l1 = F.l1_loss(src, tgt, reduction="sum") / num_gt
        giou = torch.diag(generalized_box_iou_pairwise(box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt)))
        giou_loss = (1 - giou).sum() / num_gt
    else:
        l1 = giou_loss = boxes.sum() * 0.0
    return ce, l1, giou_loss


def grounding_loss(
    outputs: dict,
    targets: list[dict],
    weights: LossWeights = LossWeights(),
    matcher_weights: MatcherWeights = MatcherWeights(),
    num_gt: float | None = None,
) -> dict[str, torch.Tensor]:
    """Total training loss and its parts.

    Args:
        outputs: the :class:`GroundingOutput` of :meth:`InstanceVGModel.ground`.
        targets: per sample ``{"boxes": (K,4) cxcywh normalised, "masks": (K,h,w) float in
            [0,1] at the pixel-embedding size, "union": (h,w) float}``; K = 0 for no-target.
        weights, matcher_weights: loss and matching-cost weights.
        num_gt: the normaliser of the box and matched-mask losses; default this batch's GT count.
            Under DDP pass the count summed over ranks divided by the world size (as DETR's
            ``num_boxes``), so every rank normalises alike.

    Returns:
        dict with ``loss`` (scalar, the weighted sum) and every unweighted part (detached).
    """
    device = outputs.pred_logits.device
    gt_boxes = [t["boxes"].to(device) for t in targets]
    num_gt = max(float(sum(g.shape[0] for g in gt_boxes)) if num_gt is None else float(num_gt), 1.0)
    ref = outputs.reference_points
    parts: dict[str, torch.Tensor] = {}
    total = outputs.pred_logits.sum() * 0.0
    layers = outputs.layers()
    last_matches = None
    for li, layer in enumerate(layers):
        matches = hungarian_match(layer.pred_logits, layer.pred_boxes, ref, gt_boxes, matcher_weights)
        ce, l1, giou = _detection_losses(layer.pred_logits, layer.pred_boxes, matches, gt_boxes, num_gt, weights)
        last = li == len(layers) - 1
        w_ce, w_l1, w_giou = (weights.ce, weights.l1, weights.giou) if last else (
            _or(weights.aux_ce, weights.ce), _or(weights.aux_l1, weights.l1), _or(weights.aux_giou, weights.giou))
        total = total + weights.detection_scale * (w_ce * ce + w_l1 * l1 + w_giou * giou)
        suffix = "" if last else f"_{li}"
        parts[f"ce{suffix}"], parts[f"l1{suffix}"], parts[f"giou{suffix}"] = ce, l1, giou
        last_matches = matches

    masks = outputs.pred_masks.float()  # (B, Nq, h, w)
    b, nq = masks.shape[:2]
    flat = masks.flatten(2)
    matched_src, matched_tgt = [], []
    unmatched = torch.ones(b, nq, dtype=torch.bool, device=device)
    for i, (q, t) in enumerate(last_matches):
        q = q.to(device)
        unmatched[i, q] = False
        matched_src.append(flat[i, q])
        matched_tgt.append(targets[i]["masks"].to(device).flatten(1)[t.to(device)].float())
    src = torch.cat(matched_src)
    if src.shape[0]:
        tgt = torch.cat(matched_tgt)
        mask_bce = F.binary_cross_entropy_with_logits(src, tgt, reduction="none").mean(-1).sum() / num_gt
        mask_dice = dice_loss(src, tgt).sum() / num_gt
    else:
        mask_bce = mask_dice = flat.sum() * 0.0
    rest = flat[unmatched]
    unmatched_bce = (
        F.binary_cross_entropy_with_logits(rest, torch.zeros_like(rest)) if rest.shape[0] else flat.sum() * 0.0
    )

    union = torch.stack([t["union"].to(device).float() for t in targets])  # (B, h, w)
    gm = outputs.global_mask.float().flatten(1)
    global_bce = F.binary_cross_entropy_with_logits(gm, union.flatten(1))
    global_dice = dice_loss(gm, union.flatten(1)).mean()

    heat = outputs.heatmap.float()
    heat_target = F.adaptive_avg_pool2d(union[:, None], heat.shape[-2:])[:, 0]
    heatmap = F.binary_cross_entropy_with_logits(heat, heat_target)

    present = torch.tensor([int(g.shape[0] > 0) for g in gt_boxes], device=device)
    existence = F.cross_entropy(outputs.existence.float(), present)

    total = (
        total
        + weights.mask_bce * mask_bce
        + weights.mask_dice * mask_dice
        + weights.unmatched_mask * unmatched_bce
        + weights.global_bce * global_bce
        + weights.global_dice * global_dice
        + weights.heatmap * heatmap
        + weights.existence * existence
    )
    if outputs.mask_grounding is not None:  # MagNet's auxiliary terms (training/mask_grounding.py)
        has_target = present.bool()
        parts["mask_grounding"] = mask_grounding_loss(outputs.mask_grounding, has_target)
        parts["alignment"] = alignment_loss(outputs.mask_grounding, has_target)
        total = total + weights.mask_grounding * parts["mask_grounding"] + weights.alignment * parts["alignment"]
    parts.update(
        mask_bce=mask_bce, mask_dice=mask_dice, unmatched_mask=unmatched_bce, global_bce=global_bce,
        global_dice=global_dice, heatmap=heatmap, existence=existence,
    )
    out = {k: v.detach() for k, v in parts.items()}
    out["loss"] = total
    return out
