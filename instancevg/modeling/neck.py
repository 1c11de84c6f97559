"""Language-modulated FPN: C2..C5 -> F4 (mask_dim channels), F8, F16, F32 (d channels) (docs/DESIGN.md "Network", neck)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .fusion import BidirectionalFusion, LanguageGuidedModulation
from .positional import sine_embed_grid


def conv_norm_act(c_in: int, c_out: int, k: int = 1) -> nn.Sequential:
    """Conv(k) -> GroupNorm -> GELU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False),
                         nn.GroupNorm(min(32, c_out // 4), c_out), nn.GELU())


class SeparableConvBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1 + GroupNorm + GELU, with a residual: (B,d,H,W) -> (B,d,H,W).

    Separable convolutions keep the 80x80 maps cheap.
    """

    def __init__(self, d: int):
        super().__init__()
        self.dw = nn.Conv2d(d, d, 3, padding=1, groups=d, bias=False)
        self.pw = conv_norm_act(d, d, 1)

    def forward(self, x):
        """(B, C, H, W) -> (B, C, H, W), residual."""
        return x + self.pw(self.dw(x))


class LanguageFPN(nn.Module):
    """Project C2..C5 to their level widths, modulate every level by the sentence, run the
    bidirectional image<->text transformer over the stride-16/32 tokens, then merge top-down.

    Level widths are (mask_dim, d, d, d): the stride-4 map is narrow (config.mask_dim). The
    top-down path narrows F8 to mask_dim with a 1x1 convolution *before* the nearest upsampling to
    stride 4 (the two commute, and the convolution then runs on 4x fewer pixels).

    Inputs: feats [C2..C5] from the backbone, text (B, L, d), text_mask (B, L), sentence (B, d).
    Returns: ([F4 (B, mask_dim, S/4, S/4), F8, F16, F32 each (B, d, H_l, W_l)], text (B, L, d)).
    """

    def __init__(self, in_channels: tuple[int, ...], d: int, mask_dim: int, n_heads: int, ffn_dim: int,
                 fusion_layers: int):
        super().__init__()
        widths = (mask_dim,) + (d,) * (len(in_channels) - 1)
        self.lateral = nn.ModuleList(conv_norm_act(c, w, 1) for c, w in zip(in_channels, widths))
        self.modulate = nn.ModuleList(LanguageGuidedModulation(w, d) for w in widths)
        self.fusion = BidirectionalFusion(d, n_heads, ffn_dim, fusion_layers)
        self.narrow = nn.Conv2d(d, mask_dim, 1, bias=False)
        self.smooth = nn.ModuleList(SeparableConvBlock(w) for w in widths[:-1])

    def forward(self, feats, text, text_mask, sentence):
        """Shapes: see the class docstring."""
        lat = [mod(lat(f), sentence) for f, lat, mod in zip(feats, self.lateral, self.modulate)]
        c4, c5 = lat[2], lat[3]
        b, d, h4, w4 = c4.shape
        _, _, h5, w5 = c5.shape
        tokens = torch.cat([c4.flatten(2), c5.flatten(2)], dim=2).transpose(1, 2)
        pos = torch.cat([sine_embed_grid(h4, w4, d, c4.device), sine_embed_grid(h5, w5, d, c4.device)], dim=1)
        tokens, text = self.fusion(tokens, pos.to(tokens.dtype), text, text_mask)
        lat[2] = tokens[:, : h4 * w4].transpose(1, 2).reshape(b, d, h4, w4)
        lat[3] = tokens[:, h4 * w4:].transpose(1, 2).reshape(b, d, h5, w5)
        outs = [lat[3]]
        for lvl in (2, 1, 0):
            coarse = self.narrow(outs[0]) if lvl == 0 else outs[0]
            top = F.interpolate(coarse, size=lat[lvl].shape[-2:], mode="nearest")
            outs.insert(0, self.smooth[lvl](lat[lvl] + top))
        return outs, text
