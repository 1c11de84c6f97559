"""Prediction heads shared over decoder layers (docs/DESIGN.md "Heads")."""
from __future__ import annotations

import torch
from torch import nn

from .precision import float32_region


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """logit(x) with x clamped to [eps, 1 - eps]."""
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


class MLP(nn.Module):
    """Linear-GELU stack: (..., d_in) -> (..., d_out)."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int, num_layers: int):
        super().__init__()
        dims = [d_in] + [d_hidden] * (num_layers - 1) + [d_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        """(..., in_dim) -> (..., out_dim); GELU between layers."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = nn.functional.gelu(x)
        return x


class InstanceHeads(nn.Module):
    """Class, box and mask-embedding heads.

    * class: (B, Nq, 2) logits ordered (foreground, no-object).
    * box: (B, Nq, 4) cxcywh normalised to [0, 1]; the centre is an offset from the reference
      point in logit space, so a query's box stays anchored at its point.
    * mask embedding: (B, Nq, mask_dim), dotted with the pixel embedding for instance mask logits.
    """

    def __init__(self, d: int, mask_dim: int):
        super().__init__()
        self.class_head = nn.Linear(d, 2)
        self.box_head = MLP(d, d, 4, 3)
        self.mask_head = MLP(d, d, mask_dim, 3)
        nn.init.zeros_(self.box_head.layers[-1].weight)
        with torch.no_grad():
            self.box_head.layers[-1].bias.copy_(torch.tensor([0.0, 0.0, -1.5, -1.5]))

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B, Nq, d) -> class logits (B, Nq, 2) float32, ordered (foreground, no-object)."""
        with float32_region(hidden):
            return self.class_head(hidden.float())

    def boxes(self, hidden: torch.Tensor, reference_points: torch.Tensor) -> torch.Tensor:
        """hidden (B, Nq, d), reference points (B, Nq, 2) in [0, 1] -> boxes (B, Nq, 4) cxcywh normalised; the centre
        is sigmoid(logit(R) + delta), so point and box stay consistent.
        """
        with float32_region(hidden):  # coordinates stay float32 under autocast
            delta = self.box_head(hidden.float())
            centre = torch.sigmoid(inverse_sigmoid(reference_points.float()) + delta[..., :2])
            size = torch.sigmoid(delta[..., 2:])
            return torch.cat([centre, size], dim=-1)

    def mask_embed(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B, Nq, d) -> mask embeddings (B, Nq, mask_dim)."""
        return self.mask_head(hidden)

    @staticmethod
    def masks(mask_embed: torch.Tensor, pixel: torch.Tensor) -> torch.Tensor:
        """mask_embed (B, Nq, c), pixel (B, c, h, w) -> instance mask logits (B, Nq, h, w)."""
        return torch.einsum("bqd,bdhw->bqhw", mask_embed, pixel)
