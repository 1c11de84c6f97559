"""Inference mask head on the backend :func:`instancevg.kernels.dispatch.resolve_backend` picks: the
fused Triton kernel (:mod:`.triton`) or the unfused PyTorch path (:mod:`.reference`)."""
from __future__ import annotations

from ..dispatch import resolve_backend
from .reference import mask_head_reference
from .triton import fused_mask_head_triton, plan_tiles

__all__ = ["mask_head"]


def mask_head(mask_embed, pixel_embed, global_logits, keep, out_size, mask_threshold: float = 0.5,
              backend: str = "auto"):
    """Binary instance masks and union at ``out_size`` on the chosen backend.

    Arguments and results as :func:`mask_head_reference`: mask_embed (B, Nq, d), pixel_embed
    (B, d, h, w), global_logits (B, 1, h, w), keep (B, Nq) bool -> masks (B, Nq, H, W) uint8,
    union (B, H, W) uint8. A resize the kernel has no tile plan for (output much smaller than
    (h, w), see :func:`plan_tiles`) runs the reference, which gives the same result.

    Raises:
        ValueError: inconsistent inputs or an unknown backend. RuntimeError: ``triton`` forced
            where it cannot run.
    """
    use_triton = resolve_backend(backend, mask_embed.device) == "triton"
    h, w = pixel_embed.shape[-2:]
    if use_triton and plan_tiles(h, w, int(out_size[0]), int(out_size[1])) is not None:
        return fused_mask_head_triton(mask_embed, pixel_embed, global_logits, keep, out_size, mask_threshold)
    return mask_head_reference(mask_embed, pixel_embed, global_logits, keep, out_size, mask_threshold)
