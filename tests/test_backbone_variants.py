"""EfficientNet-Lite0/1/2 backbones (``ModelConfig.backbone``): pyramid levels read from the block
strides, channels, ImageNet weights, and a whole model built on each."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from instancevg.config import BACKBONES, get_preset
from instancevg.modeling.backbone import BackboneUnavailableError, EfficientNetLiteBackbone, imagenet_state, level_ends
from instancevg.modeling.model import InstanceVGModel


@pytest.mark.parametrize("name, channels", [
    ("efficientnet-lite0", (24, 40, 112, 320)),
    ("efficientnet-lite1", (24, 40, 112, 320)),
    ("efficientnet-lite2", (24, 48, 120, 352)),
])
def test_pyramid_strides_and_channels(name, channels):
    # channels from the EfficientNet-Lite paper's table (Tan & Le 2019, with the Lite width multipliers)
    backbone = EfficientNetLiteBackbone(pretrained=False, name=name).eval()
    assert backbone.channels == channels
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 128, 128))
    assert [tuple(f.shape[1:]) for f in feats] == [(c, 128 // s, 128 // s) for c, s in zip(channels, (4, 8, 16, 32))]


def test_lite0_level_ends_are_the_published_block_indices():
    # EfficientNet-Lite0's 16 MBConv blocks: stride 4 ends at block 2, 8 at 4, 16 at 10, 32 at 15
    assert EfficientNetLiteBackbone(pretrained=False).level_ends == (2, 4, 10, 15)


def test_level_ends_rejects_a_net_without_four_reductions():
    class Args:
        def __init__(self, stride):
            self.stride = stride

    class Block:
        def __init__(self, stride):
            self._block_args = Args(stride)

    with pytest.raises(ValueError, match="4 stride-2 blocks"):
        level_ends([Block(1), Block(2), Block(2), Block([1])])


def test_unknown_backbone_is_one_line_error():
    with pytest.raises(ValueError, match="backbone must be one of"):
        get_preset("edge-tiny", backbone="efficientnet-lite9")


@pytest.mark.parametrize("name", BACKBONES)
def test_imagenet_weights_load_into_the_variant(name):
    try:
        state = imagenet_state(name)
    except BackboneUnavailableError as exc:
        pytest.skip(f"{name}'s ImageNet file is not installed ({exc})")
    backbone = EfficientNetLiteBackbone(pretrained=True, name=name)
    assert torch.equal(backbone.stem[0].weight, state["_conv_stem.weight"])
    last = len(backbone.blocks) - 1
    key = f"_blocks.{last}._project_conv.weight"
    assert torch.equal(backbone.blocks[last]._project_conv.weight, state[key])
    assert state["_conv_head.weight"].shape[1] == backbone.channels[3]  # the class prior's input


def test_model_on_lite2_runs_with_the_class_prior():
    config = get_preset("edge-tiny", backbone="efficientnet-lite2", pretrained_backbone=False, class_prior=True)
    model = InstanceVGModel(config, load_pretrained=False).eval()
    assert model.class_prior.conv_head.in_channels == 352
    ids = torch.tensor([[101, 1996, 2417, 102]])
    with torch.no_grad():
        out = model(torch.randn(1, 3, config.image_size, config.image_size), ids, torch.ones_like(ids))
    assert out.pred_boxes.shape == (1, config.num_queries, 4)
    assert torch.isfinite(out.scores).all()


def test_config_without_backbone_key_loads_as_lite0():
    # files written before the option existed have no "backbone" key
    data = get_preset("edge-tiny").to_dict()
    data.pop("backbone")
    assert type(get_preset("edge-tiny")).from_dict(data).backbone == "efficientnet-lite0"
    assert dataclasses.replace(get_preset("edge"), backbone="efficientnet-lite1").backbone == "efficientnet-lite1"


def test_init_from_a_lite0_file_keeps_everything_but_the_trunk():
    """--init-from a lite0 file into a lite2 model: the trunk and the prior's classifier stay the
    model's own (ImageNet), weights whose shape differs start fresh, everything else is the file's."""
    from instancevg.checkpoint import CheckpointError, load_weights
    from instancevg.training.trainer import weights_for_backbone

    torch.manual_seed(0)
    lite0 = InstanceVGModel(get_preset("edge-tiny", pretrained_backbone=False, class_prior=True),
                            load_pretrained=False)
    lite2 = InstanceVGModel(get_preset("edge-tiny", backbone="efficientnet-lite2", pretrained_backbone=False,
                                       class_prior=True), load_pretrained=False)
    before = {k: v.clone() for k, v in lite2.state_dict().items()}
    state = lite0.state_dict()
    with pytest.raises(CheckpointError, match="does not fit"):
        load_weights(lite2, state, partial=True)  # the raw file: shape mismatches are refused
    kept = weights_for_backbone(state, lite2)
    fresh, dropped = load_weights(lite2, kept, partial=True)
    after = lite2.state_dict()
    assert not dropped
    assert all(k.startswith(("backbone.", "class_prior.conv_head.", "class_prior.bn.", "class_prior.fc.", "neck."))
               for k in fresh)
    assert any(k.startswith("neck.") for k in fresh)  # lite2's wider C3..C5 projections
    assert all(torch.equal(after[k], before[k]) for k in fresh)
    assert torch.equal(after["backbone.stem.0.weight"], before["backbone.stem.0.weight"])
    assert all(torch.equal(after[k], v) for k, v in kept.items() if not k.startswith("text_encoder."))
    assert torch.equal(after["decoder.layers.0.self_attn.in_proj_weight"], state["decoder.layers.0.self_attn.in_proj_weight"])


def test_init_from_report_names_imagenet_weights_apart_from_fresh_ones():
    from instancevg.training.trainer import init_from_report

    missing = ["backbone.stem.0.weight", "class_prior.fc.weight", "neck.lateral.1.weight", "neck.lateral.1.bias"]
    line = init_from_report("a.safetensors", missing, ["pixel_decoder.existence.0.weight"], "efficientnet-lite2")
    assert "2 weights from efficientnet-lite2's ImageNet file (backbone.stem, class_prior.fc)" in line
    assert "2 weights start fresh (neck.lateral)" in line and "1 unused (pixel_decoder.existence)" in line
    # Without an ImageNet load, nothing came from there: every missing weight starts fresh.
    line = init_from_report("a.safetensors", missing, [], None)
    assert "ImageNet" not in line and "4 weights start fresh" in line
