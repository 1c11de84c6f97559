"""Static TensorRT 10 operator-compatibility check (export/trt_compat.py): the tiny bundle's
graphs, FP32 and INT8 Q/DQ, against the onnx-tensorrt 10.1-GA matrix, and hand-built graphs that
must fail. This is not an engine build: no TensorRT is involved."""
import json
import shutil

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the check needs onnx (pip install -e '.[test]')")
pytest.importorskip("onnxruntime", reason="the tiny bundle needs onnxruntime (pip install -e '.[test]')")
pytest.importorskip("onnx_graphsurgeon", reason="shape folding needs onnx-graphsurgeon (pip install -e '.[test]')")

from onnx import TensorProto, helper, numpy_helper

from instancevg.export import quantize, trt_compat
from instancevg.export.trt_compat import check_bundle, check_graph, fold_shapes
from instancevg.runtime.bundle import MANIFEST_NAME, file_entries

INT32_BIAS_DQ = "has type INT32, not in the supported types (INT8, FP8, INT4)"


@pytest.fixture(scope="module")
def int8_trt_bundle(tiny_bundle, tmp_path_factory):
    return quantize.quantize_bundle(tiny_bundle, tmp_path_factory.mktemp("trt-int8") / "tiny-int8", n_calib=4,
                                    allow_few=True)


def _errors(issues):
    return [i for i in issues if i.severity == "error"]


def _model(nodes, inputs, outputs, initializers=(), opset=18, check=True):
    """A small ONNX model; ``inputs`` / ``outputs`` are (name, elem_type, shape) triples."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
        [helper.make_tensor_value_info(*o) for o in outputs], initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if check:  # outputs given without a shape take the inferred one (the checker wants a shape field)
        inferred = {o.name: o for o in onnx.shape_inference.infer_shapes(model).graph.output}
        for o in model.graph.output:
            if not o.type.tensor_type.HasField("shape"):
                o.type.CopyFrom(inferred[o.name].type)
        onnx.checker.check_model(model, full_check=True)
    return model


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


# -- the tiny bundle -------------------------------------------------------------------------

def test_fp32_bundle_graphs_pass_and_fold(tiny_bundle):
    reports = check_bundle(tiny_bundle)
    assert sorted(r.path.name for r in reports) == ["grounder.onnx", "text_encoder.onnx"]
    for r in reports:
        assert r.passed, trt_compat.format_report(r)
        assert not r.issues, trt_compat.format_report(r)
        assert r.fold.folded and r.fold.nodes_after <= r.fold.nodes_before
        assert r.opset == 18
    grounder = next(r for r in reports if r.path.name == "grounder.onnx")
    model = onnx.load(str(grounder.path))
    ops = {n.op_type for n in model.graph.node}
    # the ops whose restrictions the check exists for are really in the graph
    assert {"GridSample", "Resize", "Range", "Gather", "LayerNormalization"} <= ops
    types = {v.name: v.type.tensor_type.elem_type
             for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    types.update({i.name: i.data_type for i in model.graph.initializer})
    index_ops = {n.op_type for n in model.graph.node if n.input and types.get(n.input[0]) == TensorProto.INT64}
    assert {"Range", "Mul", "Div"} <= index_ops and "Clip" not in index_ops  # the int64 image index


def test_int8_bundle_passes(int8_trt_bundle):
    """The INT8 Q/DQ bundle export/quantize.py writes (biases in float) is in the matrix, folded or not."""
    for fold in (False, True):
        reports = check_bundle(int8_trt_bundle, fold=fold)
        assert all(r.passed for r in reports), "\n".join(trt_compat.format_report(r) for r in reports)
    model = onnx.load(str(int8_trt_bundle / "grounder.onnx"))
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    assert any(n.op_type == "DequantizeLinear" for n in model.graph.node)


def test_int32_bias_dequantize_is_an_error(tiny_bundle, tmp_path, monkeypatch):
    """onnxruntime.quantization's own default (QuantizeBias=True) stores Conv/Gemm biases as INT32
    DequantizeLinear inputs, which TensorRT 10 does not take: the check names exactly those nodes."""
    import onnxruntime.quantization as ortq

    real = ortq.quantize_static

    def int32_bias(*args, **kwargs):
        kwargs["extra_options"] = {**(kwargs.get("extra_options") or {}), "QuantizeBias": True}
        return real(*args, **kwargs)

    monkeypatch.setattr(ortq, "quantize_static", int32_bias)
    out = quantize.quantize_bundle(tiny_bundle, tmp_path / "int8", n_calib=4, allow_few=True)
    reports = {r.path.name: r for r in check_bundle(out)}
    assert reports["text_encoder.onnx"].passed
    errors = reports["grounder.onnx"].errors
    assert errors
    for issue in errors:
        assert issue.op_type == "DequantizeLinear" and INT32_BIAS_DQ in issue.message, issue


# -- hand-built graphs that must fail (each with a passing control) ---------------------------

def _single(op, attrs=None, x_shape=(1, 2, 4, 4), opset=18, **kw):
    node = helper.make_node(op, ["x"], ["y"], **(attrs or {}))
    return _model([node], [("x", TensorProto.FLOAT, x_shape)], [("y", TensorProto.FLOAT, None)], opset=opset, **kw)


def test_op_outside_the_matrix_is_an_error():
    assert not _errors(check_graph(_single("Relu")))
    unique = helper.make_node("Unique", ["x"], ["y"])
    model = _model([unique], [("x", TensorProto.FLOAT, (5,))], [("y", TensorProto.FLOAT, None)])
    errs = _errors(check_graph(model))
    assert len(errs) == 1 and errs[0].op_type == "Unique" and "unsupported (N)" in errs[0].message
    custom = helper.make_node("FastGelu", ["x"], ["y"], domain="com.microsoft")
    graph = helper.make_graph([custom], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (5,))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (5,))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("com.microsoft", 1)])
    errs = _errors(check_graph(model))
    assert len(errs) == 1 and "plugin" in errs[0].message


def test_unsupported_op_inside_a_subgraph_is_found():
    def branch(op):
        n = helper.make_node(op, ["x"], [f"{op}_out"])
        return helper.make_graph([n], op, [], [helper.make_tensor_value_info(f"{op}_out", TensorProto.FLOAT, None)])

    def model(op):
        node = helper.make_node("If", ["c"], ["y"], then_branch=branch(op), else_branch=branch("Identity"))
        return _model([node], [("c", TensorProto.BOOL, ()), ("x", TensorProto.FLOAT, (5,))],
                      [("y", TensorProto.FLOAT, None)])

    assert not _errors(check_graph(model("Relu")))
    errs = _errors(check_graph(model("Unique")))
    assert [e.op_type for e in errs] == ["Unique"]


def test_opset_outside_9_to_20_is_an_error():
    assert not _errors(check_graph(_single("Relu", opset=20)))
    errs = _errors(check_graph(_single("Relu", opset=21)))
    assert errs and "opset 21" in errs[0].message


def _grid_sample(mode, rank=4, opset=20):
    x = (1, 2) + (4,) * (rank - 2)
    grid = (1,) + (3,) * (rank - 2) + (rank - 2,)
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], mode=mode)
    return _model([node], [("x", TensorProto.FLOAT, x), ("grid", TensorProto.FLOAT, grid)],
                  [("y", TensorProto.FLOAT, None)], opset=opset)


def test_grid_sample_mode_and_rank():
    assert not _errors(check_graph(_grid_sample("bilinear", opset=16)))  # the exporter's form (opset 18)
    assert not _errors(check_graph(_grid_sample("nearest", opset=16)))
    errs = _errors(check_graph(_grid_sample("linear")))  # opset 20 spelling: the 10.1 importer reads it as nearest
    assert len(errs) == 1 and "mode 'linear'" in errs[0].message and errs[0].source == "onnxOpImporters.cpp"
    errs = _errors(check_graph(_grid_sample("bilinear", rank=5)))
    assert any("must be 4D" in e.message and e.source == "operators.md" for e in errs)


def _qdq(x_dtype=TensorProto.INT8, zero_point=0, scale=(0.1,), axis=None):
    """Weight DQ feeding a Conv, like the INT8 bundle's."""
    np_type = helper.tensor_dtype_to_np_dtype(x_dtype)
    c = len(scale)
    w = _init("w_q", np.ones((c, 2, 1, 1), dtype=np_type))
    zp = _init("w_zp", np.full((c,) if c > 1 else (), zero_point, dtype=np_type))
    s = _init("w_s", np.asarray(scale if c > 1 else scale[0], dtype=np.float32))
    attrs = {} if axis is None else {"axis": axis}
    dq = helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_zp"], ["w"], **attrs)
    conv = helper.make_node("Conv", ["x", "w"], ["y"])
    # per-channel without an axis is checked as ONNX reads it (axis 1: 2 channels, 3 scales) and fails there
    return _model([dq, conv], [("x", TensorProto.FLOAT, (1, 2, 4, 4))], [("y", TensorProto.FLOAT, None)],
                  [w, zp, s], check=not (c > 1 and axis is None))


def test_dequantize_zero_point_and_types():
    assert not _errors(check_graph(_qdq()))
    assert not _errors(check_graph(_qdq(scale=(0.1, 0.2, 0.3), axis=0)))
    errs = _errors(check_graph(_qdq(zero_point=3)))
    assert len(errs) == 1 and "`x_zero_point` must be 0" in errs[0].message
    errs = _errors(check_graph(_qdq(TensorProto.INT32)))  # onnxruntime's quantized bias
    assert errs and INT32_BIAS_DQ in errs[0].message
    errs = _errors(check_graph(_qdq(TensorProto.UINT8)))  # the ONNX Runtime x86-64 form
    assert any("UINT8" in e.message for e in errs)
    errs = _errors(check_graph(_qdq(scale=(0.1, 0.2, 0.3))))  # per-channel without an axis
    assert any("explicit `axis`" in e.message for e in errs)
    errs = _errors(check_graph(_qdq(scale=(0.1, -0.2, 0.3), axis=0)))
    assert any("all positive" in e.message for e in errs)


def test_quantize_zero_point_must_be_zero():
    def model(zp):
        q = helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"])
        dq = helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["y"])
        return _model([q, dq], [("x", TensorProto.FLOAT, (1, 4))], [("y", TensorProto.FLOAT, None)],
                      [_init("s", np.float32(0.1)), _init("zp", np.int8(zp))])

    assert not _errors(check_graph(model(0)))
    errs = _errors(check_graph(model(-5)))
    assert {e.op_type for e in errs} == {"QuantizeLinear", "DequantizeLinear"}
    assert all("must be 0" in e.message for e in errs)


def test_quantized_type_read_by_a_float_op_is_an_error():
    q = helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"])
    cast = helper.make_node("Cast", ["xq"], ["y"], to=TensorProto.FLOAT)
    model = _model([q, cast], [("x", TensorProto.FLOAT, (1, 4))], [("y", TensorProto.FLOAT, None)],
                   [_init("s", np.float32(0.1)), _init("zp", np.int8(0))])
    errs = _errors(check_graph(model))
    assert any("quantized type INT8 is read by Cast" in e.message for e in errs)


def _image_index(clip_int64=False):
    """The grounder's image index, index = arange(B) * (Bi // B), gathering the image batch; with
    ``clip_int64`` an int64 Clip as older exports had."""
    nodes = [
        helper.make_node("Shape", ["text"], ["ts"], start=0, end=1),
        helper.make_node("Shape", ["image"], ["is"], start=0, end=1),
        helper.make_node("Squeeze", ["ts", "ax0"], ["b"]),
        helper.make_node("Squeeze", ["is", "ax0"], ["bi"]),
        helper.make_node("Range", ["zero", "b", "one"], ["r"]),
        helper.make_node("Div", ["bi", "b"], ["step"]),
        helper.make_node("Mul", ["r", "step"], ["idx0"]),
    ]
    if clip_int64:
        nodes.append(helper.make_node("Clip", ["idx0", "zero", "bi"], ["idx"]))
    else:
        nodes.append(helper.make_node("Identity", ["idx0"], ["idx"]))
    nodes.append(helper.make_node("Gather", ["image", "idx"], ["y"], axis=0))
    return _model(nodes, [("image", TensorProto.FLOAT, ("Bi", 3, 4, 4)), ("text", TensorProto.FLOAT, ("B", 5))],
                  [("y", TensorProto.FLOAT, None)],
                  [_init("zero", np.int64(0)), _init("one", np.int64(1)), _init("ax0", np.array([0], np.int64))])


def test_int64_image_index_passes_and_int64_clip_fails():
    assert not _errors(check_graph(_image_index()))
    errs = _errors(check_graph(_image_index(clip_int64=True)))
    assert len(errs) == 1 and errs[0].op_type == "Clip" and "INT64" in errs[0].message


def test_range_types_must_match():
    node = helper.make_node("Range", ["a", "b", "c"], ["y"])
    model = _model([node], [("a", TensorProto.INT32, ()), ("b", TensorProto.INT32, ()), ("c", TensorProto.INT32, ())],
                   [("y", TensorProto.INT32, None)])
    assert not _errors(check_graph(model))
    model.graph.input[2].type.tensor_type.elem_type = TensorProto.INT64  # invalid ONNX, as a hand-edit could make
    errs = _errors(check_graph(model))
    assert any("types differ" in e.message for e in errs)


def test_resize_modes():
    def model(**attrs):
        node = helper.make_node("Resize", ["x", "", "scales"], ["y"], **attrs)
        return _model([node], [("x", TensorProto.FLOAT, (1, 2, 4, 4))], [("y", TensorProto.FLOAT, None)],
                      [_init("scales", np.array([1, 1, 2, 2], np.float32))])

    assert not _errors(check_graph(model(mode="linear", coordinate_transformation_mode="half_pixel")))
    assert not _errors(check_graph(model(mode="nearest", coordinate_transformation_mode="asymmetric",
                                         nearest_mode="floor")))
    assert "mode 'cubic'" in _errors(check_graph(model(mode="cubic")))[0].message
    assert "antialias" in _errors(check_graph(model(mode="linear", antialias=1)))[0].message
    assert "tf_crop_and_resize" in _errors(check_graph(
        model(mode="linear", coordinate_transformation_mode="tf_crop_and_resize")))[0].message


def test_reduce_axes_must_be_an_initializer():
    def model(constant_axes):
        nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)]
        inits = []
        if constant_axes:
            inits.append(_init("axes", np.array([1], np.int64)))
        else:
            nodes.insert(0, helper.make_node("Shape", ["x"], ["axes"], start=0, end=1))
        return _model(nodes, [("x", TensorProto.FLOAT, (1, 4))], [("y", TensorProto.FLOAT, (1,))], inits)

    assert not _errors(check_graph(model(True)))
    errs = _errors(check_graph(model(False)))
    assert len(errs) == 1 and "must be an initializer" in errs[0].message


def test_fold_shapes_folds_static_shape_arithmetic():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Concat", ["s", "one"], ["s2"], axis=0),
             helper.make_node("Reshape", ["x", "s2"], ["y"])]
    model = _model(nodes, [("x", TensorProto.FLOAT, (2, 3))], [("y", TensorProto.FLOAT, None)],
                   [_init("one", np.array([1], np.int64))])
    report = fold_shapes(model)
    assert report.folded and report.nodes_before == 3 and report.nodes_after == 1 and report.shape_nodes_after == 0
    assert len(model.graph.node) == 3  # the input model is untouched
    dynamic = _model(nodes, [("x", TensorProto.FLOAT, ("n", 3))], [("y", TensorProto.FLOAT, None)],
                     [_init("one", np.array([1], np.int64))])
    report = fold_shapes(dynamic)
    assert report.folded and report.nodes_after == 3 and report.shape_nodes_after == 1


# -- CLI ---------------------------------------------------------------------------------------

def test_cli_exit_codes(tiny_bundle, tmp_path, capsys):
    assert trt_compat.main(["--bundle", str(tiny_bundle), "--no-fold"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(line.startswith("PASS ") and "not an engine build" in line for line in out)

    bad = tmp_path / "bad"
    shutil.copytree(tiny_bundle, bad)
    unique = helper.make_node("Unique", ["input_ids"], ["text_features"])
    model = _model([unique], [("input_ids", TensorProto.INT64, (2, 5))], [("text_features", TensorProto.INT64, None)])
    onnx.save(model, str(bad / "text_encoder.onnx"))
    manifest = json.loads((bad / MANIFEST_NAME).read_text())
    manifest["files"] = file_entries(bad)
    (bad / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert trt_compat.main(["--bundle", str(bad), "--no-fold"]) == 1
    out = capsys.readouterr().out
    assert "FAIL bad/text_encoder.onnx" in out and "Unique" in out

    assert trt_compat.main(["--bundle", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing" in err[0]
