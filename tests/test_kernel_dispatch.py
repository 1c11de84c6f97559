"""Choosing between Triton kernels and references: environment variable, config flag,
export tracing, and the whole model with either backend."""
from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from instancevg.config import get_preset
from instancevg.kernels import dispatch
from instancevg.kernels.msda import op as msda_op
from instancevg.kernels.msda import triton as msda_triton
from instancevg.kernels.dispatch import BACKEND_ENV, resolve_backend

CPU = torch.device("cpu")


def test_auto_picks_reference_on_cpu(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert resolve_backend("auto", CPU) == "reference"
    assert resolve_backend("reference", CPU) == "reference"


def test_auto_picks_triton_on_cuda_when_installed(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    monkeypatch.setattr(dispatch, "triton_available", lambda: True)
    assert resolve_backend("auto", torch.device("cuda")) == "triton"
    monkeypatch.setattr(dispatch, "triton_available", lambda: False)
    assert resolve_backend("auto", torch.device("cuda")) == "reference"


def test_environment_overrides_config(monkeypatch):
    monkeypatch.setattr(dispatch, "triton_available", lambda: True)
    monkeypatch.setenv(BACKEND_ENV, "reference")
    assert resolve_backend("triton", torch.device("cuda")) == "reference"
    monkeypatch.setenv(BACKEND_ENV, "triton")
    assert resolve_backend("reference", torch.device("cuda")) == "triton"
    monkeypatch.setenv(BACKEND_ENV, "auto")
    assert resolve_backend("reference", torch.device("cuda")) == "reference"


def test_unknown_names_raise(monkeypatch):
    monkeypatch.setenv(BACKEND_ENV, "cuda")
    with pytest.raises(ValueError, match=BACKEND_ENV):
        resolve_backend("auto", CPU)
    monkeypatch.delenv(BACKEND_ENV)
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("fast", CPU)
    with pytest.raises(ValueError, match="ModelConfig.kernels"):
        get_preset("edge-tiny", kernels="fast")


def test_forced_triton_where_it_cannot_run_raises(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    monkeypatch.setattr(dispatch, "INTERPRETING", False)
    monkeypatch.setattr(dispatch, "triton_available", lambda: True)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        resolve_backend("triton", CPU)
    monkeypatch.setattr(dispatch, "triton_available", lambda: False)
    with pytest.raises(RuntimeError, match="not installed"):
        resolve_backend("triton", torch.device("cuda"))


def test_tracing_always_uses_the_reference(monkeypatch, tiny_model):
    """Even with Triton forced, a trace (what ONNX export does) never calls the kernel."""
    monkeypatch.setenv(BACKEND_ENV, "triton")
    monkeypatch.setattr(dispatch, "triton_available", lambda: True)
    monkeypatch.setattr(dispatch, "INTERPRETING", True)

    def fail(*args, **kwargs):
        raise AssertionError("the Triton kernel was called while tracing")

    monkeypatch.setattr(msda_op, "ms_deform_attn_triton", fail)  # what the op dispatches to
    decoder = tiny_model.decoder
    cfg = tiny_model.config
    feats = [torch.randn(1, cfg.d_model, s, s) for s in (8, 4, 2, 1)[4 - cfg.decoder_levels:]]
    args = (torch.randn(1, cfg.num_queries, cfg.d_model), torch.rand(1, cfg.num_queries, 2), feats,
            torch.randn(1, 3, cfg.d_model), torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(AssertionError, match="was called"):
        decoder(*args)  # outside a trace the forced kernel is used
    with torch.no_grad():
        traced = torch.jit.trace(decoder, args, check_trace=False, strict=False)
    assert traced(*args)[-1].shape == (1, cfg.num_queries, cfg.d_model)


@pytest.mark.skipif(
    not msda_triton.triton_available() or not (msda_triton.INTERPRETING or torch.cuda.is_available()),
    reason="Triton kernels need Triton plus CUDA or TRITON_INTERPRET=1 (set by .ci/run)",
)
def test_model_with_triton_kernels_matches_reference(monkeypatch, tiny_model, tokenizer):
    """Forward outputs and parameter gradients of the tiny model agree across backends."""
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    torch.manual_seed(1)
    size = tiny_model.config.image_size
    images = torch.randn(2, 3, size, size)
    ids, mask = tokenizer(["the red circle", "all blue squares left of the star"])
    # At initialisation the sampling offsets are integers and reference points are cell centres,
    # so some points sit exactly on pixel centres, where bilinear sampling has a kink and the
    # two implementations may legitimately take different one-sided derivatives. Random offset
    # weights move them off the kinks.
    base = copy.deepcopy(tiny_model)
    with torch.no_grad():
        for layer in base.decoder.layers:
            layer.cross_attn.sampling_offsets.weight.normal_(0.0, 0.05)
            layer.cross_attn.attention_weights.weight.normal_(0.0, 0.05)
    results = {}
    for backend in ("reference", "triton"):
        model = copy.deepcopy(base)
        model.config = replace(model.config, kernels=backend)
        for module in model.modules():
            if hasattr(module, "kernels"):
                module.kernels = backend
        out = model(images, ids, mask)
        loss = out.pred_boxes.sum() + out.pred_logits.logsumexp(-1).sum()
        loss.backward()
        grad = model.decoder.layers[0].cross_attn.sampling_offsets.weight.grad.clone()
        results[backend] = (out.pred_boxes.detach(), out.pred_masks.detach(), grad)
    for name, ref, ker in zip(("boxes", "masks", "grad"), results["reference"], results["triton"]):
        rel = ((ref - ker).norm() / ref.norm()).item()
        assert rel <= 1e-4, name
    assert results["reference"][2].abs().sum() > 0  # the gradient path through MSDeformAttn is live
