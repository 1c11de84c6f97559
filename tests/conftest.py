"""Shared fixtures: one tiny model and its tokenizer for the whole test session.

Building the model costs a few seconds, so it is built once. Tests must not mutate it: any
test that trains, changes its mode or accumulates gradients works on ``copy.deepcopy``.
"""

import pytest
import torch

from instancevg.config import get_preset
from instancevg.modeling.model import InstanceVGModel
from instancevg.modeling.text_encoder import TextTokenizer

# One intra-op thread: the tiny model's ops are far too small to gain from parallelism, and on a
# loaded 2-core machine OpenMP threads contending with other processes make a forward pass about
# 100x slower (seconds instead of tens of milliseconds).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_config():
    return get_preset("edge-tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_config):
    torch.manual_seed(0)
    model = InstanceVGModel(tiny_config)
    model.eval()
    return model


@pytest.fixture(scope="session")
def tokenizer(tiny_config):
    return TextTokenizer(tiny_config.max_text_len)


def _triton_param():
    from instancevg.kernels.msda.triton import INTERPRETING, triton_available

    if not triton_available():
        return pytest.param("triton", marks=pytest.mark.skip(reason="Triton is not installed"))
    if not (INTERPRETING or torch.cuda.is_available()):
        return pytest.param("triton", marks=pytest.mark.skip(
            reason="Triton kernels need CUDA or TRITON_INTERPRET=1 (set by .ci/run)"))
    return "triton"


@pytest.fixture(params=["reference", _triton_param()])
def kernel_backend(request):
    """Each kernel backend in turn; Triton runs on the CPU through TRITON_INTERPRET=1."""
    return request.param


@pytest.fixture(scope="session")
def tiny_export_model(tiny_model):
    """A copy of the tiny model whose score threshold is the median score (midway between the two middle ones) on a few procedural
    test samples, so that about half the queries are kept (random weights score ~0.25) and the
    export/runtime tests compare kept instances, masks and no-target decisions, not only empty
    results."""
    import copy
    import dataclasses

    from instancevg.data.dataset import GroundingCollate, ProceduralGroundingDataset

    model = copy.deepcopy(tiny_model)
    data = ProceduralGroundingDataset(model.config, seed=0, split="test", length=4)
    batch = GroundingCollate(model.config)([data[i] for i in range(len(data))])
    with torch.no_grad():
        scores = model(batch["images"], batch["input_ids"], batch["attention_mask"]).scores
    # Midway between the two middle scores: no query sits within float noise of the threshold
    # (the median itself is one of the scores, and batch-1 runs round it either way).
    middle = scores.flatten().sort().values[scores.numel() // 2 - 1: scores.numel() // 2 + 1]
    model.config = dataclasses.replace(model.config, score_threshold=float(middle.mean()))
    return model


@pytest.fixture(scope="session")
def tiny_bundle(tiny_export_model, tmp_path_factory):
    """The tiny model exported once per session (ONNX bundle directory)."""
    pytest.importorskip("onnxruntime", reason="export tests need onnxruntime (pip install -e '.[test]')")
    from instancevg.export.export_onnx import export_bundle

    return export_bundle(tiny_export_model, tmp_path_factory.mktemp("bundle") / "tiny")


@pytest.fixture
def ort_optimized_ops(tmp_path):
    """A function: ONNX model (path or ModelProto) -> op types of the graph ONNX Runtime's CPU
    provider runs after its "extended" graph optimisations (fusions such as Gelu, QLinearConv)."""
    import onnx
    import onnxruntime as ort

    def optimized_ops(model) -> list[str]:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(tmp_path / "ort-optimized.onnx")
        source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
        ort.InferenceSession(source, so, providers=["CPUExecutionProvider"])
        return [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]

    return optimized_ops
