"""Inference mask head, pure PyTorch: query·pixel product, bilinear upsample, threshold, union.

This is the unfused path the Triton kernel (:mod:`.triton`) is checked against and
what CPU inference uses. It follows InstanceVG's mask prediction (instance mask logits are the
dot product of each query's mask embedding with the stride-4 pixel embedding, Dmmm1997/InstanceVG
``models/heads``) and ReLA's inference (the union mask is emptied when no-target is predicted,
``gres_model/GRES.py``). The sigmoid is applied as a comparison of logits with
logit(threshold), which is the same test without computing the sigmoid.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def check_mask_head_inputs(mask_embed, pixel_embed, global_logits, keep, out_size, mask_threshold) -> None:
    """Validate the arguments of the mask head (reference and kernel alike).

    Raises:
        ValueError: naming the first inconsistent argument.
    """
    if mask_embed.dim() != 3:
        raise ValueError(f"mask_embed must be (B, Nq, d), got {tuple(mask_embed.shape)}")
    b, n_q, d = mask_embed.shape
    if pixel_embed.dim() != 4 or pixel_embed.shape[:2] != (b, d):
        raise ValueError(f"pixel_embed must be (B={b}, d={d}, h, w), got {tuple(pixel_embed.shape)}")
    h, w = pixel_embed.shape[2:]
    if tuple(global_logits.shape) != (b, 1, h, w):
        raise ValueError(f"global_logits must be {(b, 1, h, w)}, got {tuple(global_logits.shape)}")
    if tuple(keep.shape) != (b, n_q) or keep.dtype != torch.bool:
        raise ValueError(f"keep must be a bool tensor of shape {(b, n_q)}, got {keep.dtype} {tuple(keep.shape)}")
    if len(out_size) != 2 or min(int(out_size[0]), int(out_size[1])) < 1:
        raise ValueError(f"out_size must be (H, W) with positive sides, got {tuple(out_size)}")
    if not 0.0 < mask_threshold < 1.0:
        raise ValueError(f"mask_threshold must be in (0, 1), got {mask_threshold}")


def logit(p: float) -> float:
    """log(p / (1 - p)) for p in (0, 1): sigmoid(x) > p  <=>  x > logit(p)."""
    return math.log(p / (1.0 - p))


@torch.no_grad()
def mask_head_reference(
    mask_embed: torch.Tensor,
    pixel_embed: torch.Tensor,
    global_logits: torch.Tensor,
    keep: torch.Tensor,
    out_size: tuple[int, int],
    mask_threshold: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary instance masks and union mask at ``out_size``.

    Args:
        mask_embed: (B, Nq, d) float, per-query mask embeddings (``InstanceHeads.mask_head``).
        pixel_embed: (B, d, h, w) float, stride-4 pixel embedding.
        global_logits: (B, 1, h, w) float, global (GRES) mask logits.
        keep: (B, Nq) bool, queries kept by the score threshold.
        out_size: (H, W) output size in pixels (the original image).
        mask_threshold: sigmoid threshold in (0, 1).

    Returns:
        masks (B, Nq, H, W) uint8 in {0, 1} (all zero for queries not kept) and union
        (B, H, W) uint8 = upsampled global mask OR the kept instance masks, all zero for a sample
        with no kept query (no-target).

    Raises:
        ValueError: on inconsistent shapes, a non-bool ``keep`` or a threshold outside (0, 1).
    """
    check_mask_head_inputs(mask_embed, pixel_embed, global_logits, keep, out_size, mask_threshold)
    size = (int(out_size[0]), int(out_size[1]))
    thr = logit(mask_threshold)
    b, n_q = keep.shape
    masks = torch.zeros(b, n_q, *size, dtype=torch.uint8, device=mask_embed.device)
    if keep.any():
        # Only the kept queries are upsampled: the unfused path's float tensor is (K, H, W).
        logits = torch.einsum("bqd,bdhw->bqhw", mask_embed.float(), pixel_embed.float())[keep]
        up = F.interpolate(logits[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        masks[keep] = (up > thr).to(torch.uint8)
    glob = F.interpolate(global_logits.float(), size=size, mode="bilinear", align_corners=False)[:, 0] > thr
    union = (glob | masks.bool().any(1)) & keep.any(1)[:, None, None]
    return masks, union.to(torch.uint8)
