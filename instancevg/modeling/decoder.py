"""Deformable instance decoder (docs/DESIGN.md "Network", decoder): self-attention, text cross-attention,
multi-scale deformable cross-attention at fixed reference points, FFN."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..kernels import ms_deform_attn
from .positional import sine_embed_points


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


class DecoderLayer(nn.Module):
    """One decoder layer: query self-attention, text cross-attention, MSDeformAttn, FFN (post-norm)."""

    def __init__(self, d: int, n_heads: int, n_levels: int, n_points: int, ffn_dim: int, kernels: str = "auto"):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.text_attn = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.cross_attn = MSDeformAttn(d, n_levels, n_heads, n_points, kernels)
        self.ffn = nn.Sequential(nn.Linear(d, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(4))

    def forward(self, x, pos, reference_points, value, spatial_shapes, text, text_pad):
        """x, pos (B, Q, d); reference_points (B, Q, 2); value (B, S, d); text (B, L, d); text_pad (B, L) bool, True =
        padding -> (B, Q, d).
        """
        q = x + pos
        x = self.norms[0](x + self.self_attn(q, q, x, need_weights=False)[0])
        x = self.norms[1](x + self.text_attn(x + pos, text, text, key_padding_mask=text_pad, need_weights=False)[0])
        x = self.norms[2](x + self.cross_attn(x + pos, reference_points, value, spatial_shapes))
        return self.norms[3](x + self.ffn(x))


class DeformableDecoder(nn.Module):
    """Stack of decoder layers over the flattened memory of the pyramid levels it is given.

    Inputs: queries (B, Nq, d), reference_points (B, Nq, 2), feats: the n_levels coarsest levels,
    finest first (edge: [F8, F16, F32]), each (B, d, H_l, W_l);
    text (B, L, d), text_mask (B, L). Returns the list of per-layer hidden states (B, Nq, d).

    Raises:
        ValueError: when ``feats`` does not hold exactly ``n_levels`` maps.
    """

    def __init__(self, d: int, n_heads: int, n_levels: int, n_points: int, ffn_dim: int, num_layers: int,
                 kernels: str = "auto"):
        super().__init__()
        self.value_proj = nn.Linear(d, d)
        self.level_embed = nn.Parameter(torch.zeros(n_levels, d))
        self.pos_mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.layers = nn.ModuleList(
            DecoderLayer(d, n_heads, n_levels, n_points, ffn_dim, kernels) for _ in range(num_layers)
        )
        self.n_heads = n_heads
        nn.init.normal_(self.level_embed, std=0.02)

    def forward(self, queries, reference_points, feats, text, text_mask):
        """Shapes and errors: see the class docstring. Returns the hidden states of every layer, each (B, Nq, d)."""
        if len(feats) != self.level_embed.shape[0]:
            raise ValueError(f"the decoder attends {self.level_embed.shape[0]} levels, got {len(feats)} feature maps")
        b, d = queries.shape[0], queries.shape[2]
        shapes = [(int(f.shape[2]), int(f.shape[3])) for f in feats]
        memory = torch.cat([f.flatten(2).transpose(1, 2) + self.level_embed[i] for i, f in enumerate(feats)], dim=1)
        value = self.value_proj(memory).view(b, memory.shape[1], self.n_heads, d // self.n_heads)
        pos = self.pos_mlp(sine_embed_points(reference_points, d))
        text_pad = text_mask == 0
        hidden, x = [], queries
        for layer in self.layers:
            x = layer(x, pos, reference_points, value, shapes, text, text_pad)
            hidden.append(x)
        return hidden
