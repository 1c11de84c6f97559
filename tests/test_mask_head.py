"""Fused Triton mask head against the unfused PyTorch path, and the reference against a
hand-worked case. Kernel cases run through TRITON_INTERPRET=1 on the CPU."""
from __future__ import annotations

import pytest
import torch

from instancevg.kernels import mask_head, mask_head_reference, plan_tiles
from instancevg.kernels.msda import triton as msda_triton
from instancevg.kernels.mask_head.triton import fused_mask_head_triton

needs_triton = pytest.mark.skipif(
    not msda_triton.triton_available() or not (msda_triton.INTERPRETING or torch.cuda.is_available()),
    reason="Triton kernels need Triton plus CUDA or TRITON_INTERPRET=1 (set by .ci/run)",
)
DEVICE = "cuda" if torch.cuda.is_available() and not msda_triton.INTERPRETING else "cpu"


def _inputs(B, Nq, d, h, w, seed, keep_p=0.6):
    g = torch.Generator().manual_seed(seed)
    embed = torch.randn(B, Nq, d, generator=g)
    pixel = torch.randn(B, d, h, w, generator=g) / d ** 0.5
    glob = torch.randn(B, 1, h, w, generator=g)
    keep = torch.rand(B, Nq, generator=g) < keep_p
    keep[0, 0] = True
    return [t.to(DEVICE) for t in (embed, pixel, glob, keep)]


@needs_triton
@pytest.mark.parametrize("B,Nq,d,h,w,out", [
    (2, 5, 24, 8, 7, (30, 27)),     # non-integer, non-square upsample; d not a multiple of 16
    (1, 17, 16, 6, 6, (24, 24)),    # more queries than one 16-row block
    (2, 3, 8, 9, 9, (9, 9)),        # identity size
    (1, 2, 8, 12, 10, (7, 9)),      # mild downsample
    (1, 4, 8, 5, 4, (70, 33)),      # strong upsample, output not a multiple of the tile
])
def test_fused_matches_reference(B, Nq, d, h, w, out):
    embed, pixel, glob, keep = _inputs(B, Nq, d, h, w, seed=B * 1000 + Nq * 10 + h)
    masks_k, union_k = fused_mask_head_triton(embed, pixel, glob, keep, out, 0.5)
    masks_r, union_r = mask_head_reference(embed, pixel, glob, keep, out, 0.5)
    assert masks_k.dtype == torch.uint8 and masks_k.shape == (B, Nq, *out)
    assert union_k.dtype == torch.uint8 and union_k.shape == (B, *out)
    # Both sides must contain foreground and background, or agreement would be trivial.
    assert 0 < masks_r.float().mean() < 1 and 0 < union_r.float().mean() < 1
    assert (masks_k == masks_r).float().mean() >= 0.999
    assert (union_k == union_r).float().mean() >= 0.999
    assert not masks_k[~keep].any()


@needs_triton
def test_fused_half_inputs_and_threshold():
    embed, pixel, glob, keep = _inputs(1, 4, 16, 8, 8, seed=3)
    for thr in (0.3, 0.8):
        mk, uk = fused_mask_head_triton(embed.half(), pixel.half(), glob.half(), keep, (32, 32), thr)
        mr, ur = mask_head_reference(embed.half().float(), pixel.half().float(), glob.half().float(), keep,
                                     (32, 32), thr)
        assert (mk == mr).float().mean() >= 0.999 and (uk == ur).float().mean() >= 0.999


@needs_triton
def test_fused_no_target_sample_has_empty_union():
    embed, pixel, glob, keep = _inputs(2, 3, 8, 6, 6, seed=4)
    keep[1] = False
    glob[1] = 10.0  # a confident global mask is still dropped for a no-target sample
    masks, union = fused_mask_head_triton(embed, pixel, glob, keep, (20, 20), 0.5)
    assert not union[1].any() and not masks[1].any()
    assert union[0].any()


def test_reference_hand_worked_case():
    """One query, 2x2 logits [[4, -4], [-4, -4]] (d = 1) upsampled to 4x4.

    Output pixel (i, j) samples source (max(i/2 - 0.25, 0), max(j/2 - 0.25, 0)); the bilinear
    value is positive only where the top-left weight dominates: rows 0-1 x cols 0-1, except
    (1, 1), whose source (0.25, 0.25) gives 4*(0.75*0.75) - 4*(1 - 0.5625) = 0.5 > 0.
    So the 2x2 top-left block is foreground and nothing else.
    """
    embed = torch.ones(1, 1, 1)
    pixel = torch.tensor([[[[4.0, -4.0], [-4.0, -4.0]]]])
    glob = torch.full((1, 1, 2, 2), -5.0)
    masks, union = mask_head_reference(embed, pixel, glob, torch.tensor([[True]]), (4, 4), 0.5)
    expected = torch.zeros(4, 4, dtype=torch.uint8)
    expected[:2, :2] = 1
    assert torch.equal(masks[0, 0], expected) and torch.equal(union[0], expected)


def test_bad_inputs_raise():
    embed, pixel, glob, keep = _inputs(1, 3, 8, 6, 6, seed=5)
    with pytest.raises(ValueError, match="keep"):
        mask_head_reference(embed, pixel, glob, keep.float(), (8, 8))
    with pytest.raises(ValueError, match="pixel_embed"):
        mask_head_reference(embed, pixel[:, :4], glob, keep, (8, 8))
    with pytest.raises(ValueError, match="mask_threshold"):
        mask_head_reference(embed, pixel, glob, keep, (8, 8), 1.0)
    with pytest.raises(ValueError, match="out_size"):
        mask_head_reference(embed, pixel, glob, keep, (0, 8))


def test_strong_downsample_has_no_tile_plan_and_dispatch_falls_back(kernel_backend):
    assert plan_tiles(80, 80, 320, 480) is not None
    assert plan_tiles(200, 200, 4, 4) is None
    embed, pixel, glob, keep = _inputs(1, 2, 8, 200, 200, seed=6)
    masks, union = mask_head(embed, pixel, glob, keep, (4, 4), 0.5, backend=kernel_backend)
    ref_masks, ref_union = mask_head_reference(embed, pixel, glob, keep, (4, 4), 0.5)
    assert torch.equal(masks, ref_masks) and torch.equal(union, ref_union)
