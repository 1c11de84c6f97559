"""ImageNet class prior (instancevg.modeling.class_prior): the classifier it loads is
EfficientNet-Lite0's own, the prompts follow ImageNet's class order, zero gains leave a model
unchanged, only the gains train, and the prior exports inside the grounder graph."""
import copy
import dataclasses

import numpy as np
import pytest
import torch

from instancevg.modeling.class_prior import ImageNetClassPrior, imagenet_prompts, sentence_embedding, standardize
from instancevg.modeling.model import InstanceVGModel
from instancevg.modeling.text_encoder import MiniLMTextEncoder, TextTokenizer


@pytest.fixture(scope="module")
def minilm():
    return MiniLMTextEncoder(6).eval(), TextTokenizer(40)


@pytest.fixture(scope="module")
def prior(minilm):
    module = ImageNetClassPrior(320)
    module.load_pretrained(*minilm)
    return module.eval()


def test_classifier_is_efficientnets_own(prior):
    """On a 32x32 image C5 is one cell, where the per-cell classifier must equal EfficientNet-Lite0's
    pooled classifier on the same image."""
    from efficientnet_lite_pytorch import EfficientNet

    from instancevg.modeling.backbone import EfficientNetLiteBackbone, imagenet_state

    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(imagenet_state())
    net.eval()
    backbone = EfficientNetLiteBackbone(pretrained=True).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(x).softmax(-1)
        got = prior.class_probabilities(backbone(x)[3])[:, 0]
    assert got.shape == (2, 1000)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_prompts_follow_imagenet_order(prior, minilm):
    prompts = imagenet_prompts()
    assert len(prompts) == 1000 and prompts[1] == "a photo of a goldfish"
    encoder, tok = minilm
    ids, mask = tok(["the goldfish", "a school bus"])
    sim = sentence_embedding(encoder(ids, mask), mask) @ prior.class_text.t()
    assert int(sim[0].argmax()) == 1
    assert prompts[int(sim[1].argmax())] == "a photo of a school bus"
    torch.testing.assert_close(prior.class_text.norm(dim=-1), torch.ones(1000))


def test_standardize_is_per_image_and_finite_on_flat_maps():
    x = torch.stack([torch.arange(12.0).reshape(3, 4), torch.full((3, 4), 0.3)])
    z = standardize(x)
    assert torch.allclose(z[0].mean(), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(z[0].std(unbiased=False), torch.tensor(1.0), atol=1e-3)
    assert z[1].abs().max() < 1e-2  # float residue over eps, not residue / 0


def _pair(tiny_config):
    """A tiny model and the same weights with the class prior (classifier random, gains zero)."""
    torch.manual_seed(0)
    plain = InstanceVGModel(dataclasses.replace(tiny_config, pretrained_backbone=False), load_pretrained=False)
    with_prior = InstanceVGModel(dataclasses.replace(tiny_config, pretrained_backbone=False, class_prior=True),
                                 load_pretrained=False)
    missing, unexpected = with_prior.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("class_prior.") for k in missing)
    with torch.no_grad():  # a non-degenerate prior: random classifier and class embeddings
        g = torch.Generator().manual_seed(1)
        for p in (with_prior.class_prior.conv_head.weight, with_prior.class_prior.fc.weight,
                  with_prior.class_prior.class_text):
            p.copy_(torch.randn(p.shape, generator=g))
    return plain.eval(), with_prior.eval()


def test_zero_gains_leave_the_model_unchanged_and_gains_change_it(tiny_config, tokenizer):
    plain, with_prior = _pair(tiny_config)
    x = torch.randn(2, 3, tiny_config.image_size, tiny_config.image_size, generator=torch.Generator().manual_seed(2))
    ids, mask = tokenizer(["the red cube", "all circles"])
    with torch.no_grad():
        a, b = plain(x, ids, mask), with_prior(x, ids, mask)
        torch.testing.assert_close(b.scores, a.scores)
        torch.testing.assert_close(b.pred_boxes, a.pred_boxes)
        with_prior.class_prior.gains.fill_(0.3)
        c = with_prior(x, ids, mask)
    assert (c.scores - a.scores).abs().max() > 1e-3
    assert (c.heatmap - a.heatmap).abs().max() > 1e-3


def test_only_the_gains_train_and_the_classifier_stays_in_eval(tiny_config, tokenizer):
    _, model = _pair(tiny_config)
    model.train()
    assert not model.class_prior.bn.training
    trainable = [n for n, p in model.class_prior.named_parameters() if p.requires_grad]
    assert trainable == ["gains"]
    x = torch.randn(2, 3, tiny_config.image_size, tiny_config.image_size)
    ids, mask = tokenizer(["the red cube", "all circles"])
    with torch.no_grad():
        model.class_prior.gains.fill_(0.1)
    model(x, ids, mask).scores.sum().backward()
    assert model.class_prior.gains.grad is not None and model.class_prior.gains.grad.abs().sum() > 0
    running = model.class_prior.bn.running_mean.clone()
    model(x, ids, mask)
    assert torch.equal(model.class_prior.bn.running_mean, running)


def test_prior_exports_inside_the_grounder(tiny_config, tmp_path):
    pytest.importorskip("onnxruntime", reason="export needs onnxruntime (pip install -e '.[test]')")
    from instancevg.data.dataset import ProceduralGroundingDataset
    from instancevg.export.export_onnx import export_bundle
    from instancevg.export.parity import check_parity

    _, model = _pair(tiny_config)
    with torch.no_grad():
        model.class_prior.gains.fill_(0.2)
    model = copy.deepcopy(model)
    model.config = dataclasses.replace(model.config, score_threshold=0.0)
    bundle = export_bundle(model, tmp_path / "bundle")
    data = ProceduralGroundingDataset(model.config, seed=0, split="test", length=4, full_masks=True)
    report = check_parity(model, bundle, data)
    assert report["passed"], report
    import onnx

    ops = {n.op_type for n in onnx.load(str(bundle / "grounder.onnx")).graph.node}
    assert "Softmax" in ops and np.isfinite(report["max_box_diff_kept"])
