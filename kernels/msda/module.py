"""The ``MSDeformAttn`` layer (sampling offsets and attention weights from the queries, the
multi-scale deformable attention op, output projection), next to its kernels as in
Deformable-DETR's ``models/ops/modules/ms_deform_attn.py``."""
from __future__ import annotations

import math

import torch
from torch import nn

from .op import ms_deform_attn

__all__ = ["MSDeformAttn"]


class MSDeformAttn(nn.Module):
    """Multi-scale deformable cross-attention (Deformable-DETR ``models/ops/modules/ms_deform_attn.py``).

    forward(query (B,Q,d), reference_points (B,Q,2) in [0,1], value (B,S,H,Dh), spatial_shapes
    list of (H_l, W_l)) -> (B, Q, d). Offsets are in units of each level's cells.
    The value projection is done once by the caller and shared by all decoder layers.
    ``kernels`` picks the MSDeformAttn backend (``instancevg.kernels.ms_deform_attn``).
    """

    def __init__(self, d: int, n_levels: int, n_heads: int, n_points: int, kernels: str = "auto"):
        super().__init__()
        self.n_levels, self.n_heads, self.n_points = n_levels, n_heads, n_points
        self.kernels = kernels
        self.sampling_offsets = nn.Linear(d, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d, n_heads * n_levels * n_points)
        self.output_proj = nn.Linear(d, d)
        self._reset_parameters()

    def _reset_parameters(self):
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.n_heads, 1, 1, 2)
        grid = grid.repeat(1, self.n_levels, self.n_points, 1)
        for i in range(self.n_points):
            grid[:, :, i, :] *= i + 1
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, query, reference_points, value, spatial_shapes):
        """query (B, Q, d), reference_points (B, Q, 2) in [0, 1], value (B, S, d) flattened levels, spatial_shapes (L,
        2) int64 -> (B, Q, d).
        """
        b, q, _ = query.shape
        h, lv, p = self.n_heads, self.n_levels, self.n_points
        offsets = self.sampling_offsets(query).view(b, q, h, lv, p, 2)
        # Offsets are in cells: divide x by W_l and y by H_l. Python-scalar divisions keep the
        # graph free of host-to-device copies (CUDA-graph capture) and constant in ONNX.
        per_level = [
            torch.stack([offsets[:, :, :, i, :, 0] / w, offsets[:, :, :, i, :, 1] / hh], dim=-1)
            for i, (hh, w) in enumerate(spatial_shapes)
        ]
        locations = reference_points[:, :, None, None, None, :] + torch.stack(per_level, dim=3)
        weights = self.attention_weights(query).view(b, q, h, lv * p).softmax(-1).view(b, q, h, lv, p)
        out = ms_deform_attn(value, spatial_shapes, locations, weights, backend=self.kernels)
        return self.output_proj(out)
