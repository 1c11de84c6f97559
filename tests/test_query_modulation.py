"""QRNet-style refinement inside the backbone (``ModelConfig.query_modulation``): the refinement
itself, identity at initialisation, the split backbone, ONNX export with a shared image, and
INT8 quantization of the exported graph."""
import copy
import dataclasses

import numpy as np
import pytest
import torch

from instancevg.checkpoint import load_weights
from instancevg.modeling.model import InstanceVGModel
from instancevg.modeling.query_modulation import QueryModulation
from onnx_parity import assert_grounder_matches


@pytest.fixture(scope="module")
def qr_model(tiny_model):
    """The tiny model with the refinement on, its other weights copied, and the gates opened
    (0.7 and -0.5) so the refinement acts."""
    model = InstanceVGModel(dataclasses.replace(tiny_model.config, query_modulation=True), load_pretrained=False)
    load_weights(model, tiny_model.state_dict(), partial=True)
    with torch.no_grad():
        model.query_modulation.c3.gate.fill_(0.7)
        model.query_modulation.c4.gate.fill_(-0.5)
    return model.eval()


def _inputs(cfg, b=3, length=7, seed=0, image_batch=None):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 20000, (b, length), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    mask = torch.ones(b, length, dtype=torch.long)
    images = torch.randn(image_batch or b, 3, cfg.image_size, cfg.image_size, generator=g)
    return images, ids, mask


def test_refinement_by_hand():
    mod = QueryModulation(channels=2, d=1)
    with torch.no_grad():
        mod.channel.weight.copy_(torch.tensor([[0.0], [0.0]]))
        mod.channel.bias.copy_(torch.tensor([0.0, 100.0]))  # a_c = (0.5, 1)
        mod.key.weight.zero_()
        mod.key.bias.zero_()  # key 0 -> a_s = sigmoid(0) = 0.5 everywhere
    x = torch.tensor([[[[2.0]], [[4.0]]]])  # (1, 2, 1, 1)
    s = torch.zeros(1, 1)
    assert torch.equal(mod(x, s), x)  # gate 0: identity
    with torch.no_grad():
        mod.gate.fill_(1.0)
    # x * (1 + 1 * a_c * 0.5): channel 0 -> 2 * 1.25, channel 1 -> 4 * 1.5
    torch.testing.assert_close(mod(x, s), torch.tensor([[[[2.5]], [[6.0]]]]))


def test_identity_at_initialisation(tiny_model):
    """A model trained without the option continues exactly where it was: closed gates change nothing."""
    model = InstanceVGModel(dataclasses.replace(tiny_model.config, query_modulation=True), load_pretrained=False)
    fresh, dropped = load_weights(model, tiny_model.state_dict(), partial=True)
    assert fresh and all(k.startswith("query_modulation.") for k in fresh) and not dropped
    images, ids, mask = _inputs(tiny_model.config)
    with torch.no_grad():
        a, b = tiny_model(images, ids, mask), model.eval()(images, ids, mask)
    torch.testing.assert_close(a.scores, b.scores, atol=1e-6, rtol=0)
    torch.testing.assert_close(a.pred_masks, b.pred_masks, atol=1e-5, rtol=0)


def test_backbone_tail_depends_on_the_text(qr_model):
    images, ids, mask = _inputs(qr_model.config, b=2)
    images = images[:1].expand(2, -1, -1, -1)  # one image, two expressions
    with torch.no_grad():
        trunk = qr_model.encode_image(images)
        assert len(trunk) == 2  # C2, C3: the text-free part
        text = qr_model.text_proj(qr_model.encode_text(ids, mask)).mean(1)
        c2, c3, c4, c5 = qr_model.query_modulation(qr_model.backbone, trunk, text)
    assert torch.equal(c2[0], c2[1])
    assert (c4[0] - c4[1]).abs().max() > 1e-4 and (c5[0] - c5[1]).abs().max() > 1e-4


def test_gradients_reach_the_gates(qr_model):
    model = copy.deepcopy(qr_model).train()
    images, ids, mask = _inputs(model.config, b=2)
    out = model(images, ids, mask)
    (out.pred_masks.mean() + out.pred_boxes.sum()).backward()
    for mod in (model.query_modulation.c3, model.query_modulation.c4):
        assert mod.gate.grad is not None and mod.gate.grad.abs() > 0
        assert mod.key.weight.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def qr_bundle(qr_model, tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="export needs onnxruntime (pip install -e '.[test]')")
    from instancevg.export.export_onnx import export_bundle

    return export_bundle(qr_model, tmp_path_factory.mktemp("qr") / "qr")


@pytest.mark.parametrize("image_batch", [1, 3])
def test_exports_with_the_same_outputs(qr_model, qr_bundle, image_batch):
    """Image batch 1 (one frame, three expressions: the runtime's call) and one image per expression."""
    assert_grounder_matches(qr_model, qr_bundle, *_inputs(qr_model.config, b=3, seed=4, image_batch=image_batch))


def test_int8_quantization_keeps_the_refined_maps(qr_bundle, tmp_path):
    pytest.importorskip("onnx", reason="quantization needs onnx (pip install -e '.[test]')")
    import cv2

    from instancevg.data.generators.procedural import render_sample
    from instancevg.export import quantize
    from instancevg.runtime import Grounder

    int8 = quantize.quantize_bundle(qr_bundle, tmp_path / "qr-int8", n_calib=8, allow_few=True)
    frame = cv2.cvtColor(render_sample(0, 5, "test").image, cv2.COLOR_RGB2BGR)
    g32 = Grounder.from_bundle(qr_bundle, backend="onnxruntime")
    g8 = Grounder.from_bundle(int8, backend="onnxruntime")
    image, t = g32.encode_image(frame).maps, g32.encode_text(["the red circle", "all squares"])
    a = g32.backend.ground(image, t.features, t.mask)
    b = g8.backend.ground(image, t.features, t.mask)
    # Same floor as the plain tiny model's INT8 test (tests/test_quantize.py).
    corr = np.corrcoef(a["global_mask_logits"].ravel(), b["global_mask_logits"].ravel())[0, 1]
    assert corr > 0.9, f"INT8 vs FP32 global-mask correlation {corr:.3f}"


def test_graph_passes_the_tensorrt_operator_check(qr_bundle):
    pytest.importorskip("onnx", reason="the check reads ONNX graphs (pip install -e '.[test]')")
    from instancevg.export import trt_compat

    for report in trt_compat.check_bundle(qr_bundle):
        assert report.passed and not report.issues, trt_compat.format_report(report)
