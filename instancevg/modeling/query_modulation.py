"""Language-guided refinement inside the backbone (``ModelConfig.query_modulation``).

QRNet (Ye et al., "Shifting More Attention to Visual Backbone: Query-modulated Refinement
Networks for End-to-End Visual Grounding", CVPR 2022, Sec. 3.2) refines the visual backbone's
features with the expression *between* its stages (Query-aware Dynamic Attention, channel then
spatial attention whose weights come from the text), so the later stages already compute
features of what the phrase asks for. Here the EfficientNet-Lite0 backbone is cut into a
text-free trunk (stem to C3, shared by every expression of an image) and a tail (C3 to C5)
that runs per expression; C3 and C4 are refined by :class:`QueryModulation` before the next
stage reads them, and the refined C3, C4 and C5 go to the language FPN.

Each refinement starts as the identity (its gate is zero-initialised), so a model trained
without the option can be continued with it.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class QueryModulation(nn.Module):
    """Text-conditioned channel and spatial attention on one backbone map.

    ``x * (1 + g * a_c * a_s)`` with a_c = sigmoid(W_c s) (B, C, 1, 1) the channel attention,
    a_s = sigmoid(<x, W_k s> / sqrt(C)) (B, 1, h, w) the spatial attention from the text key
    W_k s, and g a learned scalar gate starting at 0.

    Args:
        channels: C, channels of the map.
        d: width of the sentence feature.
    """

    def __init__(self, channels: int, d: int):
        super().__init__()
        self.channel = nn.Linear(d, channels)
        self.key = nn.Linear(d, channels)
        self.gate = nn.Parameter(torch.zeros(1))
        self.scale = 1.0 / math.sqrt(channels)

    def forward(self, x: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        """x (B, C, h, w) backbone map, sentence (B, d) -> refined map (B, C, h, w)."""
        a_c = torch.sigmoid(self.channel(sentence))[:, :, None, None].to(x.dtype)
        key = self.key(sentence)[:, :, None, None].to(x.dtype)
        a_s = torch.sigmoid((x * key).sum(1, keepdim=True) * self.scale)
        return x * (1 + self.gate.to(x.dtype) * a_c * a_s)


class QueryModulatedTail(nn.Module):
    """The refinements at C3 and C4 (``channels`` = backbone channels of C2..C5).

    Args:
        channels: the backbone's (C2, C3, C4, C5) channel counts.
        d: width of the sentence feature.
    """

    def __init__(self, channels: tuple[int, ...], d: int):
        super().__init__()
        self.c3 = QueryModulation(channels[1], d)
        self.c4 = QueryModulation(channels[2], d)

    def forward(self, backbone: nn.Module, trunk: list[torch.Tensor], sentence: torch.Tensor) -> list[torch.Tensor]:
        """trunk [C2, C3] from ``backbone.trunk`` (batch B), sentence (B, d) -> [C2, C3', C4', C5]."""
        c2, c3 = trunk
        c3 = self.c3(c3, sentence)
        c4 = self.c4(backbone.stage(c3, 2), sentence)
        return [c2, c3, c4, backbone.stage(c4, 3)]
