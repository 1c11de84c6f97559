"""Whole-model inference step on CUDA: eager reference vs Triton kernels vs kernels + CUDA graph.

The step is ``InstanceVGModel.ground`` on one 320 x 320 image with cached text features (what a
robot loop does once the expression is encoded), fp16 autocast, batch 1. Times are medians of
synchronised calls. Skips without CUDA, with the reason.
Run: ``python -m pytest benchmarks/test_model_cuda.py --benchmark-columns=median``.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from instancevg.kernels.msda.triton import INTERPRETING, triton_available

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or not triton_available() or INTERPRETING,
    reason="model CUDA benchmarks need a CUDA GPU and compiled Triton (not TRITON_INTERPRET)",
)


def _model(kernels: str):
    from instancevg.api import DEFAULT_WEIGHTS
    from instancevg.checkpoint import load_model

    model = load_model(DEFAULT_WEIGHTS, torch.device("cuda"))
    model.config = replace(model.config, kernels=kernels)
    for module in model.modules():
        if hasattr(module, "kernels"):
            module.kernels = kernels
    return model.eval()


def _inputs(model):
    from instancevg.modeling.text_encoder import TextTokenizer

    cfg = model.config
    ids, mask = TextTokenizer(cfg.max_text_len)(["the two red squares left of the circle"])
    ids, mask = ids.cuda(), mask.cuda()
    with torch.no_grad():
        text = model.encode_text(ids, mask)
    images = torch.randn(1, 3, cfg.image_size, cfg.image_size, device="cuda")
    return images, text, mask


def _step(model, images, text, mask):
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        return model.ground(images, text, mask)


@pytest.mark.parametrize("kernels", ["reference", "triton"])
def test_ground_eager(benchmark, kernels):
    model = _model(kernels)
    images, text, mask = _inputs(model)
    benchmark.group = "model-ground-b1-320-fp16"

    def call():
        out = _step(model, images, text, mask)
        torch.cuda.synchronize()
        return out

    out = benchmark(call)
    assert torch.isfinite(out.scores).all()


def test_ground_triton_cuda_graph(benchmark):
    model = _model("triton")
    images, text, mask = _inputs(model)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up: autotuning and allocator pools before capture
        for _ in range(3):
            _step(model, images, text, mask)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = _step(model, images, text, mask)
    eager = _step(model, images, text, mask)
    benchmark.group = "model-ground-b1-320-fp16"

    def call():
        graph.replay()
        torch.cuda.synchronize()
        return static_out

    out = benchmark(call)
    assert torch.allclose(out.scores.float(), eager.scores.float(), atol=1e-2)
