"""Multi-scale deformable attention (MSDeformAttn core), pure PyTorch, grid_sample form.

Follows the semantics of Deformable-DETR's ``MSDeformAttnFunction`` (reference repo
fundamentalvision/Deformable-DETR, ``models/ops/functions/ms_deform_attn_func.py``,
``ms_deform_attn_core_pytorch``): bilinear sampling with zero padding and
``align_corners=False`` of each level's value map at normalised sampling locations, weighted by
the attention weights and summed over levels and points.

This is the reference that CPU inference and ONNX export trace, and that Triton kernels are
compared against. It uses only ``grid_sample``, reshapes and sums, so it exports at opset >= 16.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def _shape_list(spatial_shapes: torch.Tensor | Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    if isinstance(spatial_shapes, torch.Tensor):
        if spatial_shapes.dim() != 2 or spatial_shapes.shape[1] != 2:
            raise ValueError(f"spatial_shapes must be (L, 2), got {tuple(spatial_shapes.shape)}")
        return [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
    return [(int(h), int(w)) for h, w in spatial_shapes]


def check_msda_inputs(value, shapes, sampling_locations, attention_weights, n_levels=None) -> None:
    """Check the shapes of multi-scale deformable attention inputs.

    Args:
        value: (B, S, H, Dh). shapes: list of (H_l, W_l), or None to skip the S check (then
            ``n_levels`` gives L). sampling_locations: (B, Q, H, L, P, 2).
        attention_weights: (B, Q, H, L, P).

    Raises:
        ValueError: naming the first inconsistent argument.
    """
    if value.dim() != 4:
        raise ValueError(f"value must be (B, S, H, Dh), got {tuple(value.shape)}")
    b, s, n_heads, _ = value.shape
    if sampling_locations.dim() != 6 or sampling_locations.shape[-1] != 2:
        raise ValueError(f"sampling_locations must be (B, Q, H, L, P, 2), got {tuple(sampling_locations.shape)}")
    _, n_q, h2, n_lvl, n_points, _ = sampling_locations.shape
    if shapes is not None:
        if sum(h * w for h, w in shapes) != s:
            total = sum(h * w for h, w in shapes)
            raise ValueError(f"value has S={s} tokens but spatial_shapes {shapes} sum to {total}")
        n_levels = len(shapes)
    if n_lvl != n_levels or h2 != n_heads or sampling_locations.shape[0] != b:
        raise ValueError(
            f"sampling_locations {tuple(sampling_locations.shape)} does not match value {tuple(value.shape)} "
            f"and {n_levels} levels"
        )
    if tuple(attention_weights.shape) != (b, n_q, n_heads, n_lvl, n_points):
        raise ValueError(
            f"attention_weights must be {(b, n_q, n_heads, n_lvl, n_points)}, got {tuple(attention_weights.shape)}"
        )


def ms_deform_attn_reference(
    value: torch.Tensor,
    spatial_shapes: torch.Tensor | Sequence[Sequence[int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Multi-scale deformable attention, reference implementation.

    Args:
        value: (B, S, H, Dh) float, S = sum_l H_l * W_l, levels concatenated in order, each
            level flattened row-major (y then x).
        spatial_shapes: (L, 2) int64 tensor or list of (H_l, W_l) pairs. A Python list keeps
            ONNX graphs static; a tensor is converted with ``tolist()``.
        sampling_locations: (B, Q, H, L, P, 2) float, (x, y) normalised to [0, 1] over each
            level's map (0 = left/top edge, 1 = right/bottom edge); points outside read zeros.
        attention_weights: (B, Q, H, L, P) float, usually softmax-normalised over (L, P).

    Returns:
        (B, Q, H * Dh) tensor, dtype of ``value``.

    Raises:
        ValueError: if the shapes disagree (S vs spatial_shapes, L, P, B or H mismatches).
    """
    shapes = _shape_list(spatial_shapes)
    check_msda_inputs(value, shapes, sampling_locations, attention_weights)
    b, _, n_heads, d_head = value.shape
    _, n_q, _, n_levels, n_points, _ = sampling_locations.shape

    value_levels = torch.split(value, [h * w for h, w in shapes], dim=1)
    grids = 2.0 * sampling_locations - 1.0  # grid_sample wants [-1, 1]
    sampled = []
    for lvl, (h, w) in enumerate(shapes):
        # (B, H_l*W_l, H, Dh) -> (B*H, Dh, H_l, W_l)
        v = value_levels[lvl].flatten(2).transpose(1, 2).reshape(b * n_heads, d_head, h, w)
        # (B, Q, H, P, 2) -> (B*H, Q, P, 2)
        g = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(v, g.to(v.dtype), mode="bilinear", padding_mode="zeros", align_corners=False))
    # (B*H, Dh, Q, L, P)
    stacked = torch.stack(sampled, dim=-2)
    weights = attention_weights.transpose(1, 2).reshape(b * n_heads, 1, n_q, n_levels, n_points)
    out = (stacked * weights.to(stacked.dtype)).sum(dim=(-1, -2))  # (B*H, Dh, Q)
    return out.view(b, n_heads * d_head, n_q).transpose(1, 2).contiguous()
