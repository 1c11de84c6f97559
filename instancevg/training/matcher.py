"""Hungarian matching of instance queries to ground-truth instances (docs/DESIGN.md "Matching").

cost = w_class * (-p_fg) + w_box * L1(box) + w_giou * (-GIoU) + w_point * L1(reference point,
GT box centre) + w_inside * [reference point outside the GT box], solved per sample with
``scipy.optimize.linear_sum_assignment``. The point term is InstanceVG's addition to the DETR
matcher (reference repo: instancevg/models/.../matcher): it keeps each query's box anchored near
its reference point. The inside term (this project, issue 26; 0 by default) makes a target go to
a query whose reference point lies on it whenever one does, so each query learns to box the
instance under its own point (InstanceVG's point-box consistency, paper Sec. 3) rather than the
group's most salient member.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ..runtime.real_number import is_real_number
from .box_ops import box_cxcywh_to_xyxy, generalized_box_iou_pairwise


@dataclass(frozen=True)
class MatcherWeights:
    """Weights of the matching cost terms (defaults: docs/DESIGN.md "Matching")."""

    class_cost: float = 1.0
    box_cost: float = 5.0
    giou_cost: float = 2.0
    point_cost: float = 2.0
    point_in_box_cost: float = 0.0

    def __post_init__(self):
        for name in ("class_cost", "box_cost", "giou_cost", "point_cost", "point_in_box_cost"):
            value = getattr(self, name)
            if not (is_real_number(value) and value >= 0):
                raise ValueError(f"matching cost weight {name} must be a finite number >= 0, got {value!r}")


def points_in_boxes(points: torch.Tensor, boxes_xyxy: torch.Tensor) -> torch.Tensor:
    """Whether each point lies inside each box, edges included.

    Args:
        points: (N, 2) (x, y); boxes_xyxy: (K, 4) (x0, y0, x1, y1), in the same units (normalised
            or pixels).

    Returns:
        (N, K) bool.
    """
    x, y = points[:, 0:1], points[:, 1:2]
    b = boxes_xyxy
    return (x >= b[:, 0]) & (x <= b[:, 2]) & (y >= b[:, 1]) & (y <= b[:, 3])


@torch.no_grad()
def hungarian_match(
    pred_logits: torch.Tensor,
    pred_boxes: torch.Tensor,
    reference_points: torch.Tensor,
    gt_boxes: list[torch.Tensor],
    weights: MatcherWeights = MatcherWeights(),
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Match queries to targets, one sample at a time.

    Args:
        pred_logits: (B, Nq, 2) class logits (fg, no-object).
        pred_boxes: (B, Nq, 4) cxcywh normalised.
        reference_points: (B, Nq, 2) (x, y) normalised.
        gt_boxes: B tensors (K_b, 4) cxcywh normalised; K_b = 0 for a no-target sample.
        weights: cost weights.

    Returns:
        B pairs (query_idx, target_idx), int64 tensors of length min(Nq, K_b), on CPU.

    Raises:
        ValueError: if the batch sizes disagree or a cost is not finite.
    """
    b, nq, _ = pred_logits.shape
    if len(gt_boxes) != b:
        raise ValueError(f"{len(gt_boxes)} target sets for a batch of {b}")
    prob_fg = pred_logits.float().softmax(-1)[..., 0]
    out = []
    for i, gt in enumerate(gt_boxes):
        if gt.shape[0] == 0:
            empty = torch.zeros(0, dtype=torch.int64)
            out.append((empty, empty))
            continue
        gt = gt.float().to(pred_boxes.device)
        boxes, gt_xyxy, points = pred_boxes[i].float(), box_cxcywh_to_xyxy(gt), reference_points[i].float()
        cost = (
            -weights.class_cost * prob_fg[i][:, None]
            + weights.box_cost * torch.cdist(boxes, gt, p=1)
            - weights.giou_cost * generalized_box_iou_pairwise(box_cxcywh_to_xyxy(boxes), gt_xyxy)
            + weights.point_cost * torch.cdist(points, gt[:, :2], p=1)
        )
        if weights.point_in_box_cost:
            cost = cost + weights.point_in_box_cost * (~points_in_boxes(points, gt_xyxy)).float()
        cost_np = cost.cpu().numpy()
        if not np.isfinite(cost_np).all():
            raise ValueError(f"non-finite matching cost in sample {i}")
        rows, cols = linear_sum_assignment(cost_np)
        out.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
    return out
