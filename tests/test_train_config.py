"""Training options: recipes, --config / --set, schedules, epochs, official loss weighting,
optimizer groups, frozen backbone BatchNorm and trainable text layers."""
from __future__ import annotations

import math

import pytest
import torch

from instancevg.config import get_preset
from instancevg.training.losses import LOSS_WEIGHTINGS, grounding_loss
from instancevg.training.train_config import (RECIPES, TrainConfig, apply_overrides, lr_lambda, parse_set, read_config_file,
                                     recipe_settings, resolve_epochs)
from fake_outputs import make_outputs


def _cfg(**kw):
    return TrainConfig(data=["procedural:/nowhere"], out="run", **kw)


def test_set_and_config_reach_train_and_model_fields(tmp_path):
    cfg = apply_overrides(_cfg(), parse_set(["lr=1e-4", "mask_dim=128", "decoder_levels=4", "schedule=cosine"]))
    assert cfg.lr == 1e-4 and cfg.schedule == "cosine" and cfg.model == {"mask_dim": 128, "decoder_levels": 4}
    assert cfg.model_config().mask_dim == 128 and cfg.model_config().decoder_levels == 4
    f = tmp_path / "c.yaml"
    f.write_text("batch_size: 4\ntrain_text_layers: 2\nadam_betas: [0.9, 0.98]\n")
    cfg = apply_overrides(cfg, read_config_file(f))
    assert cfg.batch_size == 4 and cfg.model_config().train_text_layers == 2 and cfg.adam_betas == (0.9, 0.98)
    with pytest.raises(ValueError, match="unknown setting 'colour'"):
        apply_overrides(cfg, {"colour": "red"})
    with pytest.raises(ValueError, match="--set takes key=value"):
        parse_set(["lr"])
    with pytest.raises(ValueError, match="schedule must be one of"):
        apply_overrides(cfg, {"schedule": "linear"})
    with pytest.raises(ValueError, match="train_text_layers must be in 0..text_layers"):
        apply_overrides(cfg, {"train_text_layers": 9}).model_config()
    f.write_text("- a list\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        read_config_file(f)


def test_official_recipe_settings():
    cfg = apply_overrides(_cfg(), recipe_settings("instancevg-grefcoco"))
    assert (cfg.optimizer, cfg.lr, cfg.adam_betas, cfg.adam_eps, cfg.weight_decay, cfg.amsgrad) == (
        "adam", 5e-4, (0.9, 0.98), 1e-9, 0.0, True)
    assert (cfg.clip_grad_norm, cfg.batch_size, cfg.epochs, cfg.loss_weighting) == (0.15, 16, 10.0, "official")
    assert cfg.recipe == "instancevg-grefcoco"
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_settings("nope")
    # 1000 sentences, batch 16, 2 processes: 32 steps per epoch
    r = resolve_epochs(cfg, 1000, world=2)
    assert (r.steps, r.warmup_steps, r.decay_steps) == (320, 32, [192])
    with pytest.raises(ValueError, match="endless"):
        resolve_epochs(cfg, None, world=1)
    assert set(RECIPES) == {"instancevg-grefcoco"}


def test_schedules():
    step = lr_lambda(_cfg(steps=100, warmup_steps=10))
    assert step(0) == pytest.approx(0.1) and step(50) == 1.0 and step(80) == pytest.approx(0.1)
    cos = lr_lambda(_cfg(steps=110, warmup_steps=10, schedule="cosine", min_lr_ratio=0.0))
    assert cos(9) == pytest.approx(1.0) and cos(60) == pytest.approx(0.5) and cos(110) == pytest.approx(0.0, abs=1e-9)
    assert all(cos(s) >= cos(s + 1) - 1e-12 for s in range(10, 109))  # monotone after warm-up


def _outputs(b=2, nq=4, m=8, layers=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    def layer():
        return {"pred_logits": torch.randn(b, nq, 2, generator=g), "pred_boxes": torch.rand(b, nq, 4, generator=g) * 0.5 + 0.25}
    last = layer()
    return make_outputs(**last, aux_outputs=[layer() for _ in range(layers - 1)],
                        reference_points=torch.rand(b, nq, 2, generator=g),
                        pred_masks=torch.randn(b, nq, m, m, generator=g), global_mask=torch.randn(b, 1, m, m, generator=g),
                        heatmap=torch.randn(b, 2, 2, generator=g), existence=torch.randn(b, 2, generator=g))


def test_official_loss_weighting_is_the_reference_sum():
    """official = 0.1 * (1 ce + 5 l1 + 2 giou on the last layer + 1/1/1 on the others) + the rest."""
    out = _outputs()
    targets = [{"boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]]), "masks": torch.rand(1, 8, 8), "union": torch.rand(8, 8)},
               {"boxes": torch.zeros(0, 4), "masks": torch.zeros(0, 8, 8), "union": torch.zeros(8, 8)}]
    design = grounding_loss(out, targets, LOSS_WEIGHTINGS["design"])
    official = grounding_loss(out, targets, LOSS_WEIGHTINGS["official"])
    det = {k: v for k, v in design.items() if k.split("_")[0] in ("ce", "l1", "giou")}
    rest = design["loss"] - sum(w * det[k + s] for s in ("", "_0", "_1") for k, w in (("ce", 1), ("l1", 5), ("giou", 2)))
    expect = rest + 0.1 * (det["ce"] + 5 * det["l1"] + 2 * det["giou"]
                           + sum(det[k + s] for s in ("_0", "_1") for k in ("ce", "l1", "giou")))
    assert float(official["loss"]) == pytest.approx(float(expect), rel=1e-5)
    assert float(official["loss"]) < float(design["loss"])


def test_num_gt_override_normalises_box_losses():
    out = _outputs()
    targets = [{"boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]]), "masks": torch.rand(1, 8, 8), "union": torch.rand(8, 8)}] * 2
    a = grounding_loss(out, targets)
    b = grounding_loss(out, targets, num_gt=4.0)  # as if the other rank held twice as many
    assert float(b["l1"]) == pytest.approx(float(a["l1"]) / 2, rel=1e-5)


def test_optimizer_groups_frozen_bn_and_text_layers(tiny_model):
    from instancevg.modeling.model import InstanceVGModel
    from instancevg.training.trainer import build_optimizer, set_train_mode

    cfg = apply_overrides(_cfg(preset="edge-tiny"), {"backbone_bn": "frozen", "optimizer": "adam", "amsgrad": True,
                                                     "train_text_layers": 1})
    model = InstanceVGModel(cfg.model_config(), load_pretrained=False)
    text_trainable = [n for n, p in model.named_parameters() if p.requires_grad and n.startswith("text_encoder.")]
    assert text_trainable and all(".layer.1." in n for n in text_trainable)  # only the top one of 2 layers
    opt = build_optimizer(model, cfg)
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["amsgrad"]
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(5e-4), pytest.approx(5e-5), pytest.approx(5e-5)]
    set_train_mode(model, cfg)
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns) and model.decoder.training
    before = bns[0].running_mean.clone()
    model.backbone(torch.randn(2, 3, 64, 64))
    assert torch.equal(before, bns[0].running_mean)  # statistics stay fixed
    from instancevg.checkpoint import model_state

    assert any(k.startswith("text_encoder.") for k in model_state(model))  # trained text layers are stored
    assert not any(k.startswith("text_encoder.") for k in model_state(tiny_model))
    default_groups = build_optimizer(tiny_model, _cfg(preset="edge-tiny")).param_groups
    assert len(default_groups) == 2 and math.isclose(default_groups[1]["lr"], 5e-5)


def test_expression_mix_fields_are_checked():
    cfg = TrainConfig(data=["procedural"], out="runs/x", wrong_count_weight=0.0, similar_absent_weight=1.5)
    assert (cfg.wrong_count_weight, cfg.similar_absent_weight) == (0.0, 1.5)
    sampling = TrainConfig(data=["procedural"], out="runs/x", hflip=0.25, scale_jitter=0.5, multi_target_weight=3.0,
                           similar_absent_weight=1.5).sampling()
    assert (sampling.hflip, sampling.scale_jitter) == (0.25, 0.5)
    assert (sampling.mix.multi_target_weight, sampling.mix.wrong_count_weight, sampling.mix.similar_absent_weight) == (
        3.0, 1.0, 1.5)
    for field, bad, msg in [("wrong_count_weight", -0.5, "wrong_count_weight must be >= 0"),
                            ("similar_absent_weight", -1.0, "similar_absent_weight must be >= 0"),
                            ("multi_target_weight", 0.0, "multi_target_weight must be positive")]:
        with pytest.raises(ValueError, match=msg):
            TrainConfig(data=["procedural"], out="runs/x", **{field: bad})


def test_keep_every_must_fall_on_written_checkpoints():
    assert TrainConfig(data=["procedural"], out="runs/x", ckpt_every=100, keep_every=500).keep_every == 500
    with pytest.raises(ValueError, match=r"keep_every \(250\) must be a multiple of ckpt_every \(100\)"):
        TrainConfig(data=["procedural"], out="runs/x", ckpt_every=100, keep_every=250)


def test_point_in_box_cost_reaches_the_matcher():
    cfg = TrainConfig(data=["procedural"], out="runs/x", point_in_box_cost=2.5)
    weights = cfg.matcher_weights()
    assert weights.point_in_box_cost == 2.5
    assert (weights.box_cost, weights.point_cost) == (5.0, 2.0)  # the other terms stay at DESIGN.md's defaults
    assert TrainConfig(data=["procedural"], out="runs/x").matcher_weights().point_in_box_cost == 0.0
    with pytest.raises(ValueError, match="point_in_box_cost must be a finite number >= 0"):
        TrainConfig(data=["procedural"], out="runs/x", point_in_box_cost=-1.0)
