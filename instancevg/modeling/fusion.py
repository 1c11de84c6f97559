"""Language-guided fusion of image features (docs/DESIGN.md "Network", fusion).

Two parts:
* :class:`LanguageGuidedModulation` – every pyramid level is modulated by the sentence
  feature (FiLM scale/shift plus a text-pixel similarity gate), in the spirit of UniQRNet's
  query-modulated refinement.
* :class:`BidirectionalFusion` – a transformer in which the stride-16/32 image tokens attend to
  the text tokens and the text tokens attend back to the image tokens.
"""
from __future__ import annotations

import torch
from torch import nn


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, L, d) tokens over valid positions of mask (B, L) (1 = valid) -> (B, d)."""
    m = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * m).sum(1) / m.sum(1).clamp(min=1.0)


class LanguageGuidedModulation(nn.Module):
    """Modulate a (B, c, H, W) feature map with the sentence feature s (B, d).

    x' = x * (1 + gamma(s)) + beta(s);  gate = sigmoid(<x', k(s)> / sqrt(c));  out = GN(x' + x' * gate).

    The gate is the text-pixel similarity <W x', s> of a 1x1 key convolution with W folded onto
    the sentence side (k(s) = W^T s): a (B, c) vector instead of a c x c convolution over every
    pixel, which is what keeps the 80x80 level cheap.
    """

    def __init__(self, c: int, d: int):
        super().__init__()
        self.film = nn.Linear(d, 2 * c)
        self.key = nn.Linear(d, c)
        self.norm = nn.GroupNorm(min(32, c // 4), c)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.scale = c**-0.5

    def forward(self, x: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W), sentence (B, d) -> (B, C, H, W) modulated map."""
        gamma, beta = self.film(sentence).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        x = x * (1 + gamma) + beta
        key = self.key(sentence).unsqueeze(-1).unsqueeze(-1) * self.scale
        gate = torch.sigmoid((x * key).sum(1, keepdim=True))
        return self.norm(x + x * gate)


class _FusionLayer(nn.Module):
    def __init__(self, d: int, n_heads: int, ffn_dim: int):
        super().__init__()
        self.img_from_text = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.text_from_img = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.img_self = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(4))
        # Edge budget: half-width image FFN and no text FFN (the text side is a 384->d projection
        # of a frozen encoder and is refined again by AQSM and the decoder).
        self.img_ffn = nn.Sequential(nn.Linear(d, ffn_dim // 2), nn.GELU(), nn.Linear(ffn_dim // 2, d))

    def forward(self, img, img_pos, text, text_pad):
        q = img + img_pos
        img = self.norms[0](img + self.img_self(q, q, img, need_weights=False)[0])
        img = self.norms[1](img + self.img_from_text(img + img_pos, text, text, key_padding_mask=text_pad,
                                                     need_weights=False)[0])
        text = self.norms[2](text + self.text_from_img(text, img + img_pos, img, need_weights=False)[0])
        img = self.norms[3](img + self.img_ffn(img))
        return img, text


class BidirectionalFusion(nn.Module):
    """Image<->text transformer over the concatenated stride-16 and stride-32 tokens.

    Inputs: img (B, N, d) tokens with sine positions img_pos (B or 1, N, d); text (B, L, d);
    text_mask (B, L) with 1 = valid token. Returns the updated (img, text).
    """

    def __init__(self, d: int, n_heads: int, ffn_dim: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(_FusionLayer(d, n_heads, ffn_dim) for _ in range(num_layers))

    def forward(self, img, img_pos, text, text_mask):
        """Shapes: see the class docstring. Returns (img (B, N, d), text (B, L, d))."""
        pad = text_mask == 0
        for layer in self.layers:
            img, text = layer(img, img_pos, text, pad)
        return img, text
