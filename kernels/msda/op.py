"""Multi-scale deformable attention on the backend :func:`instancevg.kernels.dispatch.resolve_backend`
picks: the Triton forward/backward (:mod:`.triton`) or the grid_sample reference (:mod:`.reference`)."""
from __future__ import annotations

from ..dispatch import resolve_backend
from .reference import ms_deform_attn_reference
from .triton import ms_deform_attn_triton

__all__ = ["ms_deform_attn"]


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
