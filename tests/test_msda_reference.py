"""Tests for the pure-PyTorch multi-scale deformable attention reference (instancevg.kernels)."""
from __future__ import annotations

import math

import pytest
import torch

from instancevg.kernels import ms_deform_attn_reference


def _naive_msda(value, shapes, loc, attn):
    """Independent loop implementation: bilinear sampling, zero padding, align_corners=False.

    Pixel (i, j) of a level of size (Hl, Wl) has its centre at normalised ((j + 0.5) / Wl,
    (i + 0.5) / Hl); a location (x, y) in [0, 1] maps to pixel coordinates (x * Wl - 0.5,
    y * Hl - 0.5). Corners outside the map contribute zero.
    """
    B, S, NH, Dh = value.shape
    _, Q, _, L, P, _ = loc.shape
    v = value.double()
    out = torch.zeros(B, Q, NH * Dh, dtype=torch.float64)
    starts = [0]
    for h_l, w_l in shapes:
        starts.append(starts[-1] + h_l * w_l)
    for b in range(B):
        for q in range(Q):
            for h in range(NH):
                acc = torch.zeros(Dh, dtype=torch.float64)
                for lvl in range(L):
                    h_l, w_l = shapes[lvl]
                    for p in range(P):
                        x = float(loc[b, q, h, lvl, p, 0]) * w_l - 0.5
                        y = float(loc[b, q, h, lvl, p, 1]) * h_l - 0.5
                        x0, y0 = math.floor(x), math.floor(y)
                        fx, fy = x - x0, y - y0
                        sample = torch.zeros(Dh, dtype=torch.float64)
                        for yy, wy in ((y0, 1.0 - fy), (y0 + 1, fy)):
                            for xx, wx in ((x0, 1.0 - fx), (x0 + 1, fx)):
                                if 0 <= yy < h_l and 0 <= xx < w_l:
                                    idx = starts[lvl] + yy * w_l + xx
                                    sample += wy * wx * v[b, idx, h]
                        acc += float(attn[b, q, h, lvl, p]) * sample
                out[b, q, h * Dh : (h + 1) * Dh] = acc
    return out


def _nudge_off_kinks(loc, shapes, margin=1e-3):
    """Move coordinates that sit within ``margin`` pixels of an integer pixel coordinate
    (where bilinear interpolation is not differentiable) a little away from it."""
    loc = loc.clone()
    for lvl, (h_l, w_l) in enumerate(shapes):
        for c, size in ((0, w_l), (1, h_l)):
            coord = loc[..., lvl, :, c] * size - 0.5
            frac = coord - coord.round()
            close = frac.abs() < margin
            loc[..., lvl, :, c] = torch.where(close, loc[..., lvl, :, c] + 0.05 / size, loc[..., lvl, :, c])
    return loc


def _inputs(B, Q, NH, Dh, shapes, P, dtype=torch.float32, seed=0, lo=-0.15, hi=1.15):
    g = torch.Generator().manual_seed(seed)
    S = sum(h * w for h, w in shapes)
    L = len(shapes)
    value = torch.randn(B, S, NH, Dh, generator=g, dtype=torch.float64)
    loc = lo + (hi - lo) * torch.rand(B, Q, NH, L, P, 2, generator=g, dtype=torch.float64)
    attn = torch.rand(B, Q, NH, L, P, generator=g, dtype=torch.float64)
    attn = attn / attn.sum(dim=(-1, -2), keepdim=True)
    return value.to(dtype), loc.to(dtype), attn.to(dtype)


# ----------------------------------------------------------------------------- gradients


def test_gradcheck_float64():
    shapes = [(3, 4), (2, 3)]
    value, loc, attn = _inputs(1, 3, 2, 3, shapes, 2, dtype=torch.float64, seed=1)
    loc = _nudge_off_kinks(loc, shapes)
    value.requires_grad_(True)
    loc.requires_grad_(True)
    attn.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda v, s, a: ms_deform_attn_reference(v, shapes, s, a),
        (value, loc, attn),
        eps=1e-6,
        atol=1e-5,
        rtol=1e-3,
    )


# ----------------------------------------------------------------------------- forward values


@pytest.mark.parametrize("B, Q", [(1, 5), (2, 7), (2, 13)])
def test_matches_naive_loops(B, Q):
    shapes = [(5, 7), (3, 4), (2, 1)]
    NH, Dh, P = 2, 4, 3
    value, loc, attn = _inputs(B, Q, NH, Dh, shapes, P, seed=B * 100 + Q, lo=-0.3, hi=1.3)
    # Edge cases: exactly on the borders of the map and in the corners, and far outside.
    loc[0, 0, 0, 0, 0] = torch.tensor([0.0, 0.0])
    loc[0, 0, 0, 0, 1] = torch.tensor([1.0, 1.0])
    loc[0, 0, 1, 1, 0] = torch.tensor([0.0, 1.0])
    loc[0, 0, 1, 1, 1] = torch.tensor([1.0, 0.5])
    loc[0, 1, 0, 2, 0] = torch.tensor([-0.7, 0.4])
    loc[0, 1, 1, 0, 2] = torch.tensor([0.5, 1.8])
    loc[-1, -1, 0, 0, 0] = torch.tensor([0.5 / 7, 0.5 / 5])  # exact pixel centre
    out = ms_deform_attn_reference(value, shapes, loc, attn)
    assert out.shape == (B, Q, NH * Dh)
    assert out.dtype == torch.float32
    ref = _naive_msda(value, shapes, loc, attn)
    assert (out.double() - ref).abs().max().item() < 1e-5


def test_points_outside_read_zero_and_edges_half():
    shapes = [(2, 3)]
    value = torch.ones(1, 6, 1, 1)
    attn = torch.ones(1, 5, 1, 1, 1)
    loc = torch.tensor(
        [
            [0.5, 0.5],  # inside: 1
            [0.0, 0.5],  # left edge: half the bilinear weight falls outside -> 0.5
            [0.0, 0.0],  # corner -> 0.25
            [1.0, 1.0],  # corner -> 0.25
            [1.5, 0.5],  # fully outside -> 0
        ]
    ).view(1, 5, 1, 1, 1, 2)
    out = ms_deform_attn_reference(value, shapes, loc, attn).view(-1)
    torch.testing.assert_close(out, torch.tensor([1.0, 0.5, 0.25, 0.25, 0.0]))


def test_pixel_centres_return_exact_values():
    shapes = [(3, 4), (2, 3)]
    value = torch.arange(18, dtype=torch.float32).view(1, 18, 1, 1)
    pts, expected = [], []
    start = 0
    for lvl, (h_l, w_l) in enumerate(shapes):
        for i in range(h_l):
            for j in range(w_l):
                pts.append((lvl, (j + 0.5) / w_l, (i + 0.5) / h_l))
                expected.append(float(start + i * w_l + j))
        start += h_l * w_l
    q = len(pts)
    loc = torch.zeros(1, q, 1, 2, 1, 2)
    attn = torch.zeros(1, q, 1, 2, 1)
    for k, (lvl, x, y) in enumerate(pts):
        loc[0, k, 0, lvl, 0] = torch.tensor([x, y])
        attn[0, k, 0, lvl, 0] = 1.0
    out = ms_deform_attn_reference(value, shapes, loc, attn).view(-1)
    torch.testing.assert_close(out, torch.tensor(expected))


def test_tensor_and_list_spatial_shapes_identical():
    shapes = [(4, 6), (2, 3)]
    value, loc, attn = _inputs(2, 9, 2, 5, shapes, 4, seed=7)
    out_list = ms_deform_attn_reference(value, shapes, loc, attn)
    out_tuple = ms_deform_attn_reference(value, tuple(tuple(s) for s in shapes), loc, attn)
    out_tensor = ms_deform_attn_reference(value, torch.tensor(shapes, dtype=torch.int64), loc, attn)
    assert torch.equal(out_list, out_tensor)
    assert torch.equal(out_list, out_tuple)


def test_output_dtype_follows_value_float64():
    shapes = [(3, 3)]
    value, loc, attn = _inputs(1, 4, 1, 2, shapes, 2, dtype=torch.float64, seed=3)
    out = ms_deform_attn_reference(value, shapes, loc, attn)
    assert out.dtype == torch.float64
    assert (out - _naive_msda(value, shapes, loc, attn)).abs().max().item() < 1e-12


# ----------------------------------------------------------------------------- shape errors


def _valid(B=2, Q=3, NH=2, Dh=4, shapes=((3, 4), (2, 3)), P=2):
    value, loc, attn = _inputs(B, Q, NH, Dh, list(shapes), P, seed=11)
    return value, [list(s) for s in shapes], loc, attn


def test_s_mismatch_raises():
    value, shapes, loc, attn = _valid()
    with pytest.raises(ValueError, match="S="):
        ms_deform_attn_reference(value[:, :-1], shapes, loc, attn)
    with pytest.raises(ValueError):
        ms_deform_attn_reference(value, [[3, 4], [2, 2]], loc, attn)


def test_level_count_mismatch_raises():
    value, shapes, loc, attn = _valid()
    with pytest.raises(ValueError):
        ms_deform_attn_reference(value, [[3, 4], [2, 3]], loc[:, :, :, :1], attn[:, :, :, :1])


@pytest.mark.parametrize(
    "make_bad",
    [
        lambda a: a[..., :1],  # wrong P
        lambda a: a[:, :-1],  # wrong Q
        lambda a: a[:1],  # wrong B
        lambda a: a[:, :, :1],  # wrong heads
        lambda a: a.flatten(-2),  # wrong ndim
    ],
)
def test_attention_weights_shape_mismatch_raises(make_bad):
    value, shapes, loc, attn = _valid()
    with pytest.raises(ValueError, match="attention_weights"):
        ms_deform_attn_reference(value, shapes, loc, make_bad(attn))


def test_other_shape_errors_raise():
    value, shapes, loc, attn = _valid()
    with pytest.raises(ValueError):
        ms_deform_attn_reference(value[0], shapes, loc, attn)  # value not 4-D
    with pytest.raises(ValueError):
        ms_deform_attn_reference(value, shapes, loc[..., :1], attn)  # last dim not 2
    with pytest.raises(ValueError):
        ms_deform_attn_reference(value, shapes, loc[:, :, :1], attn[:, :, :1])  # heads mismatch
    with pytest.raises(ValueError):
        ms_deform_attn_reference(value, shapes, loc[:1], attn[:1])  # batch mismatch
    with pytest.raises(ValueError, match="spatial_shapes"):
        ms_deform_attn_reference(value, torch.tensor([3, 4, 2, 3]), loc, attn)  # not (L, 2)
