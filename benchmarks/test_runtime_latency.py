"""Latency of the exported model (pytest-benchmark): torch-free runtime on ONNX Runtime CPU,
text encoding, FP32 vs INT8, PyTorch eager vs ONNX Runtime, several expressions on one frame
(shared vs repeated image), and the GPU paths where present.

Bundles: ``INSTANCEVG_BUNDLE`` (FP32) and ``INSTANCEVG_BUNDLE_INT8`` name existing ones;
otherwise the shipped model is exported (~1 min) and quantized (~1 min, uint8 activations and
the ORT CPU op set, the INT8 form ONNX Runtime's x86-64 kernels run) into a temporary directory.
Threads: ``INSTANCEVG_BENCH_THREADS`` (default 2, both cores of the 2-core target; set 1 to
compare single-thread figures). Targets (2-core CPU): end-to-end FP32 <= 30 ms median with
cached text; INT8 >= 1.5x faster than FP32. Results: benchmarks/RESULTS.md.

    python -m pytest benchmarks/test_runtime_latency.py --benchmark-columns=median,iqr,rounds
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

pytest.importorskip("onnxruntime", reason="runtime benchmarks need onnxruntime")

from instancevg.runtime import Grounder

TEXT = "the white cup"
THREADS = int(os.environ.get("INSTANCEVG_BENCH_THREADS", "2"))


@pytest.fixture(scope="module")
def fp32_bundle(tmp_path_factory) -> Path:
    if os.environ.get("INSTANCEVG_BUNDLE"):
        return Path(os.environ["INSTANCEVG_BUNDLE"])
    from instancevg.export.export_onnx import export_bundle

    from instancevg.api import DEFAULT_WEIGHTS
    from instancevg.checkpoint import load_model

    return export_bundle(load_model(DEFAULT_WEIGHTS), tmp_path_factory.mktemp("bench") / "edge",
                         checkpoint=DEFAULT_WEIGHTS)


@pytest.fixture(scope="module")
def int8_bundle(fp32_bundle) -> Path:
    if os.environ.get("INSTANCEVG_BUNDLE_INT8"):
        return Path(os.environ["INSTANCEVG_BUNDLE_INT8"])
    from instancevg.export.quantize import quantize_bundle

    return quantize_bundle(fp32_bundle, fp32_bundle.parent / "edge-int8", activation_type="uint8")


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """A real photo as a 320x320 BGR camera frame (no resize inside the timed call)."""
    return cv2.resize(cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR), (320, 320),
                      interpolation=cv2.INTER_AREA)


def _grounder(bundle: Path, spinning: bool = False) -> Grounder:
    g = Grounder.from_bundle(bundle, backend="onnxruntime", threads=THREADS, spinning=spinning)
    g.encode_text(TEXT)  # cached text, as in a robot loop with a fixed instruction
    return g


@pytest.mark.benchmark(group="runtime-e2e-cpu")
def test_runtime_e2e_ort_fp32(benchmark, fp32_bundle, frame):
    """encode_image + ground (cached text), batch 1, 320x320, ONNX Runtime CPU, FP32."""
    g = _grounder(fp32_bundle)
    r = benchmark(g.ground, frame, TEXT)[0]
    assert r.union_mask.shape == (320, 320) and np.isfinite(r.extra["all_scores"]).all()


@pytest.mark.benchmark(group="runtime-e2e-cpu")
def test_runtime_e2e_ort_int8(benchmark, int8_bundle, frame):
    """Same as the FP32 case on the INT8 Q/DQ bundle."""
    g = _grounder(int8_bundle)
    r = benchmark(g.ground, frame, TEXT)[0]
    assert r.union_mask.shape == (320, 320) and np.isfinite(r.extra["all_scores"]).all()


@pytest.mark.benchmark(group="runtime-e2e-cpu-spinning")
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_runtime_e2e_ort_spinning(benchmark, request, precision, frame):
    """The two cases above with ORT's spinning worker threads (``Grounder.from_bundle(...,
    spinning=True)``), for a machine whose cores are reserved for the grounder."""
    g = _grounder(request.getfixturevalue(f"{precision}_bundle"), spinning=True)
    r = benchmark(g.ground, frame, TEXT)[0]
    assert r.union_mask.shape == (320, 320) and np.isfinite(r.extra["all_scores"]).all()


@pytest.mark.benchmark(group="text-encoding")
def test_text_encoding_uncached(benchmark, fp32_bundle):
    """Tokenize + text_encoder.onnx for one expression (cache cleared before every round)."""
    g = _grounder(fp32_bundle)

    def setup():
        g._cache.clear()

    benchmark.pedantic(g.encode_text, args=([TEXT],), setup=setup, rounds=50, warmup_rounds=3)


@pytest.mark.benchmark(group="text-encoding")
def test_text_encoding_cached(benchmark, fp32_bundle):
    g = _grounder(fp32_bundle)
    benchmark(g.encode_text, [TEXT])


@pytest.mark.benchmark(group="grounder-forward-cpu")
def test_grounder_forward_ort_fp32(benchmark, fp32_bundle, frame):
    """grounder.onnx alone (no pre/post-processing), ONNX Runtime CPU."""
    g = _grounder(fp32_bundle)
    image, t = g.encode_image(frame).maps, g.encode_text(TEXT)
    benchmark(g.backend.ground, image, t.features, t.mask)


FOUR_TEXTS = ["the white cup", "the saucer", "the spoon left of the cup", "all cups"]


@pytest.mark.benchmark(group="four-expressions-cpu")
@pytest.mark.parametrize("images", ["shared", "per-expression"])
def test_grounder_forward_four_expressions(benchmark, fp32_bundle, frame, images):
    """grounder.onnx on one frame and 4 cached expressions. ``shared``: one image, one backbone
    pass (what ``Grounder.ground`` sends); ``per-expression``: the image repeated 4 times, the
    cost of running the backbone once per expression."""
    g = _grounder(fp32_bundle)
    image, t = g.encode_image(frame).maps, g.encode_text(FOUR_TEXTS)
    if images == "per-expression":
        image = np.ascontiguousarray(np.repeat(image, len(FOUR_TEXTS), axis=0))
    out = benchmark(g.backend.ground, image, t.features, t.mask)
    assert out["scores"].shape[0] == len(FOUR_TEXTS)


@pytest.mark.benchmark(group="grounder-forward-cpu")
def test_grounder_forward_pytorch_eager(benchmark, fp32_bundle, frame):
    """The same forward in PyTorch eager (InstanceVGModel.ground, torch threads = THREADS)."""
    torch = pytest.importorskip("torch")
    from instancevg.api import DEFAULT_WEIGHTS
    from instancevg.checkpoint import load_model

    torch.set_num_threads(THREADS)
    model = load_model(DEFAULT_WEIGHTS, "cpu")
    g = _grounder(fp32_bundle)
    image, t = g.encode_image(frame).maps, g.encode_text(TEXT)
    x, f, m = torch.from_numpy(image), torch.from_numpy(t.features), torch.from_numpy(t.mask)

    def forward():
        with torch.no_grad():
            return model.ground(x, f, m)

    benchmark(forward)


def _ort_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.mark.skipif(not _ort_cuda(), reason="needs onnxruntime-gpu with CUDA: no CUDAExecutionProvider here")
@pytest.mark.benchmark(group="runtime-e2e-gpu")
def test_runtime_e2e_ort_cuda(benchmark, fp32_bundle, frame):
    g = Grounder.from_bundle(fp32_bundle, backend="onnxruntime")
    assert "CUDAExecutionProvider" in g.backend.providers
    g.encode_text(TEXT)
    benchmark(g.ground, frame, TEXT)


@pytest.mark.benchmark(group="runtime-e2e-gpu")
def test_runtime_e2e_tensorrt(benchmark, fp32_bundle, frame):
    """TensorRT engines from build_engine.py (needs TensorRT, a CUDA GPU and INSTANCEVG_BUNDLE_TRT)."""
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (no CUDA GPU on this machine)")
    path = os.environ.get("INSTANCEVG_BUNDLE_TRT")
    if not path:
        pytest.skip("set INSTANCEVG_BUNDLE_TRT to a bundle with engines (export/build_engine.py)")
    g = Grounder.from_bundle(path, backend="tensorrt")
    g.encode_text(TEXT)
    benchmark(g.ground, frame, TEXT)
