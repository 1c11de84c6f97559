"""The GELU reordering pass of the ONNX export: what it rewrites, what it leaves alone, that it
keeps the graph's function, and that ONNX Runtime then fuses the GELUs."""
import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="the export pass needs onnx (pip install -e '.[test]')")
ort = pytest.importorskip("onnxruntime", reason="the fusion check needs onnxruntime (pip install -e '.[test]')")
from instancevg.export.gelu_rewrite import reorder_gelu_for_onnxruntime
from onnx import TensorProto, helper


def _exported_mlp(tmp_path) -> "onnx.ModelProto":
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 8), torch.nn.GELU())
    path = tmp_path / "mlp.onnx"
    torch.onnx.export(net.eval(), (torch.randn(4, 16),), str(path), dynamo=True, opset_version=18,
                      input_names=["x"], verbose=False)
    return onnx.load(str(path)), net


def _session(model, level):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def test_exported_gelus_are_reordered_and_fused(tmp_path, ort_optimized_ops):
    model, net = _exported_mlp(tmp_path)
    original = onnx.ModelProto.FromString(model.SerializeToString())
    before = ort_optimized_ops(original)
    assert "Gelu" not in before and "BiasGelu" not in before
    assert reorder_gelu_for_onnxruntime(model) == 2
    onnx.checker.check_model(model, full_check=True)
    ops = ort_optimized_ops(model)
    assert "Erf" not in ops and ops.count("Gelu") + ops.count("BiasGelu") == 2
    x = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32) * 3
    plain = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    before = _session(original, plain).run(None, {"x": x})[0]
    after = _session(model, plain).run(None, {"x": x})[0]
    np.testing.assert_array_equal(after, before)  # x * (0.5 * a) == (x * a) * 0.5 exactly
    fused = _session(model, ort.GraphOptimizationLevel.ORT_ENABLE_ALL).run(None, {"x": x})[0]
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(fused, ref, rtol=1e-5, atol=1e-5)
    assert reorder_gelu_for_onnxruntime(model) == 0, "a second pass must find nothing left"


def _gelu_graph(half=0.5, add_output_read_twice=False):
    """x -> Div(sqrt2) -> Erf -> Add(1) -> Mul(half) -> Mul(x), written by hand."""
    const = [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in
             (("c_sqrt2", 2 ** 0.5), ("c_one", 1.0), ("c_half", half))]
    nodes = [helper.make_node("Div", ["x", "c_sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "c_one"], ["a"]), helper.make_node("Mul", ["c_half", "a"], ["m"]),
             helper.make_node("Mul", ["x", "m"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])]
    if add_output_read_twice:
        outputs.append(helper.make_tensor_value_info("a", TensorProto.FLOAT, [2]))
    graph = helper.make_graph(nodes, "gelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              outputs, const)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_only_the_exact_gelu_pattern_is_rewritten():
    assert reorder_gelu_for_onnxruntime(_gelu_graph()) == 1
    assert reorder_gelu_for_onnxruntime(_gelu_graph(half=0.6)) == 0, "not a GELU: the constant is not 0.5"
    # an intermediate read elsewhere (here: a graph output) must keep its value
    model = _gelu_graph(add_output_read_twice=True)
    before = model.SerializeToString()
    assert reorder_gelu_for_onnxruntime(model) == 0 and model.SerializeToString() == before


def test_bundle_records_and_fuses_its_gelus(tiny_bundle, ort_optimized_ops):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    for name in ("text_encoder", "grounder"):
        assert manifest["graphs"][name]["gelu_reordered"] > 0
        model = onnx.load(str(tiny_bundle / f"{name}.onnx"))
        assert reorder_gelu_for_onnxruntime(model) == 0
        assert "Erf" not in ort_optimized_ops(model), f"{name}: a GELU was left unfused"
