"""Static TensorRT 10 compatibility check of a bundle's ONNX graphs, without TensorRT.

    python export/trt_compat.py --bundle BUNDLE [--bundle BUNDLE2 ...]

prints one verdict line per graph (``text_encoder.onnx``, ``grounder.onnx``), followed by one
line per kind of issue found, and exits 0 when every graph passes, 1 when a graph has an op
outside the matrix or breaks a documented restriction, 2 on bad input (a missing or invalid
bundle, an unreadable graph).

Source. The table :data:`SUPPORT` is written from the ONNX-TensorRT parser's operator support
matrix, ``docs/operators.md`` of github.com/onnx/onnx-tensorrt, branch ``10.1-GA`` (tag
``release/10.1-GA``, commit 96e781103cfc4adf4a6bb557e94bac8e693f6f4c, 2024-06-17), whose header
reads "TensorRT 10.0 supports operators in the inclusive range of opset 9 to opset 20". It is
the newest 10.x matrix available to us; later 10.x releases were not read. The table is a
faithful subset of that document: every op the bundle's graphs use, plus a few neighbours, with
its "Supported Types" and "Restrictions" columns (the document's typo "INF64" for
ConstantOfShape is read as INT64). A few checks the document does not state come from the same
commit's parser source, ``onnxOpImporters.cpp``; their issues name that file as their source:

* GridSample: the importer maps ``mode`` ``bilinear``/``nearest``/``bicubic`` (the opset-16
  spellings) and silently treats anything else, such as opset 20's ``linear``/``cubic``, as
  nearest; ``padding_mode`` must be ``zeros``/``border``/``reflection``; the grid must have the
  input's rank;
* Q/DQ: constant scales must be positive, of static shape, and per-channel scales 1-D with one
  value per channel along an explicit ``axis`` (without one the importer uses axis 0, ONNX axis
  1); a UINT8 zero point or input is rejected;
* Range: ``start``, ``limit`` and ``delta`` of one type, INT32, INT64 or FP32;
* Squeeze without ``axes``: the input shape must be static;
* shape tensors (``Reshape``/``Expand``/``Tile`` shapes, ``Slice`` starts/ends/axes/steps,
  ``ConstantOfShape`` shape, ``Resize`` sizes): INT32 or INT64 of rank <= 1.

What is checked (:func:`check_graph`), on every node of the graph, its subgraphs and local
functions:

* the op is in the matrix (default ONNX domain; an op of another domain would need a plugin);
* the dtype of every input bound to the op's first type parameter (found with ONNX shape
  inference) is in the op's "Supported Types" (Cast: also its ``to``; Constant /
  ConstantOfShape: their value); INT64 is a native type in 10.x (the 8.x note that INT64 is
  cast down to INT32 is gone), so INT64 is accepted exactly where the matrix lists it, and an
  INT64 ``Clip`` (FP only) is an error. This is what checks the grounder's image index
  ``Range(INT64) -> Mul/Div(INT64) -> Gather``;
* the documented restrictions: opset in [9, 20]; UINT8 only as a network input or output;
  INT8/INT4/FP8 ("quantized types") only as the output of a QuantizeLinear or a constant, read
  only by DequantizeLinear; DequantizeLinear input INT8/FP8/INT4 (so an INT32 bias DQ, as
  ``onnxruntime.quantization`` writes by default, is an error); Q/DQ zero points all 0;
  GridSample 4-D; Resize modes, coordinate transformations, nearest modes, aspect-ratio policy
  ``stretch``, no antialiasing, ``axes`` an iota when ``scales`` is a tensor; ``axes`` an
  initializer for Slice / Squeeze / Reduce* / Pad / CumSum (Unsqueeze: a constant tensor);
  pooling 2-D/3-D without dilation; LayerNormalization with only output ``Y``; TopK ``sorted``
  and K < 3840; Dropout not training; Constant without sparse or string values;
* with onnx-graphsurgeon (:func:`fold_shapes`): constants and static shapes fold
  (``fold_constants(error_ok=False)`` then ``cleanup``, Q/DQ nodes kept), how many nodes and
  ``Shape`` nodes remain (those of the dynamic batch / text-length axes, which TensorRT
  evaluates as shape tensors at run time), and that the folded graph passes the same check.

What is NOT checked. This is not an engine build and does not replace one: no TensorRT parser
runs, so tactic and kernel availability for the device (e.g. INT8 kernels for a layer, DLA),
whether a plugin would be needed beyond the matrix, optimization-profile shapes, memory, FP16 /
INT8 numerics and accuracy, and parser behaviour the document does not state (other than the
source-derived checks above) are not checked. Build engines with ``export/build_engine.py`` on
the target to know.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

DOC = ("onnx/onnx-tensorrt docs/operators.md, branch 10.1-GA "
       "(commit 96e781103cfc4adf4a6bb557e94bac8e693f6f4c; TensorRT 10.0/10.1 matrix)")
SOURCE_DOC = "operators.md"
SOURCE_PARSER = "onnxOpImporters.cpp"
SOURCE_FOLD = "onnx-graphsurgeon"
OPSET_RANGE = (9, 20)  # "TensorRT 10.0 supports operators in the inclusive range of opset 9 to opset 20"

F = ("FP32", "FP16", "BF16")
FI = F + ("INT32", "INT64")
FIB = FI + ("BOOL",)
QUANTIZED = frozenset({"INT8", "INT4", "FP8"})


@dataclass(frozen=True)
class OpSupport:
    """One "Y" row of the matrix.

    Attributes:
        types: the "Supported Types" column (TensorRT names: FP32, FP16, BF16, INT32, INT64,
            INT8, INT4, FP8, UINT8, BOOL), checked on the inputs bound to the op's first type
            parameter in its ONNX schema.
        restrictions: the "Restrictions" column, as written there (empty when it has none).
    """

    types: tuple[str, ...]
    restrictions: str = ""


AXES_INIT = "`axes` must be an initializer"
# A faithful subset of the matrix (docs/operators.md, 10.1-GA): the "Y" rows of every op the
# bundle's graphs use and of some neighbours. Restrictions are quoted; where the document has
# none the string is empty.
SUPPORT: dict[str, OpSupport] = {
    "Abs": OpSupport(FI),
    "Add": OpSupport(FI),
    "And": OpSupport(("BOOL",)),
    "ArgMax": OpSupport(FI),
    "ArgMin": OpSupport(FI),
    "AveragePool": OpSupport(F, "2D or 3D Pooling only. `dilations` must be empty or all ones"),
    "BatchNormalization": OpSupport(F),
    "Cast": OpSupport(FI + ("UINT8", "BOOL")),
    "CastLike": OpSupport(FI + ("UINT8", "BOOL")),
    "Ceil": OpSupport(F),
    "Clip": OpSupport(F),
    "Concat": OpSupport(FIB),
    "Constant": OpSupport(FIB, "`sparse_value`, `value_string`, and `value_strings` attributes are unsupported."),
    "ConstantOfShape": OpSupport(FIB),  # the document writes "INF64"
    "Conv": OpSupport(F),
    "ConvTranspose": OpSupport(F),
    "Cos": OpSupport(F),
    "CumSum": OpSupport(F, "`axis` must be an initializer"),
    "DepthToSpace": OpSupport(FI),
    "DequantizeLinear": OpSupport(("INT8", "FP8", "INT4"), "`x_zero_point` must be zero"),
    "Div": OpSupport(FI),
    "Dropout": OpSupport(F, "`is_traning` must be an initializer and evaluate to False."),
    "Einsum": OpSupport(F),
    "Equal": OpSupport(FI),
    "Erf": OpSupport(F),
    "Exp": OpSupport(F),
    "Expand": OpSupport(FIB),
    "Flatten": OpSupport(FIB),
    "Floor": OpSupport(F),
    "Gather": OpSupport(FIB),
    "GatherElements": OpSupport(FIB),
    "GatherND": OpSupport(FIB),
    "Gelu": OpSupport(F + ("INT8", "INT32", "INT64")),
    "Gemm": OpSupport(F),
    "GlobalAveragePool": OpSupport(F),
    "GlobalMaxPool": OpSupport(F),
    "Greater": OpSupport(FI),
    "GreaterOrEqual": OpSupport(FI),
    "GridSample": OpSupport(("FP32", "FP16"), "Input must be 4D input."),
    "GroupNormalization": OpSupport(F),
    "HardSigmoid": OpSupport(F),
    "HardSwish": OpSupport(F),
    "Identity": OpSupport(FIB),
    "If": OpSupport(FIB, "Output tensors of the two conditional branches must have the same rank and must have "
                         "different names"),
    "InstanceNormalization": OpSupport(F),
    "IsInf": OpSupport(F),
    "IsNaN": OpSupport(FI),
    "LayerNormalization": OpSupport(F, "Only the first output `Y` is supported."),
    "LeakyRelu": OpSupport(F),
    "Less": OpSupport(FI),
    "LessOrEqual": OpSupport(FI),
    "Log": OpSupport(F),
    "MatMul": OpSupport(F),
    "Max": OpSupport(FI),
    "MaxPool": OpSupport(F, "2D or 3D pooling only. `Indices` output tensor unsupported. `dilations` must be "
                            "empty or all ones"),
    "Min": OpSupport(FI),
    "Mod": OpSupport(FI),
    "Mul": OpSupport(FI),
    "Neg": OpSupport(FI),
    "Not": OpSupport(("BOOL",)),
    "Or": OpSupport(("BOOL",)),
    "Pad": OpSupport(FI, AXES_INIT),
    "Pow": OpSupport(F),
    "QuantizeLinear": OpSupport(F, "`y_zero_point` must be 0"),
    "Range": OpSupport(FI),
    "Reciprocal": OpSupport(F),
    "ReduceL1": OpSupport(FI, AXES_INIT),
    "ReduceL2": OpSupport(FI, AXES_INIT),
    "ReduceMax": OpSupport(FI, AXES_INIT),
    "ReduceMean": OpSupport(FI, AXES_INIT),
    "ReduceMin": OpSupport(FI, AXES_INIT),
    "ReduceProd": OpSupport(FI, AXES_INIT),
    "ReduceSum": OpSupport(FI, AXES_INIT),
    "ReduceSumSquare": OpSupport(FI, AXES_INIT),
    "Relu": OpSupport(FI),
    "Reshape": OpSupport(FIB),
    "Resize": OpSupport(F, "Supported resize transformation modes: `half_pixel`, `pytorch_half_pixel`, "
                           "`tf_half_pixel_for_nn`, `asymmetric`, and `align_corners`. Supported resize modes: "
                           "`nearest`, `linear`. Supported nearest modes: `floor`, `ceil`, `round_prefer_floor`, "
                           "`round_prefer_ceil`. Supported aspect ratio policy: `stretch`. When `scales` is a tensor "
                           "input, `axes` must be an iota vector of length rank(input). Antialiasing is not "
                           "supported."),
    "Round": OpSupport(F),
    "ScatterElements": OpSupport(FI),
    "ScatterND": OpSupport(FI, "`reduction` is not supported"),
    "Shape": OpSupport(FIB),
    "Sigmoid": OpSupport(F),
    "Sign": OpSupport(FI),
    "Sin": OpSupport(F),
    "Size": OpSupport(FIB),
    "Slice": OpSupport(FIB, AXES_INIT),
    "Softmax": OpSupport(F),
    "Softplus": OpSupport(F),
    "Split": OpSupport(FIB),
    "Sqrt": OpSupport(F),
    "Squeeze": OpSupport(FIB, AXES_INIT),
    "Sub": OpSupport(FI),
    "Sum": OpSupport(FI),
    "Tanh": OpSupport(F),
    "Tile": OpSupport(FIB),
    "TopK": OpSupport(FI, "`sorted` must be 1. `K` input must be less than 3840."),
    "Transpose": OpSupport(FIB),
    "Trilu": OpSupport(FIB),
    "Unsqueeze": OpSupport(FIB, "`axes` must be a constant tensor"),
    "Where": OpSupport(FIB),
    "Xor": OpSupport(("BOOL",)),
}

# Some "N" rows of the same matrix (ops the parser does not import), for a precise message.
UNSUPPORTED = frozenset({
    "AffineGrid", "Bernoulli", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor", "Col2Im",
    "Compress", "ConcatFromSequence", "ConvInteger", "DFT", "Det", "DynamicQuantizeLinear", "ImageDecoder",
    "MatMulInteger", "MaxRoiPool", "MaxUnpool", "Multinomial", "NegativeLogLikelihoodLoss", "Optional",
    "OptionalGetElement", "OptionalHasElement", "QLinearConv", "QLinearMatMul", "RegexFullMatch", "STFT",
    "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength",
    "SequenceMap", "SoftmaxCrossEntropyLoss", "SplitToSequence", "StringConcat", "StringNormalizer", "StringSplit",
    "TfIdfVectorizer", "Unique",
})

# ONNX element type -> TensorRT type name used by the matrix.
TRT_TYPE = {
    TensorProto.FLOAT: "FP32", TensorProto.FLOAT16: "FP16", TensorProto.BFLOAT16: "BF16",
    TensorProto.INT32: "INT32", TensorProto.INT64: "INT64", TensorProto.INT8: "INT8", TensorProto.UINT8: "UINT8",
    TensorProto.BOOL: "BOOL", TensorProto.DOUBLE: "DOUBLE", TensorProto.FLOAT8E4M3FN: "FP8",
    TensorProto.INT4: "INT4",
}

# Inputs read as TensorRT shape tensors: (op, input index) -> must be INT32/INT64 of rank <= 1.
SHAPE_INPUTS = {"Reshape": (1,), "Expand": (1,), "Tile": (1,), "ConstantOfShape": (0,), "Slice": (1, 2, 3, 4),
                "Resize": (3,)}
# Where the axes input sits (opset >= 13 / 18 forms) for the ops whose axes must be constant.
AXES_INPUT = {"Slice": 3, "Squeeze": 1, "Unsqueeze": 1, "Pad": 3, "CumSum": 1,
              **{op: 1 for op in SUPPORT if op.startswith("Reduce")}}
GRID_SAMPLE_MODES = ("bilinear", "nearest", "bicubic")
GRID_SAMPLE_PADDING = ("zeros", "border", "reflection")
RESIZE_TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners")
RESIZE_MODES = ("nearest", "linear")
RESIZE_NEAREST = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")


@dataclass(frozen=True)
class Issue:
    """One finding of :func:`check_graph` or :func:`fold_shapes`.

    Attributes:
        severity: ``"error"`` (fails the check: the op is not in the matrix or breaks a
            restriction) or ``"warning"`` (limited support, or a value that cannot be checked
            statically).
        op_type: the node's op type (``"<graph>"`` for graph-wide rules).
        node: the node's name (or the tensor's, for graph-wide rules).
        message: what is wrong, with the rule it breaks.
        source: where the rule comes from: ``operators.md``, ``onnxOpImporters.cpp`` or
            ``onnx-graphsurgeon`` (shape folding).
    """

    severity: str
    op_type: str
    node: str
    message: str
    source: str = SOURCE_DOC


@dataclass
class FoldReport:
    """Result of :func:`fold_shapes`: node counts before / after folding with onnx-graphsurgeon."""

    folded: bool
    nodes_before: int
    nodes_after: int
    shape_nodes_after: int
    error: str = ""
    model: onnx.ModelProto | None = field(default=None, repr=False)


@dataclass
class GraphReport:
    """Result of :func:`check_file` for one ONNX graph."""

    path: Path
    nodes: int
    op_types: int
    opset: int
    issues: list[Issue]
    fold: FoldReport | None

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def passed(self) -> bool:
        return not self.errors


class _Graphs:
    """Type, shape and constant lookups over a model and all its subgraphs."""

    def __init__(self, model: onnx.ModelProto):
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
        except Exception:  # noqa: BLE001 - inference is best effort: unknown types are skipped
            inferred = model
        self.model = inferred
        self.types: dict[str, int] = {}
        self.shapes: dict[str, list] = {}
        self.consts: dict[str, TensorProto] = {}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        self.boundary: set[str] = set()  # main-graph inputs and outputs
        self.nodes: list[onnx.NodeProto] = []
        self._walk(inferred.graph)
        for fn in inferred.functions:
            for node in fn.node:
                self._node(node)
        self.boundary = {v.name for v in inferred.graph.input} | {v.name for v in inferred.graph.output}
        self.boundary -= {i.name for i in inferred.graph.initializer}

    def _walk(self, graph: onnx.GraphProto) -> None:
        for v in list(graph.input) + list(graph.output) + list(graph.value_info):
            t = v.type.tensor_type
            if t.elem_type:
                self.types.setdefault(v.name, t.elem_type)
            if t.HasField("shape"):
                self.shapes.setdefault(v.name, [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim])
        for init in graph.initializer:
            self.consts[init.name] = init
            self.types[init.name] = init.data_type
            self.shapes[init.name] = list(init.dims)
        for node in graph.node:
            self._node(node)

    def _node(self, node: onnx.NodeProto) -> None:
        self.nodes.append(node)
        for o in node.output:
            if o:
                self.producer[o] = node
        for i in node.input:
            if i:
                self.consumers.setdefault(i, []).append(node)
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    self.consts[node.output[0]] = a.t
                    self.types[node.output[0]] = a.t.data_type
                    self.shapes[node.output[0]] = list(a.t.dims)
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                self._walk(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    self._walk(g)

    def trt_type(self, name: str) -> str | None:
        t = self.types.get(name)
        return None if t is None else TRT_TYPE.get(t, TensorProto.DataType.Name(t))

    def value(self, name: str) -> np.ndarray | None:
        t = self.consts.get(name)
        return None if t is None else numpy_helper.to_array(t)

    def rank(self, name: str) -> int | None:
        s = self.shapes.get(name)
        return None if s is None else len(s)


def _attrs(node: onnx.NodeProto) -> dict:
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _default_opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return 0


def _typed_inputs(node: onnx.NodeProto, opset: int) -> list[int]:
    """Indices of the node's inputs bound to its schema's first type parameter (the one the
    matrix's "Supported Types" describe)."""
    if node.op_type == "Where":
        return [1, 2]
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
    except Exception:  # noqa: BLE001 - no schema: check the first input only
        return [0] if node.input else []
    formals = list(schema.inputs)
    if not formals:
        return []
    first = formals[0].type_str
    out = []
    for i in range(len(node.input)):
        if i < len(formals):
            formal = formals[i]
        elif formals[-1].option == onnx.defs.OpSchema.FormalParameterOption.Variadic:
            formal = formals[-1]
        else:
            continue
        if formal.type_str == first:
            out.append(i)
    return out


def _input(node: onnx.NodeProto, i: int) -> str:
    return node.input[i] if i < len(node.input) else ""


class _Checker:
    def __init__(self, model: onnx.ModelProto):
        self.g = _Graphs(model)
        self.opset = _default_opset(model)
        self.issues: list[Issue] = []
        self.local_functions = {(f.domain, f.name) for f in model.functions}

    def add(self, node: onnx.NodeProto | None, message: str, source: str = SOURCE_DOC, severity: str = "error",
            name: str = "") -> None:
        op = node.op_type if node is not None else "<graph>"
        self.issues.append(Issue(severity, op, name or (node.name if node is not None else ""), message, source))

    def run(self) -> list[Issue]:
        lo, hi = OPSET_RANGE
        if not lo <= self.opset <= hi:
            self.add(None, f"default-domain opset {self.opset} is outside TensorRT 10's supported range "
                           f"[{lo}, {hi}]", name="opset_import")
        for node in self.g.nodes:
            self.node(node)
        self.graph_types()
        return self.issues

    # -- per node -------------------------------------------------------------------------
    def node(self, node: onnx.NodeProto) -> None:
        if (node.domain, node.op_type) in self.local_functions:
            return  # the parser imports a local function's body, whose nodes are checked themselves
        if node.domain not in ("", "ai.onnx"):
            self.add(node, f"op {node.domain}::{node.op_type} is not in the matrix (custom domain: TensorRT "
                           "would need a plugin)")
            return
        if node.op_type in UNSUPPORTED:
            self.add(node, f"op {node.op_type} is marked unsupported (N) in the matrix")
            return
        support = SUPPORT.get(node.op_type)
        if support is None:
            self.add(node, f"op {node.op_type} is not in the checked TensorRT 10 matrix")
            return
        self.dtypes(node, support)
        check = getattr(self, f"op_{node.op_type}", None)
        if check is not None:
            check(node, _attrs(node))
        if node.op_type in AXES_INPUT:
            self.axes_constant(node)
        for i in SHAPE_INPUTS.get(node.op_type, ()):
            self.shape_tensor(node, i)

    def dtypes(self, node: onnx.NodeProto, support: OpSupport) -> None:
        allowed = set(support.types)
        checked: list[tuple[str, str]] = []
        if node.op_type == "Constant":
            a = _attrs(node)
            if isinstance(a.get("value"), TensorProto):
                t = TRT_TYPE.get(a["value"].data_type, str(a["value"].data_type))
                # a quantized-type constant is weights for a DequantizeLinear (checked by quantized_tensor)
                if t not in QUANTIZED:
                    checked.append(("value", t))
        elif node.op_type == "ConstantOfShape":
            v = _attrs(node).get("value")
            checked.append(("value", TRT_TYPE.get(v.data_type, str(v.data_type)) if v is not None else "FP32"))
        else:
            for i in _typed_inputs(node, self.opset):
                name = _input(node, i)
                t = self.g.trt_type(name) if name else None
                if t is not None:
                    checked.append((name, t))
            if node.op_type == "Cast":
                to = _attrs(node).get("to")
                checked.append(("to", TRT_TYPE.get(to, str(to))))
        for name, t in checked:
            if t not in allowed:
                self.add(node, f"{node.op_type} {name!r} has type {t}, not in the supported types "
                               f"({', '.join(support.types)})")
                return

    def axes_constant(self, node: onnx.NodeProto) -> None:
        name = _input(node, AXES_INPUT[node.op_type])
        if name and name not in self.g.consts:
            what = "the `axis` input" if node.op_type == "CumSum" else "`axes`"
            self.add(node, f"{what} of {node.op_type} must be an initializer / constant, got the computed tensor "
                           f"{name!r}")

    def shape_tensor(self, node: onnx.NodeProto, i: int) -> None:
        name = _input(node, i)
        if not name:
            return
        t, r = self.g.trt_type(name), self.g.rank(name)
        if t is not None and t not in ("INT32", "INT64"):
            self.add(node, f"shape input {name!r} of {node.op_type} has type {t}; TensorRT shape tensors are "
                           "INT32 or INT64", SOURCE_PARSER)
        elif r is not None and r > 1:
            self.add(node, f"shape input {name!r} of {node.op_type} has rank {r}; TensorRT shape tensors are "
                           "0-D or 1-D", SOURCE_PARSER)

    # -- restrictions of single ops (method name: op_<OpType>) -------------------------------
    def _pool(self, node, a, max_pool=False):
        r = self.g.rank(_input(node, 0))
        if r is not None and r not in (4, 5):
            self.add(node, f"{node.op_type} on a rank-{r} input: 2D or 3D pooling only")
        if any(d != 1 for d in a.get("dilations", [])):
            self.add(node, f"{node.op_type} `dilations` must be empty or all ones, got {a['dilations']}")
        if max_pool and len(node.output) > 1 and node.output[1]:
            self.add(node, "MaxPool `Indices` output tensor unsupported")

    def op_AveragePool(self, node, a):
        self._pool(node, a)

    def op_MaxPool(self, node, a):
        self._pool(node, a, max_pool=True)

    def op_Constant(self, node, a):
        bad = [k for k in ("sparse_value", "value_string", "value_strings") if k in a]
        if bad:
            self.add(node, f"Constant attribute {bad[0]} is unsupported")

    def op_Dropout(self, node, a):
        name = _input(node, 2)
        if name:
            v = self.g.value(name)
            if v is None:
                self.add(node, "Dropout `is_training` must be an initializer")
            elif bool(np.any(v)):
                self.add(node, "Dropout `is_training` must evaluate to False")

    def op_GridSample(self, node, a):
        r, rg = self.g.rank(_input(node, 0)), self.g.rank(_input(node, 1))
        if r is not None and r != 4:
            self.add(node, f"GridSample input must be 4D, got rank {r}")
        if r is not None and rg is not None and r != rg:
            self.add(node, f"GridSample grid rank {rg} differs from the input rank {r}", SOURCE_PARSER)
        mode = a.get("mode", "bilinear")
        if mode not in GRID_SAMPLE_MODES:
            self.add(node, f"GridSample mode {mode!r} is not one the TensorRT 10.1 importer maps "
                           f"({', '.join(GRID_SAMPLE_MODES)}); it would silently sample as nearest", SOURCE_PARSER)
        pad = a.get("padding_mode", "zeros")
        if pad not in GRID_SAMPLE_PADDING:
            self.add(node, f"GridSample padding_mode {pad!r} not in {GRID_SAMPLE_PADDING}", SOURCE_PARSER)

    def op_If(self, node, a):
        then, other = a.get("then_branch"), a.get("else_branch")
        if then is None or other is None:
            return
        for x, y in zip(then.output, other.output):
            if x.name == y.name:
                self.add(node, f"If branches share the output name {x.name!r}; they must have different names")
            rx, ry = len(x.type.tensor_type.shape.dim), len(y.type.tensor_type.shape.dim)
            if x.type.tensor_type.HasField("shape") and y.type.tensor_type.HasField("shape") and rx != ry:
                self.add(node, f"If branch outputs {x.name!r} / {y.name!r} have ranks {rx} / {ry}; "
                               "they must have the same rank")

    def op_LayerNormalization(self, node, a):
        if any(o for o in node.output[1:]):
            self.add(node, "LayerNormalization: only the first output `Y` is supported")

    def op_Range(self, node, a):
        types = [self.g.trt_type(_input(node, i)) for i in range(3)]
        if None in types:
            return
        if len(set(types)) != 1:
            self.add(node, f"Range start/limit/delta types differ ({', '.join(types)}); they must be identical",
                     SOURCE_PARSER)
        elif types[0] not in ("INT32", "INT64", "FP32"):
            self.add(node, f"Range on {types[0]}: the importer takes INT32, INT64 or FP32", SOURCE_PARSER)

    def op_Resize(self, node, a):
        transform = a.get("coordinate_transformation_mode", "half_pixel")
        mode = a.get("mode", "nearest")
        if transform not in RESIZE_TRANSFORMS:
            self.add(node, f"Resize coordinate_transformation_mode {transform!r} unsupported "
                           f"(supported: {', '.join(RESIZE_TRANSFORMS)})")
        if mode not in RESIZE_MODES:
            self.add(node, f"Resize mode {mode!r} unsupported (supported: {', '.join(RESIZE_MODES)})")
        nearest = a.get("nearest_mode", "round_prefer_floor")
        if mode == "nearest" and nearest not in RESIZE_NEAREST:
            self.add(node, f"Resize nearest_mode {nearest!r} unsupported (supported: {', '.join(RESIZE_NEAREST)})")
        if a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
            self.add(node, f"Resize keep_aspect_ratio_policy {a['keep_aspect_ratio_policy']!r}: only `stretch`")
        if a.get("antialias", 0):
            self.add(node, "Resize antialiasing is not supported")
        scales = _input(node, 2)
        if scales and scales not in self.g.consts and "axes" in a:
            rank = self.g.rank(_input(node, 0))
            if rank is None or list(a["axes"]) != list(range(rank)):
                self.add(node, f"Resize with a tensor `scales`: `axes` must be an iota of length rank(input), "
                               f"got {list(a['axes'])}")

    def op_ScatterND(self, node, a):
        if "reduction" in a:
            self.add(node, "ScatterND `reduction` is not supported")

    def op_Squeeze(self, node, a):
        if not _input(node, 1) and "axes" not in a:
            shape = self.g.shapes.get(_input(node, 0))
            if shape is None or None in shape:
                self.add(node, "Squeeze without `axes` needs a static input shape", SOURCE_PARSER)

    def op_TopK(self, node, a):
        if a.get("sorted", 1) != 1:
            self.add(node, "TopK `sorted` must be 1")
        k = self.g.value(_input(node, 1))
        if k is not None and k.size and int(k.reshape(-1)[0]) >= 3840:
            self.add(node, f"TopK K = {int(k.reshape(-1)[0])}: `K` input must be less than 3840")

    def _qdq(self, node, a, zero_point_name: str):
        data, scale, zp = _input(node, 0), _input(node, 1), _input(node, 2)
        if zp:
            zt = self.g.trt_type(zp)
            if zt == "UINT8":
                self.add(node, f"{node.op_type} zero point is UINT8; TensorRT quantizes to INT8/FP8/INT4 only "
                               "(UINT8 only as a network input or output)", SOURCE_PARSER)
            v = self.g.value(zp)
            if v is None:
                self.add(node, f"{node.op_type} `{zero_point_name}` is computed, so it cannot be shown to be 0",
                         severity="warning")
            elif np.any(v.astype(np.float64) != 0):
                self.add(node, f"{node.op_type} `{zero_point_name}` must be 0 (symmetric quantization), "
                               f"got non-zero values (max |zp| = {np.abs(v.astype(np.float64)).max():g})")
        s = self.g.value(scale)
        if s is not None:
            if s.size == 0 or not np.all(s > 0):
                self.add(node, f"{node.op_type} scale must be non-empty and all positive", SOURCE_PARSER)
            if s.size > 1:
                if s.ndim != 1:
                    if s.ndim != self.g.rank(data):
                        self.add(node, f"{node.op_type} scale of rank {s.ndim} is neither 1-D (per-channel) "
                                       "nor of the input's rank (blocked)", SOURCE_PARSER)
                    return
                if "axis" not in a:
                    self.add(node, f"{node.op_type} per-channel scale without an explicit `axis`: the importer "
                                   "uses axis 0 where ONNX defaults to 1", SOURCE_PARSER)
                    return
                shape = self.g.shapes.get(data)
                if shape is not None and shape:
                    ax = a["axis"] % len(shape)
                    if shape[ax] is not None and shape[ax] != s.size:
                        self.add(node, f"{node.op_type} has {s.size} scales for {shape[ax]} channels on axis "
                                       f"{a['axis']}", SOURCE_PARSER)
                if node.op_type == "QuantizeLinear" and data not in self.g.consts:
                    self.add(node, "per-channel QuantizeLinear of an activation: the importer expects per-axis "
                                   "scales on weights only", SOURCE_PARSER, severity="warning")
        elif scale:
            shape = self.g.shapes.get(scale)
            if shape is not None and None in shape:
                self.add(node, f"{node.op_type} scale has a dynamic shape", SOURCE_PARSER)

    def op_QuantizeLinear(self, node, a):
        self._qdq(node, a, "y_zero_point")

    def op_DequantizeLinear(self, node, a):
        self._qdq(node, a, "x_zero_point")

    # -- graph-wide type rules ------------------------------------------------------------
    def graph_types(self) -> None:
        for name, t in self.g.types.items():
            trt = TRT_TYPE.get(t)
            if trt == "UINT8" and name not in self.g.boundary and self.g.consumers.get(name):
                self.add(None, f"tensor {name!r} is UINT8 inside the network; UINT8 is only supported as a "
                               "network input or output", name=name)
            elif trt == "DOUBLE" and (self.g.consumers.get(name) or name in self.g.boundary):
                self.add(None, f"tensor {name!r} is DOUBLE: limited support, TensorRT casts it to FLOAT "
                               "(clamped to +-FLT_MAX)", severity="warning", name=name)
            elif trt in QUANTIZED:
                self.quantized_tensor(name, trt)

    def quantized_tensor(self, name: str, trt: str) -> None:
        consumers = self.g.consumers.get(name, [])
        if not consumers and name not in self.g.boundary:
            return  # e.g. an unused initializer
        producer = self.g.producer.get(name)
        made_by_q = producer is not None and producer.op_type == "QuantizeLinear"
        constant = name in self.g.consts
        bad_readers = sorted({n.op_type for n in consumers
                              if n.op_type != "DequantizeLinear" and not (constant and n.op_type == "QuantizeLinear"
                                                                          and _input(n, 2) == name)})
        if name in self.g.boundary or not (made_by_q or constant) or bad_readers:
            why = ("is a network input/output" if name in self.g.boundary
                   else f"is read by {', '.join(bad_readers)}" if bad_readers
                   else f"is made by {producer.op_type if producer else '?'}")
            self.add(None, f"tensor {name!r} of quantized type {trt} {why}; quantized types are only supported "
                           "through QuantizeLinear/DequantizeLinear from a floating-point type", name=name)


def check_graph(model: onnx.ModelProto) -> list[Issue]:
    """Check every node of ``model`` (its subgraphs and local functions included) against the
    TensorRT 10 operator support matrix.

    Follows :data:`DOC` (onnx-tensorrt ``docs/operators.md``, 10.1-GA) and, for the rules whose
    issues name it, that commit's ``onnxOpImporters.cpp``; the module docstring lists the rules.
    A static check only: it builds no engine and cannot tell whether TensorRT has kernels for
    the device.

    Args:
        model: an ONNX model; it is not modified (dtypes and shapes come from ONNX shape
            inference on a copy; tensors whose type stays unknown are not type-checked).

    Returns:
        the issues found, in graph order; an empty list when the graph passes. Issues of
        severity ``"error"`` mean the op is not in the matrix or breaks a restriction.
    """
    return _Checker(model).run()


def fold_shapes(model: onnx.ModelProto) -> FoldReport:
    """Fold constants and static shapes with onnx-graphsurgeon, as TensorRT's docs suggest
    (``polygraphy surgeon sanitize --fold-constants`` does the same through it).

    QuantizeLinear / DequantizeLinear nodes are kept (folding a weight's Q/DQ pair would turn
    the INT8 weight back into FP32). The model is not modified.

    Returns:
        a :class:`FoldReport`: ``folded`` False with ``error`` set when folding raised (e.g. a
        constant subgraph onnxruntime cannot evaluate); otherwise the node counts before and
        after, the ``Shape`` nodes left (dynamic axes) and the folded ``model``.

    Raises:
        ImportError: onnx-graphsurgeon is not installed (``pip install -e '.[export]'``).
    """
    import onnx_graphsurgeon as gs

    before = len(model.graph.node)
    try:
        graph = gs.import_onnx(model)
        graph.fold_constants(fold_shapes=True, error_ok=False,
                             should_exclude_node=lambda n: n.op in ("QuantizeLinear", "DequantizeLinear"))
        graph.cleanup().toposort()
        folded = gs.export_onnx(graph)
        folded.ir_version = model.ir_version
    except Exception as exc:  # noqa: BLE001 - any failure of the folding step is the finding
        return FoldReport(False, before, before, sum(n.op_type == "Shape" for n in model.graph.node),
                          f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
    return FoldReport(True, before, len(folded.graph.node), sum(n.op_type == "Shape" for n in folded.graph.node),
                      model=folded)


def check_file(path: str | Path, fold: bool = True) -> GraphReport:
    """Check one ONNX file: :func:`check_graph`, then (``fold``) :func:`fold_shapes` and
    :func:`check_graph` again on the folded graph (its new errors, if any, are reported with
    source ``onnx-graphsurgeon``; a failure to fold is an error).

    Raises:
        OSError, google.protobuf.message.DecodeError: the file cannot be read or parsed.
    """
    path = Path(path)
    model = onnx.load(str(path))
    issues = check_graph(model)
    report = None
    if fold:
        report = fold_shapes(model)
        if not report.folded:
            issues.append(Issue("error", "<graph>", path.name, f"constants/shapes do not fold: {report.error}",
                                SOURCE_FOLD))
        else:
            seen = {(i.op_type, i.message) for i in issues}
            for i in check_graph(report.model):
                if i.severity == "error" and (i.op_type, i.message) not in seen:
                    issues.append(Issue("error", i.op_type, i.node, "after folding: " + i.message, SOURCE_FOLD))
            report.model = None
    ops = {n.op_type for n in model.graph.node}
    return GraphReport(path, len(model.graph.node), len(ops), _default_opset(model), issues, report)


def check_bundle(bundle: str | Path, fold: bool = True) -> list[GraphReport]:
    """Check every ONNX graph a bundle's manifest lists (``graphs.*.file``), checksums verified.

    Raises:
        instancevg.runtime.bundle.BundleError: not a bundle, a graph file missing or modified.
    """
    from instancevg.runtime.bundle import Bundle

    b = Bundle.open(bundle)
    files = [g.file for g in b.manifest.graphs.values()]
    return [check_file(b.file(f), fold=fold) for f in files]


def format_report(report: GraphReport, bundle: str | Path | None = None) -> str:
    """A one-line verdict, then one indented line per kind of issue (count, first node)."""
    where = f"{Path(bundle).name}/{report.path.name}" if bundle is not None else str(report.path)
    verdict = "PASS" if report.passed else "FAIL"
    parts = [f"{report.nodes} nodes", f"{report.op_types} op types", f"opset {report.opset}",
             f"{len(report.errors)} errors", f"{len(report.warnings)} warnings"]
    if report.fold is not None:
        f = report.fold
        parts.append(f"folds {f.nodes_before} -> {f.nodes_after} nodes, {f.shape_nodes_after} Shape left"
                     if f.folded else "does not fold")
    lines = [f"{verdict} {where}: " + ", ".join(parts) + " (TensorRT 10 matrix, static check: not an engine build)"]
    groups: Counter = Counter()
    first: dict = {}
    for i in report.issues:
        key = (i.severity, i.op_type, i.source, _generic(i.message))
        groups[key] += 1
        first.setdefault(key, i)
    for key, n in groups.items():
        i = first[key]
        lines.append(f"  {i.severity}: {n} x {i.op_type}: {i.message} [{i.source}; first: {i.node}]")
    return "\n".join(lines)


def _generic(message: str) -> str:
    """The message with quoted tensor names removed, so that one rule broken by many nodes
    groups into one line."""
    import re

    return re.sub(r"'[^']*'", "'...'", message)


def main(argv: list[str] | None = None) -> int:
    """CLI; exit 0 when every graph passes, 1 on an op outside the matrix or a broken
    restriction, 2 on bad input (missing bundle, unreadable graph)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", action="append", required=True, help="bundle directory (repeatable)")
    p.add_argument("--no-fold", action="store_true", help="skip the onnx-graphsurgeon folding step")
    args = p.parse_args(argv)
    from google.protobuf.message import DecodeError

    from instancevg.runtime.errors import CLI_ERRORS, report_error

    failed = False
    for bundle in args.bundle:
        try:
            reports = check_bundle(bundle, fold=not args.no_fold)
        except (*CLI_ERRORS, DecodeError) as exc:  # BundleError, OSError, ValueError, a corrupt graph
            return report_error(exc)
        except ImportError as exc:
            return report_error(f"{exc} (pip install -e '.[export]')")
        for r in reports:
            print(format_report(r, bundle))
            failed |= not r.passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
