"""InstanceVGModel (edge-tiny), ModelConfig/presets, the tokenizer and the reference-point
selection of AQSM.

Expected shapes are derived from the config (Nq = num_queries, mask side = image_size // 4,
heatmap side = image_size // 16), never from a previous run. The shared ``tiny_model`` fixture
is never mutated: tests that need gradients work on a deep copy.
"""

import copy
import dataclasses
import json
import warnings

import pytest
import torch

from instancevg.config import PRESETS, ModelConfig, get_preset
from instancevg.training.losses import grounding_loss
from instancevg.modeling.query_selection import select_reference_points

TEXTS = ["the red cup on the left", "dog"]


def _images(n, size, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)


@pytest.fixture(scope="module")
def batch_outputs(tiny_model, tokenizer, tiny_config):
    images = _images(2, tiny_config.image_size, seed=1)
    ids, mask = tokenizer(TEXTS)
    with torch.no_grad():
        out = tiny_model(images, ids, mask)
    return images, ids, mask, out


# ---- config / presets ----------------------------------------------------------------------


def test_get_preset_unknown_name_raises():
    with pytest.raises(ValueError, match="nope"):
        get_preset("nope")


def test_get_preset_overrides_do_not_mutate_preset():
    cfg = get_preset("edge-tiny", num_queries=3)
    assert cfg.num_queries == 3
    assert get_preset("edge-tiny").num_queries == PRESETS["edge-tiny"].num_queries != 3


def test_mask_size_is_quarter_of_image_size():
    assert get_preset("edge").mask_size == 80  # 320 / 4, docs/DESIGN.md
    assert get_preset("edge-tiny", image_size=96).mask_size == 24


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_config_dict_roundtrip(name):
    cfg = get_preset(name)
    d = cfg.to_dict()
    # Plain JSON: tuples became lists, and it survives a JSON round trip.
    assert d["image_mean"] == list(cfg.image_mean) and isinstance(d["image_mean"], list)
    back = ModelConfig.from_dict(json.loads(json.dumps(d)))
    assert back == cfg
    assert isinstance(back.image_std, tuple)


def test_config_from_dict_unknown_key_raises():
    d = get_preset("edge-tiny").to_dict()
    d["not_a_field"] = 1
    with pytest.raises(ValueError, match="not_a_field"):
        ModelConfig.from_dict(d)


# ---- tokenizer ---------------------------------------------------------------------------


@pytest.mark.parametrize("texts", [[], [""], ["   "], ["a dog", ""]])
def test_tokenizer_rejects_empty(tokenizer, texts):
    with pytest.raises(ValueError):
        tokenizer(texts)


def test_tokenizer_pads_to_longest(tokenizer):
    ids, mask = tokenizer(["a", "the dog on the left"])
    assert ids.dtype == torch.int64 and mask.dtype == torch.int64
    # "a" -> [CLS] a [SEP] = 3 tokens; the second: [CLS] + 5 words + [SEP] = 7 tokens.
    assert ids.shape == mask.shape == (2, 7)
    assert mask[0].tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert mask[1].tolist() == [1] * 7
    assert ids[0, 3:].tolist() == [0] * 4
    # BERT uncased vocabulary: [CLS] = 101, [SEP] = 102.
    assert ids[0, 0] == ids[1, 0] == 101 and ids[0, 2] == ids[1, 6] == 102


def test_tokenizer_truncates_with_warning(tokenizer):
    long_text = " ".join(["dog"] * (tokenizer.max_len + 10))
    with pytest.warns(UserWarning, match="truncated"):
        ids, mask = tokenizer([long_text])
    assert ids.shape == (1, tokenizer.max_len)
    assert int(mask.sum()) == tokenizer.max_len
    assert ids[0, 0] == 101 and ids[0, -1] == 102  # [CLS] kept at the start, [SEP] at the end


def test_tokenizer_short_text_no_warning(tokenizer):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tokenizer(["a dog"])


# ---- forward outputs -------------------------------------------------------------------


def test_output_shapes(batch_outputs, tiny_config):
    _, _, _, out = batch_outputs
    b, nq = 2, tiny_config.num_queries
    m = tiny_config.image_size // 4
    g = tiny_config.image_size // 16
    assert out.pred_logits.shape == (b, nq, 2)
    assert out.pred_boxes.shape == (b, nq, 4)
    assert out.pred_masks.shape == (b, nq, m, m)
    assert out.global_mask.shape == (b, 1, m, m)
    assert out.existence.shape == (b, 2)
    assert out.heatmap.shape == (b, g, g)
    assert out.reference_points.shape == (b, nq, 2)
    assert out.scores.shape == (b, nq)
    assert isinstance(out.aux_outputs, list)
    assert len(out.aux_outputs) == tiny_config.decoder_layers - 1
    for aux in out.aux_outputs:
        assert aux.pred_logits.shape == (b, nq, 2)
        assert aux.pred_boxes.shape == (b, nq, 4)
    for f in dataclasses.fields(out):
        v = getattr(out, f.name)
        if torch.is_tensor(v):
            assert torch.isfinite(v).all(), f.name


def test_scores_are_fg_prob_times_existence(batch_outputs):
    _, _, _, out = batch_outputs
    s = out.scores
    assert ((s >= 0) & (s <= 1)).all()
    fg = torch.softmax(out.pred_logits, -1)[..., 0]
    present = torch.softmax(out.existence, -1)[:, 1]
    torch.testing.assert_close(s, fg * present[:, None], atol=1e-6, rtol=1e-5)


def test_boxes_in_unit_range(batch_outputs):
    _, _, _, out = batch_outputs
    boxes = [out.pred_boxes] + [a.pred_boxes for a in out.aux_outputs]
    for bx in boxes:
        assert ((bx >= 0) & (bx <= 1)).all()
        assert (bx[..., 2:] > 0).all()  # positive width/height


def test_reference_points_on_stride16_cell_centres(batch_outputs, tiny_config):
    _, _, _, out = batch_outputs
    ref = out.reference_points
    g = tiny_config.image_size // 16
    assert ((ref > 0) & (ref < 1)).all()
    cell = ref * g - 0.5  # (i + 0.5) / g  ->  i
    torch.testing.assert_close(cell, cell.round(), atol=1e-4, rtol=0)
    # Points of one sample are distinct cells.
    for b in range(ref.shape[0]):
        idx = {(int(x), int(y)) for x, y in cell[b].round().tolist()}
        assert len(idx) == tiny_config.num_queries


def _assert_outputs_close(a, b, atol=1e-4):
    for k in ("pred_logits", "pred_boxes", "pred_masks", "global_mask", "existence", "heatmap",
              "reference_points", "scores"):
        torch.testing.assert_close(getattr(a, k), getattr(b, k), atol=atol, rtol=1e-4, msg=lambda m: f"{k}: {m}")
    assert len(a.aux_outputs) == len(b.aux_outputs)
    for la, lb in zip(a.aux_outputs, b.aux_outputs):
        torch.testing.assert_close(la.pred_logits, lb.pred_logits, atol=atol, rtol=1e-4)
        torch.testing.assert_close(la.pred_boxes, lb.pred_boxes, atol=atol, rtol=1e-4)


def test_per_sample_independence(tiny_model, tokenizer, batch_outputs, tiny_config):
    images, _, _, batched = batch_outputs
    # Sample 0 alone: same image and text as sample 0 of the batch.
    ids0, mask0 = tokenizer(TEXTS[:1])
    with torch.no_grad():
        alone = tiny_model(images[:1], ids0, mask0)
    _assert_outputs_close(alone, batched.select(0))

    # A batch with a different second image and a (longer) different second text.
    other_img = _images(1, tiny_config.image_size, seed=7)
    ids, mask = tokenizer([TEXTS[0], "two people standing near the big white car over there"])
    assert ids.shape[1] > ids0.shape[1]
    with torch.no_grad():
        other = tiny_model(torch.cat([images[:1], other_img]), ids, mask)
    _assert_outputs_close(alone, other.select(0))


def test_padding_invariance(tiny_model, tokenizer, batch_outputs):
    images, _, _, _ = batch_outputs
    ids, mask = tokenizer(["dog"])
    pad = 6
    ids_p = torch.cat([ids, torch.zeros(1, pad, dtype=ids.dtype)], 1)
    mask_p = torch.cat([mask, torch.zeros(1, pad, dtype=mask.dtype)], 1)
    with torch.no_grad():
        a = tiny_model(images[1:2], ids, mask)
        b = tiny_model(images[1:2], ids_p, mask_p)
    _assert_outputs_close(a, b)


def test_bool_text_mask_equals_int_mask(tiny_model, tokenizer, batch_outputs):
    images, ids, mask, out = batch_outputs
    with torch.no_grad():
        feats = tiny_model.encode_text(ids, mask)
        b = tiny_model.ground(images, feats, mask.bool())
    _assert_outputs_close(out, b, atol=1e-5)


def _mixed_targets(cfg):
    m = cfg.mask_size
    masks = torch.zeros(2, m, m)
    masks[0, : m // 2, : m // 2] = 1
    masks[1, m // 2 :, m // 2 :] = 1
    return [
        {"boxes": torch.zeros(0, 4), "masks": torch.zeros(0, m, m), "union": torch.zeros(m, m)},
        {"boxes": torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]]), "masks": masks,
         "union": masks.amax(0)},
    ]


def test_gradients_reach_trainable_modules_not_frozen_text(tiny_model, batch_outputs, tiny_config):
    images, ids, mask, _ = batch_outputs
    model = copy.deepcopy(tiny_model).train()
    out = model(images, ids, mask)
    loss = grounding_loss(out, _mixed_targets(tiny_config))["loss"]
    loss.backward()
    for name in ("backbone", "text_proj", "neck", "pixel_decoder", "query_selection", "decoder", "heads"):
        params = list(getattr(model, name).parameters())
        assert params and all(p.requires_grad for p in params), name
        grads = [p.grad for p in params if p.grad is not None]
        assert grads, f"no gradient reached {name}"
        assert all(torch.isfinite(g).all() for g in grads), name
        assert any(g.abs().sum() > 0 for g in grads), f"only zero gradients in {name}"
    text_params = list(model.text_encoder.parameters())
    assert text_params
    assert all(not p.requires_grad and p.grad is None for p in text_params)
    # The frozen text encoder stays in eval mode (no dropout) even in a training model.
    assert not model.text_encoder.bert.training


# ---- reference-point selection ---------------------------------------------------------


def _centre(idx, h, w):
    r, c = divmod(idx, w)
    return [(c + 0.5) / w, (r + 0.5) / h]


def test_select_first_point_is_argmax():
    g = torch.Generator().manual_seed(3)
    heat = torch.rand(2, 4, 5, generator=g)
    pts = select_reference_points(heat, 3, 0.003)
    assert pts.shape == (2, 3, 2)
    for b in range(2):
        idx = int(heat[b].flatten().argmax())
        assert pts[b, 0].tolist() == pytest.approx(_centre(idx, 4, 5))


def test_select_all_cells_are_distinct():
    # Constant heatmap with a huge distance weight: every cell must still be picked once.
    h, w = 3, 4
    heat = torch.zeros(1, h, w)
    pts = select_reference_points(heat, h * w, 10.0)
    cells = {(round(x * w - 0.5), round(y * h - 0.5)) for x, y in pts[0].tolist()}
    assert len(cells) == h * w


def test_select_zero_weight_is_plain_topk():
    g = torch.Generator().manual_seed(5)
    heat = torch.rand(2, 4, 6, generator=g)
    k = 7
    pts = select_reference_points(heat, k, 0.0)
    for b in range(2):
        order = torch.topk(heat[b].flatten(), k).indices.tolist()
        expected = [_centre(i, 4, 6) for i in order]
        torch.testing.assert_close(pts[b], torch.tensor(expected))


def test_select_large_weight_prefers_far_cell():
    # 1 x 5 row: cell0 = 1.0 (picked first), cell1 = 0.95 (near), cell4 = 0.90 (far).
    heat = torch.tensor([[[1.0, 0.95, 0.0, 0.0, 0.90]]])
    # w = 0: plain order 0, 1, 4.
    plain = select_reference_points(heat, 3, 0.0)[0, :, 0].tolist()
    assert plain == pytest.approx([0.5 / 5, 1.5 / 5, 4.5 / 5])
    # w = 0.1, step 1: cell1 0.95 + 0.1*1 = 1.05, cell4 0.90 + 0.1*4 = 1.30, cell2 0.2, cell3 0.3
    # -> cell4. Step 2: cell1 0.95 + 0.1*1 = 1.05, cell2 0.2, cell3 0.1 -> cell1.
    spread = select_reference_points(heat, 3, 0.1)[0]
    torch.testing.assert_close(spread, torch.tensor([[0.5 / 5, 0.5], [4.5 / 5, 0.5], [1.5 / 5, 0.5]]))


def test_select_distance_measured_in_cells():
    # 4 rows x 2 cols. (0,0) = 1.0 is picked first. A = (row0, col1) and B = (row1, col0) are
    # both 1 cell away; in normalised units A is 0.5 away and B 0.25 away.
    # In cells (documented): A 0.50 + 0.05*1 = 0.55 < B 0.51 + 0.05*1 = 0.56 -> B.
    # (Normalised distances would give A 0.525 > B 0.5225 -> A.)
    heat = torch.zeros(1, 4, 2)
    heat[0, 0, 0] = 1.0
    heat[0, 0, 1] = 0.50
    heat[0, 1, 0] = 0.51
    pts = select_reference_points(heat, 2, 0.05)
    assert pts[0, 1].tolist() == pytest.approx([0.5 / 2, 1.5 / 4])


def test_select_batch_samples_independent():
    heat = torch.zeros(2, 2, 3)
    heat[0, 1, 2] = 1.0
    heat[1, 0, 0] = 1.0
    pts = select_reference_points(heat, 1, 0.003)
    assert pts[0, 0].tolist() == pytest.approx([2.5 / 3, 1.5 / 2])
    assert pts[1, 0].tolist() == pytest.approx([0.5 / 3, 0.5 / 2])


def test_select_too_many_points_raises():
    heat = torch.rand(1, 2, 3)
    select_reference_points(heat, 6, 0.003)  # exactly h*w is fine
    with pytest.raises(ValueError):
        select_reference_points(heat, 7, 0.003)


# ---- edge-budget rewrites (README "Where the edge preset departs from DESIGN.md", the original specification) ------------


@pytest.mark.parametrize("override", [{"decoder_levels": 0}, {"decoder_levels": 5}, {"mask_dim": 30}])
def test_config_rejects_bad_level_settings(override):
    with pytest.raises(ValueError, match=next(iter(override))):
        get_preset("edge-tiny", **override)


def test_upfuse_equals_conv_over_concatenation():
    """The split 1x1 convolution (coarse half before the upsampling) is the same function as
    GN -> GELU of one 1x1 convolution over [upsample(x) ; skip]."""
    from torch.nn import functional as F

    from instancevg.modeling.pixel_decoder import _UpFuse

    torch.manual_seed(0)
    step = _UpFuse(16, 8, 8).eval()
    x, skip = torch.randn(2, 16, 5, 7), torch.randn(2, 8, 10, 14)
    w = torch.cat([step.from_coarse.weight, step.from_skip.weight], dim=1)
    up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
    expected = step.refine(F.gelu(step.norm(F.conv2d(torch.cat([up, skip], dim=1), w))))
    torch.testing.assert_close(step(x, skip), expected, rtol=1e-5, atol=1e-5)


def test_modulation_gate_equals_key_convolution():
    """The folded gate <x, W s + b> equals the text-pixel similarity <W^T x, s> of a 1x1 key
    convolution over the pixels, plus <x, b>."""
    from instancevg.modeling.fusion import LanguageGuidedModulation

    torch.manual_seed(0)
    mod = LanguageGuidedModulation(8, 12).eval()
    torch.nn.init.normal_(mod.film.weight, std=0.1)
    x, s = torch.randn(2, 8, 6, 6), torch.randn(2, 12)
    gamma, beta = mod.film(s)[:, :, None, None].chunk(2, dim=1)
    xm = x * (1 + gamma) + beta
    keys = torch.einsum("cd,bchw->bdhw", mod.key.weight, xm)  # 1x1 key conv over pixels, (B, d, H, W)
    sim = (keys * s[:, :, None, None]).sum(1, keepdim=True)  # text-pixel similarity
    sim = sim + torch.einsum("bchw,c->bhw", xm, mod.key.bias).unsqueeze(1)
    gate = torch.sigmoid(sim * mod.scale)
    torch.testing.assert_close(mod(x, s), mod.norm(xm + xm * gate), rtol=1e-5, atol=1e-5)


def test_bf16_autocast_keeps_boxes_scores_and_points_float32(tiny_model):
    """Under bf16 autocast (the CPU training default where AVX-512 BF16 exists) the box, class,
    existence and reference-point outputs stay float32; outside autocast nothing changes."""
    torch.manual_seed(0)
    images = torch.randn(2, 3, tiny_model.config.image_size, tiny_model.config.image_size)
    ids = torch.randint(1000, 2000, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.long)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = tiny_model(images, ids, mask)
    for key in ("pred_boxes", "pred_logits", "existence", "reference_points", "scores", "heatmap"):
        assert getattr(out, key).dtype == torch.float32, key
    assert all(a.pred_boxes.dtype == torch.float32 for a in out.aux_outputs)
    assert out.pixel_embed.dtype == torch.bfloat16  # the trunk did run in bf16
    with torch.no_grad():
        plain = tiny_model(images, ids, mask)
    assert plain.pixel_embed.dtype == plain.pred_masks.dtype == torch.float32
