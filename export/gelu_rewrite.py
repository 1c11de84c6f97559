"""Reorder the exact-GELU pattern of torch's ONNX exporter into the form ONNX Runtime fuses.

``torch.onnx.export(dynamo=True)`` writes ``nn.GELU()`` (erf form) as five nodes::

    Div(x, sqrt2) -> Erf -> Add(·, 1) -> Mul(0.5, ·) -> Mul(x, ·)          = x * (0.5 * (1 + erf))

ONNX Runtime's ``GeluFusion`` (``onnxruntime/core/optimizer/gelu_fusion.cc``, level "extended")
matches the same function with the product taken the other way round::

    Div(x, sqrt2) -> Erf -> Add(·, 1) -> Mul(x, ·) -> Mul(·, 0.5)          = (x * (1 + erf)) * 0.5

and then runs one ``Gelu`` kernel (or ``BiasGelu`` with the preceding MatMul bias) instead of five.
Multiplying by 0.5 is exact in binary floating point (barring underflow to subnormals), so the
rewritten graph computes bit for bit what the exported one does; only ORT's fused kernel rounds
differently from its ``Erf`` op (about 2e-5 on the shipped grounder's mask logits). The graph
keeps only standard ONNX ops: TensorRT and other runtimes read it as before
(benchmarks/RESULTS.md has the time it saves).
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import onnx
from onnx import numpy_helper


def _scalar_constants(model: onnx.ModelProto) -> dict[str, float]:
    """Initializers and Constant-node outputs holding a single float value."""
    out = {}
    for t in model.graph.initializer:
        if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE):
            a = numpy_helper.to_array(t)
            if a.size == 1:
                out[t.name] = float(a.reshape(()))
    for n in model.graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            a = numpy_helper.to_array(n.attribute[0].t)
            if a.size == 1 and np.issubdtype(a.dtype, np.floating):
                out[n.output[0]] = float(a.reshape(()))
    return out


def reorder_gelu_for_onnxruntime(model: onnx.ModelProto) -> int:
    """Rewrite every ``Mul(x, Mul(0.5, 1 + erf(x / sqrt2)))`` in ``model`` (in place) into
    ``Mul(Mul(x, 1 + erf(x / sqrt2)), 0.5)``.

    Only the two Mul nodes' inputs change; node names, outputs and every other node stay as they
    are. A candidate is skipped unless the intermediate tensors (Div, Erf, Add and the inner Mul
    outputs) each have exactly one reader and are not graph outputs, and the constants are 1.0,
    0.5 and sqrt(2) (a ``Div``) or 1/sqrt(2) (a ``Mul``).

    Args:
        model: an ONNX model (as exported, after onnxslim).

    Returns:
        the number of GELUs rewritten.
    """
    g = model.graph
    consts = _scalar_constants(model)
    producer = {o: n for n in g.node for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for n in g.node:
        for i in n.input:
            readers[i].append(n)
    graph_outputs = {o.name for o in g.output}

    def only_reader(tensor: str, op_type: str):
        rs = readers.get(tensor, [])
        if len(rs) != 1 or tensor in graph_outputs or rs[0].op_type != op_type:
            return None
        return rs[0]

    def other_input(node: onnx.NodeProto, tensor: str) -> str | None:
        ins = list(node.input)
        if len(ins) != 2 or tensor not in ins:
            return None
        return ins[1] if ins[0] == tensor else ins[0]

    def near(name: str | None, value: float) -> bool:
        return name in consts and math.isclose(consts[name], value, rel_tol=1e-4)

    count = 0
    for erf in [n for n in g.node if n.op_type == "Erf"]:
        scale = producer.get(erf.input[0])
        if scale is None or scale.op_type not in ("Div", "Mul") or len(scale.input) != 2:
            continue
        x, c = scale.input
        if not (near(c, math.sqrt(2.0)) if scale.op_type == "Div" else near(c, 1.0 / math.sqrt(2.0))):
            continue
        if only_reader(scale.output[0], "Erf") is not erf:
            continue
        add = only_reader(erf.output[0], "Add")
        if add is None or not near(other_input(add, erf.output[0]), 1.0):
            continue
        inner = only_reader(add.output[0], "Mul")
        half = other_input(inner, add.output[0]) if inner is not None else None
        if not near(half, 0.5):
            continue
        outer = only_reader(inner.output[0], "Mul")
        if outer is None or other_input(outer, inner.output[0]) != x:
            continue
        inner.input[:] = [x, add.output[0]]
        outer.input[:] = [inner.output[0], half]
        count += 1
    return count
