"""Global branch: U-Net pixel decoder, global mask and existence (DESIGN.md "global")."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .neck import SeparableConvBlock, conv_norm_act


class PixelDecoder(nn.Module):
    """U-Net decoder from F32 up to stride 4.

    Input:  [F4, F8, F16, F32] each (B, d, H_l, W_l) and the sentence feature (B, d).
    Output: pixel embedding P (B, d, S/4, S/4), global mask logits (B, 1, S/4, S/4) and
            existence logits (B, 2) ordered (absent, present).
    """

    def __init__(self, d: int):
        super().__init__()
        self.fuse = nn.ModuleList(conv_norm_act(2 * d, d, 1) for _ in range(3))
        self.refine = nn.ModuleList(SeparableConvBlock(d) for _ in range(3))
        self.global_mask = nn.Conv2d(d, 1, 1)
        self.existence = nn.Sequential(nn.Linear(3 * d, d), nn.GELU(), nn.Linear(d, 2))

    def forward(self, feats: list[torch.Tensor], sentence: torch.Tensor):
        x = feats[3]
        for i, lvl in enumerate((2, 1, 0)):
            skip = feats[lvl]
            up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = self.refine[i](self.fuse[i](torch.cat([up, skip], dim=1)))
        pixel = x
        global_mask = self.global_mask(pixel)
        pooled = torch.cat([pixel.mean(dim=(2, 3)), pixel.amax(dim=(2, 3)), sentence], dim=1)
        existence = self.existence(pooled)
        return pixel, global_mask, existence
