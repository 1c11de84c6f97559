"""Triton kernels vs their PyTorch references (pytest-benchmark, CUDA only).

Run on a GPU machine: ``python -m pytest benchmarks/test_kernels.py --benchmark-columns=median``.
Every timed call ends with ``torch.cuda.synchronize()`` so the median is the device time of the
whole call, launch overhead included. Without CUDA every case skips with the reason.
Shapes: the InstanceVG-edge decoder (Q = 10, levels 80²/40²/20²/10² = 8500 tokens,
H = 8, P = 4, Dh = 32) at B = 1 and B = 16; the shipped edge preset, whose decoder attends
only strides 8/16/32 (2100 tokens); and Deformable-DETR-size decoders (Q = 300 and 900 over the
four levels of an 800 x 1066 image). The mask head runs at the shipped mask_dim (64) and
the original specification's (256).
"""
from __future__ import annotations

import pytest
import torch

from instancevg.kernels import mask_head_reference, ms_deform_attn_reference
from instancevg.kernels.mask_head.triton import fused_mask_head_triton
from instancevg.kernels.msda.triton import INTERPRETING, ms_deform_attn_triton, triton_available

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or not triton_available() or INTERPRETING,
    reason="kernel benchmarks need a CUDA GPU and compiled Triton (not TRITON_INTERPRET)",
)

EDGE_LEVELS = [(80, 80), (40, 40), (20, 20), (10, 10)]
DETR_LEVELS = [(100, 134), (50, 67), (25, 34), (13, 17)]
MSDA_CASES = {
    "edge-b1": (EDGE_LEVELS, 1, 10),
    "edge-b16": (EDGE_LEVELS, 16, 10),
    "edge3lvl-b16": (EDGE_LEVELS[1:], 16, 10),
    "detr-q300-b4": (DETR_LEVELS, 4, 300),
    "detr-q900-b4": (DETR_LEVELS, 4, 900),
}
IMPLS = {"reference": ms_deform_attn_reference, "triton": ms_deform_attn_triton}


def _synced(fn):
    def call():
        out = fn()
        torch.cuda.synchronize()
        return out
    return call


def _msda_inputs(case, dtype, requires_grad):
    shapes, b, q = MSDA_CASES[case]
    n_heads, n_points, d_head = 8, 4, 32
    s = sum(h * w for h, w in shapes)
    g = torch.Generator(device="cuda").manual_seed(0)
    value = torch.randn(b, s, n_heads, d_head, device="cuda", generator=g).to(dtype)
    loc = torch.rand(b, q, n_heads, len(shapes), n_points, 2, device="cuda", generator=g).to(dtype)
    attn = torch.rand(b, q, n_heads, len(shapes), n_points, device="cuda", generator=g).softmax(-1).to(dtype)
    tensors = [t.requires_grad_(requires_grad) for t in (value, loc, attn)]
    return shapes, tensors


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=["fp16", "fp32"])
@pytest.mark.parametrize("case", list(MSDA_CASES))
def test_msda_forward(benchmark, case, dtype, impl):
    shapes, (value, loc, attn) = _msda_inputs(case, dtype, requires_grad=False)
    fn = IMPLS[impl]
    benchmark.group = f"msda-forward-{case}-{str(dtype)[6:]}"
    with torch.no_grad():
        out = benchmark(_synced(lambda: fn(value, shapes, loc, attn)))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=["fp16", "fp32"])
@pytest.mark.parametrize("case", list(MSDA_CASES))
def test_msda_forward_backward(benchmark, case, dtype, impl):
    shapes, (value, loc, attn) = _msda_inputs(case, dtype, requires_grad=True)
    fn = IMPLS[impl]
    grad = torch.randn(value.shape[0], loc.shape[1], value.shape[2] * value.shape[3], device="cuda", dtype=dtype)
    benchmark.group = f"msda-fwd+bwd-{case}-{str(dtype)[6:]}"

    def step():
        return torch.autograd.grad(fn(value, shapes, loc, attn), (value, loc, attn), grad)

    grads = benchmark(_synced(step))
    assert all(torch.isfinite(g).all() for g in grads)


MASK_CASES = {"b16-320": (16, (320, 320)), "b1-320": (1, (320, 320)), "b1-480x640": (1, (480, 640))}


@pytest.mark.parametrize("impl", ["unfused", "fused"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=["fp16", "fp32"])
@pytest.mark.parametrize("case", list(MASK_CASES))
@pytest.mark.parametrize("dim", [64, 256], ids=["dim64", "dim256"])
def test_mask_head(benchmark, case, dim, dtype, impl):
    """(B, 10, dim) x (B, dim, 80, 80) -> uint8 masks + union at the output size, all queries kept."""
    b, out_size = MASK_CASES[case]
    g = torch.Generator(device="cuda").manual_seed(0)
    embed = torch.randn(b, 10, dim, device="cuda", generator=g).to(dtype)
    pixel = (torch.randn(b, dim, 80, 80, device="cuda", generator=g) / dim**0.5).to(dtype)
    glob = torch.randn(b, 1, 80, 80, device="cuda", generator=g).to(dtype)
    keep = torch.ones(b, 10, dtype=torch.bool, device="cuda")
    fn = fused_mask_head_triton if impl == "fused" else mask_head_reference
    benchmark.group = f"mask-head-{case}-{dim}-{str(dtype)[6:]}"
    masks, union = benchmark(_synced(lambda: fn(embed, pixel, glob, keep, out_size, 0.5)))
    assert masks.dtype == torch.uint8 and union.shape == (b, *out_size)
