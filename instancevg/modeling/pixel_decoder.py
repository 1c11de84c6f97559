"""Global branch: U-Net pixel decoder, global mask and existence (docs/DESIGN.md "Network", global branch)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .precision import float32_region

from .neck import SeparableConvBlock


class _UpFuse(nn.Module):
    """One U-Net step: GELU(GN(conv1x1([up(x) ; skip]))) then a separable refinement.

    The 1x1 convolution over the concatenation is split into its two halves, and the half that
    reads ``x`` runs at the coarse resolution *before* the bilinear upsampling: a 1x1 convolution
    commutes with bilinear interpolation (whose weights sum to 1), so this is the same function
    at a quarter of the cost on the coarse half.

    Shapes: x (B, c_in, h, w), skip (B, c_skip, H, W) -> (B, c_out, H, W).
    """

    def __init__(self, c_in: int, c_skip: int, c_out: int):
        super().__init__()
        self.from_coarse = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.from_skip = nn.Conv2d(c_skip, c_out, 1, bias=False)
        self.norm = nn.GroupNorm(min(32, c_out // 4), c_out)
        self.refine = SeparableConvBlock(c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(self.from_coarse(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(F.gelu(self.norm(up + self.from_skip(skip))))


class PixelDecoder(nn.Module):
    """U-Net decoder from F32 up to stride 4.

    Input:  [F4 (B, mask_dim, S/4, S/4), F8, F16, F32 (B, d, H_l, W_l)] and the sentence (B, d).
    Output: pixel embedding P (B, mask_dim, S/4, S/4), global mask logits (B, 1, S/4, S/4) and
            existence logits (B, 2) ordered (absent, present), or None when built with
            ``existence=False`` (the decision is then made elsewhere, e.g. by a rejection token).
    """

    def __init__(self, d: int, mask_dim: int, existence: bool = True):
        super().__init__()
        self.steps = nn.ModuleList([_UpFuse(d, d, d), _UpFuse(d, d, d), _UpFuse(d, mask_dim, mask_dim)])
        self.global_mask = nn.Conv2d(mask_dim, 1, 1)
        self.existence = (nn.Sequential(nn.Linear(2 * mask_dim + d, d), nn.GELU(), nn.Linear(d, 2))
                          if existence else None)

    def forward(self, feats: list[torch.Tensor], sentence: torch.Tensor):
        """Shapes: see the class docstring."""
        x = feats[3]
        for step, lvl in zip(self.steps, (2, 1, 0)):
            x = step(x, feats[lvl])
        pixel = x
        global_mask = self.global_mask(pixel)
        if self.existence is None:
            return pixel, global_mask, None
        with float32_region(pixel):  # the no-target decision stays float32 under autocast
            pooled = torch.cat([pixel.mean(dim=(2, 3)), pixel.amax(dim=(2, 3)), sentence], dim=1).float()
            existence = self.existence(pooled)
        return pixel, global_mask, existence
