"""Multi-scale deformable attention (Deformable-DETR): the grid_sample reference, the Triton
forward/backward, the dispatching op and the ``MSDeformAttn`` layer that uses it."""
from __future__ import annotations

from .module import MSDeformAttn
from .op import ms_deform_attn
from .reference import ms_deform_attn_reference
from .triton import MSDeformAttnFunction, ms_deform_attn_triton

__all__ = ["MSDeformAttn", "MSDeformAttnFunction", "ms_deform_attn", "ms_deform_attn_reference", "ms_deform_attn_triton"]
