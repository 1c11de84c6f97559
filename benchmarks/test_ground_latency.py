"""Latency of `InstanceVG.ground` with the shipped model, and of `ground` on a list with and without
the QRNet option `query_modulation` (pytest-benchmark).

Run: ``python -m pytest benchmarks -q`` (add ``--benchmark-autosave`` to save a baseline and
``--benchmark-compare --benchmark-compare-fail=median:10%`` to fail on a regression).
"""
from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from instancevg.api import DEFAULT_WEIGHTS, InstanceVG
from instancevg.config import get_preset
from instancevg.modeling.model import InstanceVGModel


@pytest.fixture(scope="module")
def model():
    if not DEFAULT_WEIGHTS.is_file():
        pytest.fail(f"shipped weights missing at {DEFAULT_WEIGHTS}")
    return InstanceVG.from_pretrained(device="cpu")


def test_ground_cpu_320(benchmark, model):
    """End-to-end `ground` on a 320x320 real photo (tokenize, preprocess, forward, post-process), CPU."""
    import cv2

    image = cv2.resize(skimage.data.coffee(), (320, 320), interpolation=cv2.INTER_AREA)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    result = benchmark(model.ground, image, "the white cup")
    assert result.union_mask.shape == (320, 320)
    assert np.isfinite(result.scores).all()


EXPRESSIONS = ("the white cup", "the spoon", "the saucer on the left", "every cup")


@pytest.mark.parametrize("n_texts", [1, 4])
@pytest.mark.parametrize("query_modulation", [False, True], ids=["shared-backbone", "query-modulation"])
def test_ground_list_cpu_320(benchmark, query_modulation, n_texts):
    """`ground` with a list of 1 or 4 expressions on one 320x320 photo, CPU, edge preset.

    Without the option the whole backbone runs once per frame; with `query_modulation` only the
    text-free trunk (stem to C3) is shared and the stages after C3 run once per expression, so the
    cost per extra expression grows. Weights are untrained; the score threshold is set to 1 so
    that both models keep no instance and post-process the same amount of mask.
    """
    import cv2

    torch.manual_seed(0)
    config = get_preset("edge", query_modulation=query_modulation, score_threshold=1.0)
    grounder = InstanceVG(InstanceVGModel(config, load_pretrained=False), torch.device("cpu"))
    image = cv2.resize(skimage.data.coffee(), (320, 320), interpolation=cv2.INTER_AREA)
    texts = list(EXPRESSIONS[:n_texts])
    results = benchmark(grounder.ground, image, texts, "rgb")
    assert [r.text for r in results] == texts
    assert all(r.union_mask.shape == (320, 320) and r.no_target for r in results)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: GPU latency is measured on a GPU machine only")
def test_ground_cuda_320(benchmark):
    """End-to-end `ground` on CUDA (synchronised inside the timed call)."""
    import cv2

    gpu = InstanceVG.from_pretrained(device="cuda")
    image = cv2.resize(skimage.data.coffee(), (320, 320), interpolation=cv2.INTER_AREA)

    def call():
        r = gpu.ground(image, "the white cup", channel_order="rgb")
        torch.cuda.synchronize()
        return r

    result = benchmark(call)
    assert result.union_mask.shape == (320, 320)


@pytest.mark.parametrize("backbone", ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"])
def test_ground_backbone_cpu_320(benchmark, backbone):
    """`ground` with one expression on a 320x320 photo, CPU, edge preset with the class prior, on each
    EfficientNet-Lite backbone (``ModelConfig.backbone``): the latency side of issue 26's lite1/2
    comparison. Untrained weights (the cost does not depend on them); threshold 1 so that every
    variant keeps no instance and post-processes the same amount."""
    import cv2

    torch.manual_seed(0)
    config = get_preset("edge", backbone=backbone, class_prior=True, pretrained_backbone=False, score_threshold=1.0)
    grounder = InstanceVG(InstanceVGModel(config, load_pretrained=False), torch.device("cpu"))
    image = cv2.resize(skimage.data.coffee(), (320, 320), interpolation=cv2.INTER_AREA)
    result = benchmark(grounder.ground, image, "the white cup", "rgb")
    assert result.no_target and result.union_mask.shape == (320, 320)
