"""Fused inference mask head in Triton: query·pixel product, bilinear upsample, threshold, union.

One kernel writes the uint8 instance masks and the uint8 union mask straight from the
(B, Nq, d) mask embeddings and the (B, d, h, w) pixel embedding; neither the (B, Nq, h, w) logits
nor the float upsampled masks ever reach memory. Semantics are those of
:func:`.reference.mask_head_reference` (PyTorch ``F.interpolate(mode="bilinear",
align_corners=False)``: source coordinate max((dst + 0.5) * in / out - 0.5, 0), last row and
column clamped).

Work split (written for this project): a program owns a TY x TX tile of output pixels of one
image. It computes the low-resolution logits of the BH x BW source window the tile reads, for
all queries at once, as one ``tl.dot`` over d. Bilinear upsampling is linear and separable, so
for each query the tile is ``Wy @ L_q @ Wx^T`` with Wy (TY, BH) and Wx (TX, BW) the
interpolation weights built in registers (two non-zeros per row): two more ``tl.dot``. The
logits are compared with logit(threshold) and OR-ed into the union, which also takes the
upsampled global mask and is cleared for a sample with no kept query.
"""
from __future__ import annotations

import math

import torch

from ..triton_support import INTERPRETING, triton, triton_available

if triton is not None:
    import triton.language as tl

    @triton.jit
    def _interp_weights(dst, scale, n_src, first, BLOCK_SRC: tl.constexpr, TRANSPOSE: tl.constexpr):
        """Bilinear weights from source window [first, first + BLOCK_SRC) to output coords ``dst``.

        Returns (len(dst), BLOCK_SRC), or its transpose when TRANSPOSE.
        """
        src = tl.maximum((dst.to(tl.float32) + 0.5) * scale - 0.5, 0.0)
        i0 = tl.minimum(tl.floor(src).to(tl.int32), n_src - 1)
        i1 = tl.minimum(i0 + 1, n_src - 1)
        frac = src - i0.to(tl.float32)
        cols = first + tl.arange(0, BLOCK_SRC)
        if TRANSPOSE:
            w = tl.where(cols[:, None] == i0[None, :], 1.0 - frac[None, :], 0.0)
            w += tl.where(cols[:, None] == i1[None, :], frac[None, :], 0.0)
        else:
            w = tl.where(cols[None, :] == i0[:, None], 1.0 - frac[:, None], 0.0)
            w += tl.where(cols[None, :] == i1[:, None], frac[:, None], 0.0)
        return w

    @triton.jit
    def _window_start(tile_first, scale, n_src):
        return tl.minimum(tl.floor(tl.maximum((tile_first + 0.5) * scale - 0.5, 0.0)).to(tl.int32), n_src - 1)

    @triton.jit
    def _fused_mask_head_kernel(
        embed_ptr, pixel_ptr, global_ptr, keep_ptr, masks_ptr, union_ptr,
        NQ, D, h, w, Ho, Wo, scale_y, scale_x, thr,
        NQ_PAD: tl.constexpr, BD: tl.constexpr, TY: tl.constexpr, TX: tl.constexpr,
        BH: tl.constexpr, BW: tl.constexpr,
    ):
        tile_x = tl.program_id(0)
        tile_y = tl.program_id(1)
        b = tl.program_id(2).to(tl.int64)
        oy = tile_y * TY + tl.arange(0, TY)
        ox = tile_x * TX + tl.arange(0, TX)
        r0 = _window_start(tile_y * TY, scale_y, h)
        c0 = _window_start(tile_x * TX, scale_x, w)
        wy = _interp_weights(oy, scale_y, h, r0, BH, False)  # (TY, BH)
        wxt = _interp_weights(ox, scale_x, w, c0, BW, True)  # (BW, TX)

        # Low-resolution logits of the source window for every query: (NQ_PAD, BH*BW).
        k = tl.arange(0, BH * BW)
        rows = r0 + k // BW
        cols = c0 + k % BW
        pix_valid = (rows < h) & (cols < w)
        pix_off = rows * w + cols
        q = tl.arange(0, NQ_PAD)
        q_valid = q < NQ
        acc = tl.zeros((NQ_PAD, BH * BW), dtype=tl.float32)
        for d0 in range(0, D, BD):
            dd = d0 + tl.arange(0, BD)
            d_valid = dd < D
            e = tl.load(embed_ptr + (b * NQ + q[:, None]) * D + dd[None, :],
                        mask=q_valid[:, None] & d_valid[None, :], other=0.0).to(tl.float32)
            p = tl.load(pixel_ptr + (b * D + dd[:, None]) * (h * w) + pix_off[None, :],
                        mask=d_valid[:, None] & pix_valid[None, :], other=0.0).to(tl.float32)
            acc += tl.dot(e, p, input_precision="ieee")

        out_valid = (oy[:, None] < Ho) & (ox[None, :] < Wo)
        keep_row = tl.load(keep_ptr + b * NQ + q, mask=q_valid, other=0)
        any_kept = tl.sum(keep_row.to(tl.int32), axis=0) > 0
        union = tl.zeros((TY, TX), dtype=tl.int1)
        for qi in range(NQ):
            low = tl.reshape(tl.sum(tl.where(q[:, None] == qi, acc, 0.0), axis=0), (BH, BW))
            up = tl.dot(tl.dot(wy, low, input_precision="ieee"), wxt, input_precision="ieee")
            kept = tl.load(keep_ptr + b * NQ + qi) != 0
            m = (up > thr) & kept
            union = union | m
            dst = masks_ptr + ((b * NQ + qi) * Ho + oy[:, None]) * Wo + ox[None, :]
            tl.store(dst, m.to(tl.uint8), mask=out_valid)

        g = tl.load(global_ptr + b * (h * w) + tl.reshape(pix_off, (BH, BW)),
                    mask=tl.reshape(pix_valid, (BH, BW)), other=0.0).to(tl.float32)
        g_up = tl.dot(tl.dot(wy, g, input_precision="ieee"), wxt, input_precision="ieee")
        union = (union | (g_up > thr)) & any_kept
        tl.store(union_ptr + (b * Ho + oy[:, None]) * Wo + ox[None, :], union.to(tl.uint8), mask=out_valid)


_MAX_WINDOW = 2048  # BH * BW elements per query kept in registers


def _next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def plan_tiles(h: int, w: int, out_h: int, out_w: int) -> tuple[int, int, int, int] | None:
    """Tile plan (TY, TX, BH, BW) for an (h, w) -> (out_h, out_w) upsample, or None if the source
    window of even a 16 x 16 output tile does not fit (a strong downsample: use the reference).

    A TY-row output tile reads at most ceil((TY - 1) * h / out_h) + 2 source rows.
    """
    for tile in (32, 16):
        bh = max(16, _next_pow2(math.ceil((tile - 1) * h / out_h) + 2))
        bw = max(16, _next_pow2(math.ceil((tile - 1) * w / out_w) + 2))
        if bh * bw <= _MAX_WINDOW:
            return tile, tile, bh, bw
    return None


@torch.no_grad()
def fused_mask_head_triton(mask_embed, pixel_embed, global_logits, keep, out_size, mask_threshold=0.5):
    """Triton version of :func:`.reference.mask_head_reference` (same arguments and results).

    Args:
        mask_embed: (B, Nq, d); pixel_embed: (B, d, h, w); global_logits: (B, 1, h, w), any
            float dtype (read as fp32, fp32 products). keep: (B, Nq) bool. out_size: (H, W).

    Returns:
        masks (B, Nq, H, W) uint8 and union (B, H, W) uint8.

    Raises:
        RuntimeError: without Triton, on a CPU tensor without ``TRITON_INTERPRET=1``, or when the
            output is so much smaller than (h, w) that no tile plan fits (see :func:`plan_tiles`).
        ValueError: on inconsistent inputs.
    """
    from .reference import check_mask_head_inputs, logit

    if not triton_available():
        raise RuntimeError("the fused mask head kernel needs `pip install triton`")
    if mask_embed.device.type != "cuda" and not INTERPRETING:
        raise RuntimeError(
            f"the fused mask head kernel runs on CUDA (or with TRITON_INTERPRET=1); got {mask_embed.device}")
    check_mask_head_inputs(mask_embed, pixel_embed, global_logits, keep, out_size, mask_threshold)
    b, n_q, d = mask_embed.shape
    h, w = pixel_embed.shape[2:]
    out_h, out_w = int(out_size[0]), int(out_size[1])
    plan = plan_tiles(h, w, out_h, out_w)
    if plan is None:
        raise RuntimeError(f"no tile plan for a {h}x{w} -> {out_h}x{out_w} resize; use mask_head_reference")
    ty, tx, bh, bw = plan
    masks = torch.empty(b, n_q, out_h, out_w, dtype=torch.uint8, device=mask_embed.device)
    union = torch.empty(b, out_h, out_w, dtype=torch.uint8, device=mask_embed.device)
    grid = (triton.cdiv(out_w, tx), triton.cdiv(out_h, ty), b)
    _fused_mask_head_kernel[grid](
        mask_embed.contiguous(), pixel_embed.contiguous(), global_logits.contiguous(),
        keep.to(torch.uint8).contiguous(), masks, union,
        n_q, d, h, w, out_h, out_w, float(h) / out_h, float(w) / out_w, logit(mask_threshold),
        NQ_PAD=max(16, _next_pow2(n_q)), BD=16, TY=ty, TX=tx, BH=bh, BW=bw,
        num_warps=4 if INTERPRETING else 8,
    )
    return masks, union
