"""Hot-path kernels with their pure-PyTorch references; installed as ``instancevg.kernels``.

One folder per op, as Deformable-DETR's ``models/ops/``:

* :mod:`.msda`: multi-scale deformable attention, :func:`ms_deform_attn` -> Triton forward/backward
  (:mod:`.msda.triton`) or the grid_sample reference (:mod:`.msda.reference`), and the
  :class:`MSDeformAttn` layer (:mod:`.msda.module`);
* :mod:`.mask_head`: inference mask head, :func:`mask_head` -> fused Triton kernel
  (:mod:`.mask_head.triton`) or the unfused PyTorch path (:mod:`.mask_head.reference`).

Which one runs is decided per call by :func:`.dispatch.resolve_backend` (exports always trace the
references; ``INSTANCEVG_KERNELS`` and ``ModelConfig.kernels`` force either).
"""
from __future__ import annotations

from .dispatch import BACKEND_ENV, BACKENDS, check_backend, resolve_backend
from .mask_head import fused_mask_head_triton, mask_head, mask_head_reference, plan_tiles
from .msda import MSDeformAttn, MSDeformAttnFunction, ms_deform_attn, ms_deform_attn_reference, ms_deform_attn_triton

__all__ = [
    "BACKENDS", "BACKEND_ENV", "MSDeformAttn", "MSDeformAttnFunction", "check_backend", "fused_mask_head_triton",
    "mask_head", "mask_head_reference", "ms_deform_attn", "ms_deform_attn_reference", "ms_deform_attn_triton",
    "plan_tiles", "resolve_backend",
]
