"""Multi-scale deformable attention in Triton: forward and backward kernels, autograd Function.

Same semantics as :func:`ms_deform_attn_reference` and Deformable-DETR's
``MSDeformAttnFunction`` (fundamentalvision/Deformable-DETR,
``models/ops/src/cuda/ms_deform_im2col_cuda.cuh``): every (query, head, level, point) samples
its level's value map bilinearly at pixel coordinates (x * W_l - 0.5, y * H_l - 0.5) with zero
padding, and the samples are summed with the attention weights.

Work split (written for this project): one program owns ``BLOCK_Q`` queries of one
(batch, head) pair and all ``Dh`` channels of that head, so each corner read is a contiguous
``Dh``-vector of ``value`` (B, S, H, Dh) and the output row needs no reduction across programs.
The backward pass recomputes the four corners, writes the location and weight gradients
directly (each belongs to exactly one program) and scatters the value gradient with fp32
atomics into a zeroed fp32 buffer, which is cast to the value dtype at the end.

Every input dtype (fp32, fp16, bf16) is read as is and converted to fp32 in registers;
accumulation is fp32. Autotuning needs a GPU, so under ``TRITON_INTERPRET=1`` a fixed
configuration is used.
"""
from __future__ import annotations

import functools

import torch

from ..triton_support import INTERPRETING, tl, triton, triton_available

_FIXED_BLOCK_Q = 16
# Autotuning space (BLOCK_Q, num_warps): the (8, 16, 32, 64) x (1, 2, 4) grid less every pair with
# 16 or more query rows per warp. Compiled for sm_90 (tools/compile_kernels.py, Triton 3.6, fp16),
# exactly those pairs spilled registers to local memory in the forward and in every backward
# configuration that finished, and they compiled slowest (110 s to over 8 minutes for a backward),
# which autotuning pays at first use. benchmarks/RESULTS.md has the figures.
AUTOTUNE_SPACE = tuple((bq, nw) for bq in (8, 16, 32, 64) for nw in (1, 2, 4) if bq // nw < 16)


if triton is not None:

    @triton.jit
    def _corner(value_ptr, tok_base, start, yy, xx, h_l, w_l, head, n_heads, d_head, offs_d, q_mask, d_mask):
        """One bilinear corner: value rows (BLOCK_Q, BLOCK_D) fp32, validity (BLOCK_Q,), element offsets."""
        valid = q_mask & (yy >= 0) & (yy < h_l) & (xx >= 0) & (xx < w_l)
        tok = tok_base + start + yy * w_l + xx
        offs = ((tok * n_heads + head) * d_head)[:, None] + offs_d[None, :]
        v = tl.load(value_ptr + offs, mask=valid[:, None] & d_mask[None, :], other=0.0).to(tl.float32)
        return v, valid, offs

    @triton.jit
    def _pixel_coords(loc_ptr, idx, q_mask, h_l, w_l):
        """Pixel coordinates of a batch of sampling points: floor corners and fractions.

        Coordinates are clamped to [-2, size + 1] first: beyond that every corner is outside
        the map anyway, and the clamp keeps the int32 conversion defined for any location.
        """
        x = tl.load(loc_ptr + 2 * idx, mask=q_mask, other=0.0).to(tl.float32)
        y = tl.load(loc_ptr + 2 * idx + 1, mask=q_mask, other=0.0).to(tl.float32)
        w_f = w_l.to(tl.float32)
        h_f = h_l.to(tl.float32)
        x_im = tl.minimum(tl.maximum(x * w_f - 0.5, -2.0), w_f + 1.0)
        y_im = tl.minimum(tl.maximum(y * h_f - 0.5, -2.0), h_f + 1.0)
        x0f = tl.floor(x_im)
        y0f = tl.floor(y_im)
        return x0f.to(tl.int32), y0f.to(tl.int32), x_im - x0f, y_im - y0f, w_f, h_f

    @triton.jit
    def _program_tile(Q, n_heads, d_head, BLOCK_Q: tl.constexpr, BLOCK_D: tl.constexpr):
        """The (batch, head) pair, query rows and channels this program owns, with their masks."""
        pid_q = tl.program_id(0)
        pid_bh = tl.program_id(1)
        offs_q = pid_q * BLOCK_Q + tl.arange(0, BLOCK_Q)
        offs_d = tl.arange(0, BLOCK_D)
        return pid_bh // n_heads, pid_bh % n_heads, offs_q, offs_d, offs_q < Q, offs_d < d_head

    @triton.jit
    def _four_corners(value_ptr, tok_base, start, y0, x0, h_l, w_l, head, n_heads, d_head, offs_d, q_mask, d_mask):
        """The four bilinear corners (y0, x0), (y0, x0+1), (y0+1, x0), (y0+1, x0+1), each as
        (values, validity, element offsets) from :func:`_corner`."""
        v00, m00, p00 = _corner(value_ptr, tok_base, start, y0, x0, h_l, w_l, head, n_heads, d_head,
                                offs_d, q_mask, d_mask)
        v01, m01, p01 = _corner(value_ptr, tok_base, start, y0, x0 + 1, h_l, w_l, head, n_heads, d_head,
                                offs_d, q_mask, d_mask)
        v10, m10, p10 = _corner(value_ptr, tok_base, start, y0 + 1, x0, h_l, w_l, head, n_heads, d_head,
                                offs_d, q_mask, d_mask)
        v11, m11, p11 = _corner(value_ptr, tok_base, start, y0 + 1, x0 + 1, h_l, w_l, head, n_heads, d_head,
                                offs_d, q_mask, d_mask)
        return v00, m00, p00, v01, m01, p01, v10, m10, p10, v11, m11, p11

    @triton.jit
    def _msda_fwd_kernel(
        value_ptr, shapes_ptr, starts_ptr, loc_ptr, attn_ptr, out_ptr,
        S, Q, n_heads, d_head,
        L: tl.constexpr, P: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_D: tl.constexpr,
    ):
        b, head, offs_q, offs_d, q_mask, d_mask = _program_tile(Q, n_heads, d_head, BLOCK_Q, BLOCK_D)
        row = ((b * Q + offs_q).to(tl.int64) * n_heads + head) * (L * P)
        tok_base = b.to(tl.int64) * S
        acc = tl.zeros((BLOCK_Q, BLOCK_D), dtype=tl.float32)
        for lvl in tl.static_range(L):
            h_l = tl.load(shapes_ptr + 2 * lvl)
            w_l = tl.load(shapes_ptr + 2 * lvl + 1)
            start = tl.load(starts_ptr + lvl)
            # A runtime loop over the points, not tl.static_range: unrolling all L x P points let
            # the compiler hoist every corner load, which spilled (sm_90, BLOCK_Q 32, 4 warps:
            # Triton 3.9 168 registers + 3-4.5 KB stack, 3.6 255 registers + ~200 B; with this
            # loop 128-165 registers and at most 56 B; tools/compile_kernels.py).
            for p in range(P):
                idx = row + lvl * P + p
                x0, y0, fx, fy, w_f, h_f = _pixel_coords(loc_ptr, idx, q_mask, h_l, w_l)
                a = tl.load(attn_ptr + idx, mask=q_mask, other=0.0).to(tl.float32)
                v00, _, _, v01, _, _, v10, _, _, v11, _, _ = _four_corners(
                    value_ptr, tok_base, start, y0, x0, h_l, w_l, head, n_heads, d_head, offs_d, q_mask, d_mask)
                top = v00 * (1.0 - fx)[:, None] + v01 * fx[:, None]
                bottom = v10 * (1.0 - fx)[:, None] + v11 * fx[:, None]
                sample = top * (1.0 - fy)[:, None] + bottom * fy[:, None]
                acc += a[:, None] * sample
        out_ptrs = out_ptr + (((b * Q + offs_q).to(tl.int64) * n_heads + head) * d_head)[:, None] + offs_d[None, :]
        tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=q_mask[:, None] & d_mask[None, :])

    @triton.jit
    def _msda_bwd_kernel(
        value_ptr, shapes_ptr, starts_ptr, loc_ptr, attn_ptr, grad_out_ptr,
        grad_value_ptr, grad_loc_ptr, grad_attn_ptr,
        S, Q, n_heads, d_head,
        L: tl.constexpr, P: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_D: tl.constexpr,
    ):
        b, head, offs_q, offs_d, q_mask, d_mask = _program_tile(Q, n_heads, d_head, BLOCK_Q, BLOCK_D)
        qd_mask = q_mask[:, None] & d_mask[None, :]
        row = ((b * Q + offs_q).to(tl.int64) * n_heads + head) * (L * P)
        tok_base = b.to(tl.int64) * S
        go_ptrs = grad_out_ptr + (((b * Q + offs_q).to(tl.int64) * n_heads + head) * d_head)[:, None] + offs_d[None, :]
        go = tl.load(go_ptrs, mask=qd_mask, other=0.0).to(tl.float32)
        for lvl in tl.static_range(L):
            h_l = tl.load(shapes_ptr + 2 * lvl)
            w_l = tl.load(shapes_ptr + 2 * lvl + 1)
            start = tl.load(starts_ptr + lvl)
            for p in tl.static_range(P):
                idx = row + lvl * P + p
                x0, y0, fx, fy, w_f, h_f = _pixel_coords(loc_ptr, idx, q_mask, h_l, w_l)
                a = tl.load(attn_ptr + idx, mask=q_mask, other=0.0).to(tl.float32)
                v00, m00, p00, v01, m01, p01, v10, m10, p10, v11, m11, p11 = _four_corners(
                    value_ptr, tok_base, start, y0, x0, h_l, w_l, head, n_heads, d_head, offs_d, q_mask, d_mask)
                gx = 1.0 - fx
                gy = 1.0 - fy
                sample = (v00 * gx[:, None] + v01 * fx[:, None]) * gy[:, None] \
                    + (v10 * gx[:, None] + v11 * fx[:, None]) * fy[:, None]
                tl.store(grad_attn_ptr + idx, tl.sum(go * sample, axis=1), mask=q_mask)
                d_fx = (v01 - v00) * gy[:, None] + (v11 - v10) * fy[:, None]
                d_fy = (v10 - v00) * gx[:, None] + (v11 - v01) * fx[:, None]
                tl.store(grad_loc_ptr + 2 * idx, a * w_f * tl.sum(go * d_fx, axis=1), mask=q_mask)
                tl.store(grad_loc_ptr + 2 * idx + 1, a * h_f * tl.sum(go * d_fy, axis=1), mask=q_mask)
                ga = go * a[:, None]
                tl.atomic_add(grad_value_ptr + p00, ga * (gy * gx)[:, None], mask=m00[:, None] & d_mask[None, :],
                              sem="relaxed")
                tl.atomic_add(grad_value_ptr + p01, ga * (gy * fx)[:, None], mask=m01[:, None] & d_mask[None, :],
                              sem="relaxed")
                tl.atomic_add(grad_value_ptr + p10, ga * (fy * gx)[:, None], mask=m10[:, None] & d_mask[None, :],
                              sem="relaxed")
                tl.atomic_add(grad_value_ptr + p11, ga * (fy * fx)[:, None], mask=m11[:, None] & d_mask[None, :],
                              sem="relaxed")

    _FWD_CONFIGS = [triton.Config({"BLOCK_Q": bq}, num_warps=nw) for bq, nw in AUTOTUNE_SPACE]
    if INTERPRETING:
        _fwd_launch, _bwd_launch = _msda_fwd_kernel, _msda_bwd_kernel
    else:  # pragma: no cover - needs a GPU
        _fwd_launch = triton.autotune(_FWD_CONFIGS, key=["Q", "n_heads", "d_head", "S"])(_msda_fwd_kernel)
        # The backward accumulates into grad_value with atomics: zero it before every tuning trial.
        _bwd_launch = triton.autotune(_FWD_CONFIGS, key=["Q", "n_heads", "d_head", "S"],
                                      reset_to_zero=["grad_value_ptr"])(_msda_bwd_kernel)


def _fixed_meta() -> dict:
    """Launch parameters when autotuning is off (the interpreter)."""
    return {"BLOCK_Q": _FIXED_BLOCK_Q, "num_warps": 4} if INTERPRETING else {}


@functools.lru_cache(maxsize=64)
def _shape_tensors(shapes: tuple[tuple[int, int], ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, 2) int32 spatial_shapes and (L,) int32 level_start_index on ``device``, made once.

    Cached so that a CUDA-graph capture never sees a host-to-device copy.
    """
    flat = torch.tensor(shapes, dtype=torch.int32)
    starts = torch.zeros(len(shapes), dtype=torch.int32)
    if len(shapes) > 1:
        starts[1:] = torch.cumsum(flat[:, 0] * flat[:, 1], 0)[:-1]
    return flat.to(device), starts.to(device)


def _grid(n_q: int, n_bh: int):
    return lambda meta: (triton.cdiv(n_q, meta["BLOCK_Q"]), n_bh)


class MSDeformAttnFunction(torch.autograd.Function):
    """Autograd wrapper of the Triton forward and backward kernels.

    ``apply(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)``
    with spatial_shapes (L, 2) and level_start_index (L,) integer tensors on the value's device;
    see :func:`ms_deform_attn_triton` for shapes. Gradients flow to value, sampling_locations and
    attention_weights (each in its own dtype); the integer tensors get none.
    """

    @staticmethod
    def forward(ctx, value, spatial_shapes, level_start_index, sampling_locations, attention_weights):
        """value (B, S, H, Dh), sampling_locations (B, Q, H, L, P, 2), attention_weights
        (B, Q, H, L, P) -> (B, Q, H*Dh) in the value's dtype (fp32 accumulation)."""
        value = value.contiguous()
        loc = sampling_locations.contiguous()
        attn = attention_weights.contiguous()
        shapes = spatial_shapes.to(torch.int32).contiguous()
        starts = level_start_index.to(torch.int32).contiguous()
        b, s, n_heads, d_head = value.shape
        n_q, n_levels, n_points = loc.shape[1], loc.shape[3], loc.shape[4]
        out = torch.empty(b, n_q, n_heads * d_head, dtype=value.dtype, device=value.device)
        _fwd_launch[_grid(n_q, b * n_heads)](
            value, shapes, starts, loc, attn, out, s, n_q, n_heads, d_head,
            L=n_levels, P=n_points, BLOCK_D=triton.next_power_of_2(d_head), **_fixed_meta(),
        )
        ctx.save_for_backward(value, shapes, starts, loc, attn)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        """grad_out (B, Q, H*Dh) -> grads of value, sampling_locations, attention_weights (each
        accumulated in fp32, returned in its input's dtype); None for the integer tensors."""
        value, shapes, starts, loc, attn = ctx.saved_tensors
        b, s, n_heads, d_head = value.shape
        n_q, n_levels, n_points = loc.shape[1], loc.shape[3], loc.shape[4]
        grad_out = grad_out.contiguous()
        grad_value = torch.zeros(value.shape, dtype=torch.float32, device=value.device)
        grad_loc = torch.empty(loc.shape, dtype=torch.float32, device=loc.device)
        grad_attn = torch.empty(attn.shape, dtype=torch.float32, device=attn.device)
        _bwd_launch[_grid(n_q, b * n_heads)](
            value, shapes, starts, loc, attn, grad_out, grad_value, grad_loc, grad_attn,
            s, n_q, n_heads, d_head,
            L=n_levels, P=n_points, BLOCK_D=triton.next_power_of_2(d_head), **_fixed_meta(),
        )
        return (grad_value.to(value.dtype), None, None, grad_loc.to(loc.dtype), grad_attn.to(attn.dtype))


def ms_deform_attn_triton(value, spatial_shapes, sampling_locations, attention_weights, level_start_index=None):
    """Multi-scale deformable attention with the Triton kernels (differentiable).

    Args:
        value: (B, S, H, Dh) fp32/fp16/bf16, S = sum_l H_l * W_l (levels concatenated,
            each flattened row-major).
        spatial_shapes: list of (H_l, W_l) pairs, or an (L, 2) integer tensor on the value's
            device (then S is not re-checked, to avoid a device sync).
        sampling_locations: (B, Q, H, L, P, 2), (x, y) normalised to [0, 1]; points outside
            read zeros.
        attention_weights: (B, Q, H, L, P).
        level_start_index: (L,) integer tensor of each level's first token; derived from the
            shapes when omitted.

    Returns:
        (B, Q, H * Dh) in the value's dtype, accumulated in fp32.

    Raises:
        RuntimeError: if Triton is not installed, or the tensors are on the CPU without
            ``TRITON_INTERPRET=1``.
        ValueError: on inconsistent shapes (as :func:`ms_deform_attn_reference`).
    """
    from .reference import check_msda_inputs

    if triton is None:
        raise RuntimeError("the Triton MSDeformAttn kernel needs `pip install triton`")
    if value.device.type != "cuda" and not INTERPRETING:
        raise RuntimeError(
            f"the Triton MSDeformAttn kernel runs on CUDA (or on the CPU with TRITON_INTERPRET=1); "
            f"got tensors on {value.device}"
        )
    if isinstance(spatial_shapes, torch.Tensor):
        check_msda_inputs(value, None, sampling_locations, attention_weights, n_levels=spatial_shapes.shape[0])
        shapes_t = spatial_shapes
        if level_start_index is None:
            areas = spatial_shapes[:, 0] * spatial_shapes[:, 1]
            level_start_index = torch.cat([areas.new_zeros(1), areas.cumsum(0)[:-1]])
    else:
        shapes = tuple((int(h), int(w)) for h, w in spatial_shapes)
        check_msda_inputs(value, shapes, sampling_locations, attention_weights)
        shapes_t, starts_t = _shape_tensors(shapes, value.device)
        level_start_index = starts_t if level_start_index is None else level_start_index
    return MSDeformAttnFunction.apply(value, shapes_t, level_start_index, sampling_locations, attention_weights)
