"""Hot-path kernels with their pure-PyTorch references; installed as ``instancevg.kernels``.

The reference implementations here are what CPU inference and ONNX export use; Triton
kernels (issue 3) are checked against them and chosen at run time by :func:`ms_deform_attn`.
"""
from .msda_reference import ms_deform_attn_reference


def ms_deform_attn(value, spatial_shapes, sampling_locations, attention_weights):
    """Multi-scale deformable attention, dispatched to the best available implementation.

    Same arguments, shapes and result as :func:`ms_deform_attn_reference`. Only the
    pure-PyTorch reference exists so far, so every device uses it.
    """
    return ms_deform_attn_reference(value, spatial_shapes, sampling_locations, attention_weights)


__all__ = ["ms_deform_attn", "ms_deform_attn_reference"]
