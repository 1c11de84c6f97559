"""Deformable instance decoder (docs/DESIGN.md "Network", decoder): self-attention, text cross-attention,
multi-scale deformable cross-attention at fixed reference points, FFN."""
from __future__ import annotations


import torch
from torch import nn

from ..kernels import MSDeformAttn
from .positional import sine_embed_points


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
