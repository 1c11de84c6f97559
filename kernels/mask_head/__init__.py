"""Inference mask head: query x pixel product, bilinear upsample, threshold and union; the
PyTorch reference, the fused Triton kernel and the dispatching op."""
from __future__ import annotations

from .op import mask_head
from .reference import mask_head_reference
from .triton import fused_mask_head_triton, plan_tiles

__all__ = ["fused_mask_head_triton", "mask_head", "mask_head_reference", "plan_tiles"]
