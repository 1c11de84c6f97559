"""Hot-path kernels with their pure-PyTorch references; installed as ``instancevg.kernels``.

* multi-scale deformable attention: :func:`ms_deform_attn` -> Triton forward/backward
  (:mod:`.msda_triton`) or the grid_sample reference (:mod:`.msda_reference`);
* inference mask head: :func:`mask_head` -> fused Triton kernel (:mod:`.mask_head_triton`) or the
  unfused PyTorch path (:mod:`.mask_head_reference`).

Which one runs is decided per call by :func:`.dispatch.resolve_backend` (exports always trace the
references; ``INSTANCEVG_KERNELS`` and ``ModelConfig.kernels`` force either).
"""
from __future__ import annotations

from .dispatch import BACKEND_ENV, BACKENDS, check_backend, resolve_backend
from .mask_head_reference import mask_head_reference
from .mask_head_triton import fused_mask_head_triton, plan_tiles
from .msda_reference import ms_deform_attn_reference
from .msda_triton import MSDeformAttnFunction, ms_deform_attn_triton


def ms_deform_attn(value, spatial_shapes, sampling_locations, attention_weights, backend: str = "auto"):
    """Multi-scale deformable attention on the backend chosen by :func:`resolve_backend`.

    Same arguments, shapes and result as :func:`ms_deform_attn_reference`: value (B, S, H, Dh),
    spatial_shapes list of (H_l, W_l), sampling_locations (B, Q, H, L, P, 2) normalised to
    [0, 1], attention_weights (B, Q, H, L, P) -> (B, Q, H * Dh).

    Raises:
        ValueError: inconsistent shapes or an unknown backend. RuntimeError: ``triton`` forced
            where it cannot run.
    """
    if resolve_backend(backend, value.device) == "triton":
        return ms_deform_attn_triton(value, spatial_shapes, sampling_locations, attention_weights)
    return ms_deform_attn_reference(value, spatial_shapes, sampling_locations, attention_weights)


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


__all__ = [
    "BACKENDS", "BACKEND_ENV", "MSDeformAttnFunction", "check_backend", "fused_mask_head_triton", "mask_head",
    "mask_head_reference", "ms_deform_attn", "ms_deform_attn_reference", "ms_deform_attn_triton", "plan_tiles",
    "resolve_backend",
]
