"""Triton MSDeformAttn (instancevg.kernels.msda.triton) against the grid_sample reference.

On the CPU these run through TRITON_INTERPRET=1 (set by .ci/run); shapes are kept small.
Every case draws fresh random inputs, with sampling points up to 0.25 outside the map so that
zero padding and partially outside corners are exercised.
"""
from __future__ import annotations

import pytest
import torch

from instancevg.kernels import ms_deform_attn_reference
from instancevg.kernels.msda import triton as msda_triton
from instancevg.kernels.msda.triton import _FIXED_BLOCK_Q, ms_deform_attn_triton

pytestmark = pytest.mark.skipif(
    not msda_triton.triton_available() or not (msda_triton.INTERPRETING or torch.cuda.is_available()),
    reason="Triton kernels need Triton plus CUDA or TRITON_INTERPRET=1 (set by .ci/run)",
)
DEVICE = "cuda" if torch.cuda.is_available() and not msda_triton.INTERPRETING else "cpu"


def _rel_l2(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def _inputs(shapes, B, Q, H, Dh, P, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    S = sum(h * w for h, w in shapes)
    value = torch.randn(B, S, H, Dh, generator=g)
    loc = torch.rand(B, Q, H, len(shapes), P, 2, generator=g) * 1.5 - 0.25
    attn = torch.rand(B, Q, H, len(shapes), P, generator=g).softmax(-1)
    return [t.to(DEVICE, dtype) for t in (value, loc, attn)]


CASES = [
    # shapes (non-square levels, a 1-wide level), B, Q (not a multiple of the block), H, Dh, P
    ([(6, 5), (3, 4), (2, 1)], 1, _FIXED_BLOCK_Q + 3, 2, 6, 3),
    ([(8, 8), (4, 4), (2, 2), (1, 1)], 2, 5, 4, 8, 4),
    ([(3, 7)], 3, 1, 1, 16, 2),
]


@pytest.mark.parametrize("shapes,B,Q,H,Dh,P", CASES)
def test_forward_backward_fp32_match_reference(shapes, B, Q, H, Dh, P):
    value, loc, attn = _inputs(shapes, B, Q, H, Dh, P, torch.float32, seed=B * 100 + Q)
    leaves_k = [t.clone().requires_grad_() for t in (value, loc, attn)]
    leaves_r = [t.clone().requires_grad_() for t in (value, loc, attn)]
    out_k = ms_deform_attn_triton(leaves_k[0], shapes, leaves_k[1], leaves_k[2])
    out_r = ms_deform_attn_reference(leaves_r[0], shapes, leaves_r[1], leaves_r[2])
    assert out_k.shape == (B, Q, H * Dh) and out_k.dtype == torch.float32
    assert _rel_l2(out_k, out_r) <= 1e-5
    grad = torch.randn_like(out_r)
    grads_k = torch.autograd.grad(out_k, leaves_k, grad)
    grads_r = torch.autograd.grad(out_r, leaves_r, grad)
    for name, gk, gr in zip(("value", "sampling_locations", "attention_weights"), grads_k, grads_r):
        assert gk.shape == gr.shape and gk.dtype == gr.dtype
        assert _rel_l2(gk, gr) <= 1e-5, name


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_matches_fp32_reference(dtype):
    shapes, B, Q, H, Dh, P = CASES[0]
    value, loc, attn = _inputs(shapes, B, Q, H, Dh, P, dtype, seed=7)
    leaves = [t.clone().requires_grad_() for t in (value, loc, attn)]
    out = ms_deform_attn_triton(leaves[0], shapes, leaves[1], leaves[2])
    assert out.dtype == dtype
    # The reference on the same (rounded) inputs in fp32 is the exact answer.
    ref_leaves = [t.float().clone().requires_grad_() for t in (value, loc, attn)]
    ref = ms_deform_attn_reference(ref_leaves[0], shapes, ref_leaves[1], ref_leaves[2])
    assert _rel_l2(out, ref) <= 1e-2
    grad = torch.randn_like(ref)
    grads = torch.autograd.grad(out, leaves, grad.to(dtype))
    ref_grads = torch.autograd.grad(ref, ref_leaves, grad)
    for gk, gr, leaf in zip(grads, ref_grads, leaves):
        assert gk.dtype == leaf.dtype
        assert _rel_l2(gk, gr) <= 1e-2


def test_mixed_dtypes_as_under_autocast():
    """AMP gives an fp16 value and fp32 locations; the output follows the value."""
    shapes, B, Q, H, Dh, P = CASES[1]
    value, loc, attn = _inputs(shapes, B, Q, H, Dh, P, torch.float32, seed=3)
    out = ms_deform_attn_triton(value.half(), shapes, loc, attn.half())
    assert out.dtype == torch.float16
    ref = ms_deform_attn_reference(value.half().float(), shapes, loc, attn.half().float())
    assert _rel_l2(out, ref) <= 1e-2


def test_points_far_outside_give_zero_output_and_gradients():
    shapes, B, Q, H, Dh, P = CASES[1]
    value, loc, attn = _inputs(shapes, B, Q, H, Dh, P, torch.float32, seed=5)
    loc = torch.where(torch.rand_like(loc) < 0.5, loc * 0 - 3.0, loc * 0 + 1e6).requires_grad_()
    value.requires_grad_()
    out = ms_deform_attn_triton(value, shapes, loc, attn)
    assert torch.count_nonzero(out) == 0
    gv, gl = torch.autograd.grad(out, (value, loc), torch.ones_like(out))
    assert torch.count_nonzero(gv) == 0 and torch.count_nonzero(gl) == 0


def test_tensor_spatial_shapes_and_level_start_index_accepted():
    shapes, B, Q, H, Dh, P = CASES[0]
    value, loc, attn = _inputs(shapes, B, Q, H, Dh, P, torch.float32, seed=11)
    shapes_t = torch.tensor(shapes, dtype=torch.int64, device=DEVICE)
    starts = torch.tensor([0, 30, 42], dtype=torch.int64, device=DEVICE)
    a = ms_deform_attn_triton(value, shapes_t, loc, attn, level_start_index=starts)
    b = ms_deform_attn_triton(value, shapes_t, loc, attn)
    ref = ms_deform_attn_reference(value, shapes, loc, attn)
    assert _rel_l2(a, ref) <= 1e-5 and torch.equal(a, b)


def test_shape_errors_raise_before_launch():
    shapes, B, Q, H, Dh, P = CASES[0]
    value, loc, attn = _inputs(shapes, B, Q, H, Dh, P, torch.float32, seed=1)
    with pytest.raises(ValueError, match="spatial_shapes"):
        ms_deform_attn_triton(value, [(6, 5), (3, 4)], loc[..., :2, :, :], attn[..., :2, :])
    with pytest.raises(ValueError, match="attention_weights"):
        ms_deform_attn_triton(value, shapes, loc, attn[..., :1])


def test_cpu_tensors_without_interpreter_raise(monkeypatch):
    monkeypatch.setattr(msda_triton, "INTERPRETING", False)
    shapes, B, Q, H, Dh, P = CASES[2]
    value, loc, attn = (t.cpu() for t in _inputs(shapes, B, Q, H, Dh, P, torch.float32, seed=2))
    with pytest.raises(RuntimeError, match="CUDA"):
        ms_deform_attn_triton(value, shapes, loc, attn)
