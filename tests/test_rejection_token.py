"""The GSVA-style rejection token (``ModelConfig.existence_head="rejection_token"``): it replaces
the pooled existence head, reads the image and the text, learns, loads from a file trained
without it, and exports to ONNX with the same outputs as PyTorch."""
import copy
import dataclasses

import pytest
import torch

from instancevg.checkpoint import CheckpointError, load_weights
from instancevg.config import ModelConfig
from instancevg.modeling.model import InstanceVGModel
from instancevg.training.losses import grounding_loss
from onnx_parity import assert_grounder_matches


@pytest.fixture(scope="module")
def rej_model(tiny_config):
    torch.manual_seed(1)
    cfg = dataclasses.replace(tiny_config, existence_head="rejection_token", pretrained_backbone=False)
    return InstanceVGModel(cfg).eval()


def _inputs(cfg, b=2, length=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(b, 3, cfg.image_size, cfg.image_size, generator=g)
    ids = torch.randint(1000, 20000, (b, length), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    return images, ids, torch.ones(b, length, dtype=torch.long)


def test_unknown_existence_head_is_refused():
    with pytest.raises(ValueError, match="existence_head must be one of"):
        ModelConfig(existence_head="token")


def test_token_replaces_the_pooled_head(rej_model):
    cfg = rej_model.config
    assert rej_model.pixel_decoder.existence is None and rej_model.rejection is not None
    images, ids, mask = _inputs(cfg)
    with torch.no_grad():
        out = rej_model(images, ids, mask)
    assert out.existence.shape == (2, 2) and out.existence.dtype == torch.float32
    assert out.scores.shape == (2, cfg.num_queries) and out.pred_boxes.shape == (2, cfg.num_queries, 4)
    assert out.reference_points.shape == (2, cfg.num_queries, 2)  # the token's centre point is not an instance
    present = out.existence.softmax(-1)[:, 1:2]
    torch.testing.assert_close(out.scores, out.pred_logits.softmax(-1)[..., 0] * present)


def test_token_decision_depends_on_its_query_image_and_text(rej_model):
    cfg = rej_model.config
    images, ids, mask = _inputs(cfg)
    model = copy.deepcopy(rej_model)
    with torch.no_grad():
        base = model(images, ids, mask).existence
        other_image = model(images.flip(0), ids, mask).existence
        other_text = model(images, ids.flip(0), mask).existence
        model.rejection.query.add_(1.0)
        other_query = model(images, ids, mask).existence
    for changed in (other_image, other_text, other_query):
        assert (changed - base).abs().max() > 1e-4


def test_token_learns_the_no_target_decision(rej_model):
    """A few Adam steps on one batch (one sample with a target, one without) lower the existence
    loss: gradients reach the token through the decoder."""
    cfg = rej_model.config
    model = copy.deepcopy(rej_model).train()
    images, ids, mask = _inputs(cfg)
    m = cfg.mask_size
    box_mask = torch.zeros(1, m, m)
    box_mask[0, m // 4: m // 2, m // 4: m // 2] = 1
    targets = [{"boxes": torch.tensor([[0.375, 0.375, 0.25, 0.25]]), "masks": box_mask, "union": box_mask[0]},
               {"boxes": torch.zeros(0, 4), "masks": torch.zeros(0, m, m), "union": torch.zeros(m, m)}]
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    first = None
    for _ in range(15):
        losses = grounding_loss(model(images, ids, mask), targets)
        first = float(losses["existence"]) if first is None else first
        opt.zero_grad()
        losses["loss"].backward()
        assert model.rejection.query.grad is not None and model.rejection.query.grad.abs().sum() > 0
        opt.step()
    assert float(losses["existence"]) < 0.5 * first


def test_starting_from_a_pooled_file(tiny_model, rej_model):
    """--init-from a file trained with the pooled head: the token starts fresh, the pooled head is
    dropped, every other weight is loaded; without ``partial`` it is refused."""
    model = copy.deepcopy(rej_model)
    state = tiny_model.state_dict()
    with pytest.raises(CheckpointError, match="does not fit"):
        load_weights(model, state)
    fresh, dropped = load_weights(model, state, partial=True)
    assert fresh and all(k.startswith("rejection.") for k in fresh)
    assert dropped and all(k.startswith("pixel_decoder.existence.") for k in dropped)
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items() if k in own)


def test_exports_with_the_same_outputs(rej_model, tmp_path):
    pytest.importorskip("onnxruntime", reason="export needs onnxruntime (pip install -e '.[test]')")
    from instancevg.export.export_onnx import export_bundle

    bundle = export_bundle(rej_model, tmp_path / "rej")
    assert_grounder_matches(rej_model, bundle, *_inputs(rej_model.config, b=3, length=7, seed=3))
