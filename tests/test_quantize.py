"""INT8 Q/DQ quantization of a bundle: graph structure, defaults kept in float, manifest,
runtime compatibility and argument errors."""
import json

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="quantization needs onnx (pip install -e '.[test]')")
pytest.importorskip("onnxruntime", reason="quantization needs onnxruntime (pip install -e '.[test]')")

from instancevg.export import quantize
from instancevg.runtime import Grounder
from instancevg.runtime.bundle import sha256_file

from instancevg.data.generators.procedural import render_sample


@pytest.fixture(scope="module")
def int8_bundle(tiny_bundle, tmp_path_factory):
    return quantize.quantize_bundle(tiny_bundle, tmp_path_factory.mktemp("int8") / "tiny-int8", n_calib=8,
                                    allow_few=True)


def _dq_fed(model):
    """Names of nodes with at least one input produced by a DequantizeLinear node."""
    dq_out = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return {n.name for n in model.graph.node if any(i in dq_out for i in n.input)}, dq_out


def test_qdq_graph_keeps_attention_norm_softmax_float(int8_bundle, tiny_bundle):
    model = onnx.load(str(int8_bundle / "grounder.onnx"))
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("DequantizeLinear") > 0
    fed, dq_out = _dq_fed(model)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    stem = [n for n in convs if n.input[1] in quantize.SENSITIVE_CONV_WEIGHTS]
    assert len(stem) == len(quantize.SENSITIVE_CONV_WEIGHTS), "the backbone's first convolutions were not found"
    assert not any(n.name in fed for n in stem), "a backbone stem / first-block convolution was quantized"
    assert len(convs) > len(stem) and all(n.name in fed for n in convs if n not in stem)
    for n in model.graph.node:
        if n.op_type in ("LayerNormalization", "Softmax"):
            assert not any(i in dq_out for i in n.input), f"{n.op_type} {n.name} reads a dequantized tensor"
    fp32 = onnx.load(str(tiny_bundle / "grounder.onnx"))
    attention = quantize.attention_matmuls(fp32)
    assert attention, "the grounder has attention MatMuls"
    by_name = {n.name: n for n in model.graph.node}
    for name in attention:
        assert not any(i in dq_out for i in by_name[name].input), f"attention MatMul {name} was quantized"


def _dq_readers_outside(model, op_types=("Conv", "MatMul", "Gemm")):
    """Op types of nodes outside ``op_types`` that read a dequantized tensor: an output Q/DQ, or
    the input Q/DQ of a quantized op that ONNX Runtime shares with that tensor's other readers."""
    fed, _ = _dq_fed(model)
    return {n.op_type for n in model.graph.node if n.name in fed and n.op_type not in op_types}


def test_int8_puts_qdq_on_inputs_only_as_tensorrt_recommends(int8_bundle, tiny_bundle, tmp_path):
    # A Q/DQ on a convolution's output would round its whole pre-activation range to 8 bits before
    # the ReLU6 / Clip that follows (the backbone lost most of its levels that way).
    model = onnx.load(str(int8_bundle / "grounder.onnx"))
    fed, _ = _dq_fed(model)
    assert "Clip" not in _dq_readers_outside(model), "int8 form rounds convolution outputs before their ReLU6"
    assert any(n.op_type == "Conv" and n.name in fed for n in model.graph.node)
    assert json.loads((int8_bundle / "manifest.json").read_text())["quantization"]["qdq_placement"] == "inputs only"
    out = quantize.quantize_bundle(tiny_bundle, tmp_path / "q", n_calib=4, allow_few=True, quantize_outputs=True)
    assert "Clip" in _dq_readers_outside(onnx.load(str(out / "grounder.onnx")))
    assert json.loads((out / "manifest.json").read_text())["quantization"]["qdq_placement"] == "inputs and outputs"


def test_uint8_form_runs_as_qlinear_convs_without_qlinear_add(tiny_bundle, tmp_path, ort_optimized_ops):
    # The uint8 form exists so that ONNX Runtime's x86-64 CPU provider fuses the Q/DQ pairs into
    # QLinearConv kernels. Add stays float by default (a float Conv fuses its residual Add).
    out = quantize.quantize_bundle(tiny_bundle, tmp_path / "q", n_calib=4, allow_few=True, activation_type="uint8")
    q = json.loads((out / "manifest.json").read_text())["quantization"]
    assert q["op_types"] == list(quantize.ORT_CPU_OP_TYPES) and "Add" not in q["op_types"]
    assert q["activations"].startswith("uint8") and q["qdq_placement"] == "inputs and outputs"
    ops = ort_optimized_ops(out / "grounder.onnx")
    assert ops.count("QLinearConv") > 0, "ONNX Runtime did not fuse the uint8 Q/DQ convolutions"
    with_add = quantize.quantize_bundle(tiny_bundle, tmp_path / "a", n_calib=4, allow_few=True,
                                        activation_type="uint8", op_types=quantize.ORT_CPU_OP_TYPES + ("Add",))
    # ORT still fuses an Add that sits between two quantized tensors; the others stay float
    assert ops.count("QLinearAdd") < ort_optimized_ops(with_add / "grounder.onnx").count("QLinearAdd")


def test_int8_manifest_and_text_encoder_unchanged(int8_bundle, tiny_bundle):
    m = json.loads((int8_bundle / "manifest.json").read_text())
    assert m["precision"] == "int8" and m["quantization"]["format"] == "QDQ"
    assert m["quantization"]["calibration"]["samples"] == 8
    assert m["quantization"]["biases"] == "float"  # TensorRT's DequantizeLinear takes no INT32
    model = onnx.load(str(int8_bundle / "grounder.onnx"))
    dq_types = {i.data_type for i in model.graph.initializer
                if i.name in {n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}}
    assert onnx.TensorProto.INT32 not in dq_types and onnx.TensorProto.INT8 in dq_types
    for name, entry in m["files"].items():
        assert entry["sha256"] == sha256_file(int8_bundle / name)
    assert sha256_file(int8_bundle / "text_encoder.onnx") == sha256_file(tiny_bundle / "text_encoder.onnx")


def test_int8_runs_in_runtime_close_to_fp32(int8_bundle, tiny_bundle):
    frame = cv2.cvtColor(render_sample(0, 5, "test").image, cv2.COLOR_RGB2BGR)
    texts = ["the red circle", "all squares"]
    g32 = Grounder.from_bundle(tiny_bundle, backend="onnxruntime")
    g8 = Grounder.from_bundle(int8_bundle, backend="onnxruntime")
    results = g8.ground(frame, texts)
    assert len(results) == 2 and all(np.isfinite(r.extra["all_scores"]).all() for r in results)
    image, t = g32.encode_image(frame).maps, g32.encode_text(texts)
    a = g32.backend.ground(image, t.features, t.mask)  # one image for both expressions, as the runtime sends
    b = g8.backend.ground(image, t.features, t.mask)
    # The untrained tiny model is quantization-sensitive and picks its queries by argmax over a
    # near-flat heatmap (so boxes may jump between cells): compare the mask-logit maps'
    # structure instead; broken scales or a wrong graph give correlations near 0. The backbone's
    # first convolutions stay in float by default (quantize.SENSITIVE_CONV_WEIGHTS); quantizing
    # them too (--quantize-stem) lowers the instance-mask correlation to about 0.6 here.
    for key, floor in (("global_mask_logits", 0.9), ("instance_mask_logits", 0.75)):
        corr = np.corrcoef(a[key].ravel(), b[key].ravel())[0, 1]
        assert corr > floor, f"{key}: INT8 vs FP32 correlation {corr:.3f}"


def test_quantize_stem_flag_quantizes_every_conv(tiny_bundle, tmp_path, int8_bundle):
    out = quantize.quantize_bundle(tiny_bundle, tmp_path / "q", n_calib=4, allow_few=True, quantize_stem=True)
    model = onnx.load(str(out / "grounder.onnx"))
    fed, _ = _dq_fed(model)
    assert all(n.name in fed for n in model.graph.node if n.op_type == "Conv")
    assert json.loads((out / "manifest.json").read_text())["quantization"]["float_conv_weights"] == []
    default = json.loads((int8_bundle / "manifest.json").read_text())["quantization"]
    assert default["float_conv_weights"] == list(quantize.SENSITIVE_CONV_WEIGHTS)


def test_sensitive_convs_found_by_weight_name_or_a_clear_error():
    from onnx import TensorProto, helper

    w = helper.make_tensor("other.weight", TensorProto.FLOAT, [1, 1, 1, 1], [1.0])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, 2])
    graph = helper.make_graph([helper.make_node("Conv", ["x", "other.weight"], ["y"], name="c")], "g", [x], [y], [w])
    with pytest.raises(ValueError, match="--quantize-stem"):
        quantize.sensitive_convs(helper.make_model(graph))
    graph.initializer[0].name = graph.node[0].input[1] = quantize.SENSITIVE_CONV_WEIGHTS[2]
    assert quantize.sensitive_convs(helper.make_model(graph)) == ["c"]


def test_quantize_attention_flag_quantizes_more_matmuls(tiny_bundle, tmp_path, int8_bundle):
    out = quantize.quantize_bundle(tiny_bundle, tmp_path / "q", n_calib=4, allow_few=True, quantize_attention=True)
    fed_all, _ = _dq_fed(onnx.load(str(out / "grounder.onnx")))
    fed_default, _ = _dq_fed(onnx.load(str(int8_bundle / "grounder.onnx")))
    attention = set(quantize.attention_matmuls(onnx.load(str(tiny_bundle / "grounder.onnx"))))
    assert attention & fed_all and not attention & fed_default


def test_quantize_argument_errors(tiny_bundle, int8_bundle, tmp_path):
    with pytest.raises(ValueError, match="at least 200"):
        quantize.quantize_bundle(tiny_bundle, tmp_path / "a", n_calib=10)
    with pytest.raises(ValueError, match="test split"):
        quantize.quantize_bundle(tiny_bundle, tmp_path / "b", n_calib=4, allow_few=True, calib_split="test")
    with pytest.raises(ValueError, match="op_types is empty"):
        quantize.quantize_bundle(tiny_bundle, tmp_path / "f", n_calib=4, allow_few=True, op_types=())
    with pytest.raises(ValueError, match="method"):
        quantize.quantize_bundle(tiny_bundle, tmp_path / "c", n_calib=4, allow_few=True, method="magic")
    assert quantize.main(["--bundle", str(int8_bundle), "--out", str(tmp_path / "d")]) == 2
    assert quantize.main(["--bundle", str(tmp_path / "none"), "--out", str(tmp_path / "e")]) == 2
    assert not any((tmp_path / x).exists() for x in "abcde")
