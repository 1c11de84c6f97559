"""Adaptive query selection (AQSM, InstanceVG Sec. 3.2): text->F16 attention heatmap and
greedy distance-aware reference-point selection, all in tensors with a static Nq."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .positional import grid_centers, sine_embed_grid


def select_reference_points(heatmap: torch.Tensor, num_points: int, distance_weight: float) -> torch.Tensor:
    """Greedy distance-aware top-k over a heatmap.

    Step i picks the cell maximising ``G + w * min_dist(cell, already chosen)`` among cells not
    yet chosen (step 0 picks argmax G). Distances are in grid cells. The loop length is the
    static ``num_points``, so the graph exports to ONNX unrolled.

    Args:
        heatmap: (B, h, w) scores (probabilities or logits; only their order and scale vs w matter).
        num_points: Nq, must be <= h*w.
        distance_weight: w (0.003 in the reference).

    Returns:
        (B, Nq, 2) reference points (x, y) normalised to [0, 1] (cell centres).

    Raises:
        ValueError: if num_points exceeds the number of cells.
    """
    b, h, w = heatmap.shape
    n = h * w
    if num_points > n:
        raise ValueError(f"cannot select {num_points} reference points from a {h}x{w} heatmap")
    scores = heatmap.reshape(b, n).float()
    centers = grid_centers(h, w, heatmap.device)  # (N, 2) normalised
    cells = torch.stack([centers[:, 0] * w, centers[:, 1] * h], dim=-1)  # no host-to-device copy
    arange = torch.arange(n, device=heatmap.device)
    taken = torch.zeros(b, n, dtype=torch.bool, device=heatmap.device)
    min_dist = torch.zeros(b, n, dtype=torch.float32, device=heatmap.device)
    chosen = []
    for i in range(num_points):
        s = scores + distance_weight * min_dist if i else scores
        s = s.masked_fill(taken, float("-inf"))
        idx = s.argmax(dim=-1)  # (B,)
        pt = cells[idx]  # (B, 2) in cells
        chosen.append(centers[idx])
        dist = torch.linalg.vector_norm(cells[None] - pt[:, None], dim=-1)  # (B, N)
        min_dist = dist if i == 0 else torch.minimum(min_dist, dist)
        taken = taken | (arange[None] == idx[:, None])
    return torch.stack(chosen, dim=1).to(heatmap.dtype)


class AdaptiveQuerySelection(nn.Module):
    """Heatmap, reference points and initial queries.

    Inputs: text (B, L, d) fused tokens, text_mask (B, L), sentence (B, d), f16 (B, d, h, w).
    Returns dict with ``heatmap`` logits (B, h, w) = max over valid tokens of the text->F16
    attention logits, ``reference_points`` (B, Nq, 2) in [0, 1], ``queries`` (B, Nq, d). An optional
    ``heatmap_bias`` (B, h, w) float32 (the ImageNet class prior, :mod:`.class_prior`) is added to the
    logits before the points are selected.
    """

    def __init__(self, d: int, n_heads: int, num_queries: int, distance_weight: float):
        super().__init__()
        self.text_to_image = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.norm1 = nn.LayerNorm(d)
        self.map_query = nn.Linear(d, d)
        self.map_key = nn.Linear(d, d)
        self.query_embed = nn.Embedding(num_queries, d)
        self.init_query = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, d), nn.LayerNorm(d))
        self.num_queries = num_queries
        self.distance_weight = distance_weight
        self.scale = d**-0.5

    def forward(self, text, text_mask, sentence, f16, heatmap_bias=None):
        """Shapes: see the class docstring."""
        b, d, h, w = f16.shape
        pos = sine_embed_grid(h, w, d, f16.device).to(f16.dtype)
        img = f16.flatten(2).transpose(1, 2)  # (B, N, d)
        t = self.norm1(text + self.text_to_image(text, img + pos, img, need_weights=False)[0])
        logits = torch.einsum("bld,bnd->bln", self.map_query(t), self.map_key(img + pos)) * self.scale
        logits = logits.masked_fill((text_mask == 0)[:, :, None], -1e4)
        heatmap = logits.amax(dim=1).reshape(b, h, w).float()  # reference points chosen in float32
        if heatmap_bias is not None:
            heatmap = heatmap + heatmap_bias
        ref = select_reference_points(torch.sigmoid(heatmap.detach()), self.num_queries, self.distance_weight)
        grid = (2 * ref - 1).unsqueeze(2)  # (B, Nq, 1, 2)
        local = F.grid_sample(f16, grid, mode="bilinear", align_corners=False).squeeze(-1).transpose(1, 2)
        text_q = sentence[:, None, :] + self.query_embed.weight[None]
        queries = self.init_query(torch.cat([text_q, local], dim=-1))
        return {"heatmap": heatmap, "reference_points": ref, "queries": queries}
