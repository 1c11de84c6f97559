"""MagNet's Mask Grounding option (``ModelConfig.mask_grounding``): word masking, the head, its
two loss terms, training with it, and that inference and release files do not change."""
import copy
import dataclasses
import json

import pytest
import torch

from instancevg.checkpoint import load_model, load_weights, save_model
from instancevg.modeling.model import InstanceVGModel
from instancevg.modeling.mask_grounding import MaskGroundingOutput
from instancevg.training.losses import grounding_loss
from instancevg.training.mask_grounding import alignment_loss, mask_grounding_loss, mask_words, word_masking_ids

MASK, CLS, SEP, PAD = 103, 101, 102, 0


@pytest.fixture(scope="module")
def mg_model(tiny_config):
    torch.manual_seed(2)
    return InstanceVGModel(dataclasses.replace(tiny_config, mask_grounding=True, pretrained_backbone=False)).eval()


def _ids(b=4, length=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 20000, (b, length), generator=g)
    mask = torch.ones(b, length, dtype=torch.long)
    ids[:, 0] = CLS
    ids[0, 4], ids[0, 5:], mask[0, 5:] = SEP, PAD, 0  # a short expression: 3 words, then padding
    ids[1:, -1] = SEP
    return ids, mask


def test_word_masking_ids_of_minilm(tokenizer):
    assert word_masking_ids(tokenizer.tokenizer) == (MASK, (CLS, SEP, PAD))


def test_mask_words_never_touches_special_tokens_and_masks_at_least_one_word():
    ids, mask = _ids()
    for seed in range(20):
        out = mask_words(ids, mask, MASK, (CLS, SEP, PAD), torch.Generator().manual_seed(seed))
        changed = out != ids
        assert (out[changed] == MASK).all()
        assert not changed[:, 0].any() and not changed[ids == SEP].any() and not changed[mask == 0].any()
        assert (changed.sum(1) >= 1).all()
    a = mask_words(ids, mask, MASK, (CLS, SEP, PAD), torch.Generator().manual_seed(7))
    b = mask_words(ids, mask, MASK, (CLS, SEP, PAD), torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_mask_words_rate():
    ids = torch.randint(1000, 20000, (400, 30), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    out = mask_words(ids, mask, MASK, (CLS, SEP, PAD), torch.Generator().manual_seed(0), ratio=0.3)
    rate = float((out == MASK).float().mean())
    assert 0.28 < rate < 0.33  # 0.3 plus the forced word where none was drawn (0.7**30: almost never)
    with pytest.raises(ValueError, match="mask ratio"):
        mask_words(ids, mask, MASK, (CLS, SEP, PAD), torch.Generator(), ratio=0.0)


def _forward(model, b=4, seed=0, union=None):
    cfg = model.config
    ids, mask = _ids(b, seed=seed)
    masked = mask_words(ids, mask, MASK, (CLS, SEP, PAD), torch.Generator().manual_seed(seed))
    images = torch.randn(b, 3, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(seed))
    if union is None:
        union = torch.zeros(b, cfg.mask_size, cfg.mask_size)
        union[:, 4:20, 6:18] = 1
    return model(images, ids, mask, masked_input_ids=masked, target_union=union), ids, masked


def test_head_predicts_each_masked_word(mg_model):
    out, ids, masked = _forward(mg_model)
    mg = out.mask_grounding
    positions = masked != ids
    n = int(positions.sum())
    assert mg.word_logits.shape == (n, 30522) and mg.word_logits.dtype == torch.float32
    assert torch.equal(mg.word_targets, ids[positions])
    assert torch.equal(mg.word_sample, positions.nonzero()[:, 0])
    assert mg.visual.shape == mg.text.shape == (4, mg_model.config.d_model)


def test_head_reads_the_target_mask(mg_model):
    cfg = mg_model.config
    union = torch.zeros(4, cfg.mask_size, cfg.mask_size)
    union[:, :8, :8] = 1
    with torch.no_grad():
        a = _forward(mg_model, union=union)[0].mask_grounding
        b = _forward(mg_model, union=union.flip(-1))[0].mask_grounding
    assert (a.word_logits - b.word_logits).abs().max() > 1e-4
    with torch.no_grad():  # an empty mask pools nothing: the visual feature is the projection of zeros
        empty = _forward(mg_model, union=torch.zeros_like(union))[0].mask_grounding
    bias = mg_model.mask_grounding.align_visual.bias
    torch.testing.assert_close(empty.visual, bias.expand_as(empty.visual), atol=1e-6, rtol=0)
    assert (a.visual - bias).abs().max() > 1e-2


def test_masked_expressions_need_the_head(tiny_model):
    ids, mask = _ids()
    images = torch.randn(4, 3, tiny_model.config.image_size, tiny_model.config.image_size)
    with pytest.raises(ValueError, match="mask_grounding"):
        tiny_model(images, ids, mask, masked_input_ids=ids, target_union=torch.zeros(4, 8, 8))


def _mg(logits, targets, sample, visual, text):
    return MaskGroundingOutput(word_logits=logits, word_targets=targets, word_sample=sample, visual=visual, text=text)


def test_word_loss_ignores_no_target_samples():
    logits = torch.zeros(3, 5)
    logits[0, 2] = 4.0
    targets = torch.tensor([2, 1, 3])
    sample = torch.tensor([0, 1, 1])
    has_target = torch.tensor([True, False])
    base = mask_grounding_loss(_mg(logits, targets, sample, torch.zeros(2, 4), torch.zeros(2, 4)), has_target)
    # only word 0 counts: CE of logits (0, 0, 4, 0, 0) at class 2 = log(4 + e^4) - 4
    assert float(base) == pytest.approx(float(torch.log(torch.tensor(4.0) + torch.exp(torch.tensor(4.0))) - 4), abs=1e-5)
    other = logits.clone()
    other[1:] = torch.randn(2, 5)
    assert float(mask_grounding_loss(_mg(other, targets, sample, torch.zeros(2, 4), torch.zeros(2, 4)),
                                     has_target)) == pytest.approx(float(base))
    none = mask_grounding_loss(_mg(logits, targets, sample, torch.zeros(2, 4), torch.zeros(2, 4)),
                               torch.tensor([False, False]))
    assert float(none) == 0.0


def test_alignment_prefers_matched_pairs():
    eye = torch.eye(3, 8)
    matched = _mg(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), eye, eye)
    crossed = _mg(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), eye,
                  eye[[1, 2, 0]])
    all_in = torch.ones(3, dtype=torch.bool)
    # matched: each row's logits are (1/T, 0, 0) -> CE = log(1 + 2 e^(-1/T)), both directions alike
    t = 0.07
    expected = float(torch.log(1 + 2 * torch.exp(torch.tensor(-1 / t))))
    assert float(alignment_loss(matched, all_in)) == pytest.approx(expected, rel=1e-4)
    assert float(alignment_loss(crossed, all_in)) > 10
    one = torch.tensor([True, False, False])
    assert float(alignment_loss(crossed, one)) == 0.0  # no negatives


def test_loss_terms_present_and_learnable(mg_model):
    """A few Adam steps on one batch lower the masked-word loss: the head learns from the image,
    the mask and the context."""
    model = copy.deepcopy(mg_model).train()
    cfg = model.config
    m = cfg.mask_size
    union = torch.zeros(4, m, m)
    union[:, 4:20, 6:18] = 1
    box = torch.tensor([[0.375, 0.35, 0.375, 0.5]])
    targets = [{"boxes": box, "masks": union[i:i + 1], "union": union[i]} for i in range(4)]
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    first = None
    for _ in range(12):
        out = _forward(model, union=union)[0]
        losses = grounding_loss(out, targets)
        assert {"mask_grounding", "alignment"} <= set(losses)
        first = float(losses["mask_grounding"]) if first is None else first
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
    assert float(losses["mask_grounding"]) < 0.5 * first
    assert model.mask_grounding.mask_encoder[0].weight.grad.abs().sum() > 0


def test_inference_is_unchanged_and_pack_drops_the_head(mg_model, tiny_config, tmp_path):
    from instancevg.cli import main

    plain = InstanceVGModel(dataclasses.replace(tiny_config, pretrained_backbone=False)).eval()
    fresh, dropped = load_weights(plain, mg_model.state_dict(), partial=True)
    assert not fresh and dropped and all(k.startswith("mask_grounding.") for k in dropped)
    ids, mask = _ids()
    images = torch.randn(4, 3, tiny_config.image_size, tiny_config.image_size)
    with torch.no_grad():
        a, b = mg_model(images, ids, mask), plain(images, ids, mask)
    assert a.mask_grounding is None
    torch.testing.assert_close(a.scores, b.scores, atol=0, rtol=0)
    torch.testing.assert_close(a.pred_masks, b.pred_masks, atol=0, rtol=0)

    src, packed = tmp_path / "mg.safetensors", tmp_path / "packed.safetensors"
    save_model(mg_model, src)
    assert main(["pack", "--checkpoint", str(src), "--out", str(packed)]) == 0
    released = load_model(packed)
    assert released.config.mask_grounding is False and released.mask_grounding is None
    assert not [k for k in released.state_dict() if k.startswith("mask_grounding.")]


def test_trainer_runs_with_mask_grounding(tmp_path):
    from instancevg.data.make_data import make_data
    from instancevg.training.train_config import TrainConfig
    from instancevg.training.trainer import train

    data = tmp_path / "data"
    make_data(data, seed=3, n_train=0, n_val=2, n_test=0, progress=False)
    cfg = TrainConfig(data=[str(data)], out=str(tmp_path / "run"), preset="edge-tiny", steps=2, batch_size=3,
                      val_every=2, val_samples=2, ckpt_every=2, num_workers=0, warmup_steps=1, log_every=1,
                      model={"mask_grounding": True})
    train(cfg, progress=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    logged = [h for h in history if "loss" in h]
    assert len(logged) == 2 and all(h["mask_grounding"] > 0 and "alignment" in h for h in logged)
    kept = load_model(tmp_path / "run" / "checkpoints" / "step-0000002")
    assert kept.mask_grounding is not None  # the training checkpoint keeps the head (exact resume)


def test_combines_with_query_modulation(tiny_config):
    """With query modulation the backbone's C4 depends on the text; the head reads the text-free one."""
    torch.manual_seed(0)
    model = InstanceVGModel(dataclasses.replace(tiny_config, mask_grounding=True, query_modulation=True,
                                                pretrained_backbone=False)).eval()
    out, ids, masked = _forward(model)
    assert out.mask_grounding.word_logits.shape[0] == int((masked != ids).sum())
