"""Latency of one `InstanceVG.ground` call with the shipped model (pytest-benchmark).

Run: ``python -m pytest benchmarks -q`` (add ``--benchmark-autosave`` to save a baseline and
``--benchmark-compare --benchmark-compare-fail=median:10%`` to fail on a regression).
"""
from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from instancevg.api import DEFAULT_WEIGHTS, InstanceVG


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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: GPU latency is measured on a GPU machine only")
def test_ground_cuda_320(benchmark):
    """End-to-end `ground` on CUDA (synchronised inside the timed call)."""
    import cv2

    gpu = InstanceVG.from_pretrained(device="cuda")
    image = cv2.resize(skimage.data.coffee(), (320, 320), interpolation=cv2.INTER_AREA)

    def call():
        r = gpu.ground(image, "the white cup")
        torch.cuda.synchronize()
        return r

    result = benchmark(call)
    assert result.union_mask.shape == (320, 320)
