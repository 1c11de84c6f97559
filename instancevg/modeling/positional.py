"""Sine positional encodings for 2-D feature maps and normalised points (DETR style)."""
from __future__ import annotations

import math

import torch


def sine_embed_points(points: torch.Tensor, d: int, temperature: float = 10000.0) -> torch.Tensor:
    """Embed normalised (x, y) points (..., 2) in [0, 1] into (..., d) sine features.

    Half of d encodes y, half x (DAB-DETR's ``gen_sineembed_for_position`` layout).
    """
    half = d // 2
    dim_t = torch.arange(half, dtype=torch.float32, device=points.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / half)
    scaled = points.float() * 2 * math.pi
    px = scaled[..., 0:1] / dim_t
    py = scaled[..., 1:2] / dim_t
    px = torch.stack([px[..., 0::2].sin(), px[..., 1::2].cos()], dim=-1).flatten(-2)
    py = torch.stack([py[..., 0::2].sin(), py[..., 1::2].cos()], dim=-1).flatten(-2)
    return torch.cat([py, px], dim=-1).to(points.dtype)


def grid_centers(h: int, w: int, device=None) -> torch.Tensor:
    """Normalised centres of an h x w grid, row-major: (h*w, 2) as (x, y) in (0, 1)."""
    ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).reshape(-1, 2)


def sine_embed_grid(h: int, w: int, d: int, device=None) -> torch.Tensor:
    """(1, h*w, d) sine embedding of the cell centres of an h x w map."""
    return sine_embed_points(grid_centers(h, w, device), d).unsqueeze(0)
