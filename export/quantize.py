"""Explicit INT8 (Q/DQ) quantization of a bundle's grounder with ONNX Runtime.

    python export/quantize.py --bundle BUNDLE --calib procedural --out BUNDLE_INT8 [--n-calib 200]
        [--quantize-attention] [--op-types Conv,MatMul,Gemm] [--nodes-to-exclude A,B]
        [--method minmax|entropy|percentile] [--per-tensor] [--activation-type int8|uint8]
        [--quantize-outputs | --no-quantize-outputs] [--quantize-stem]

``onnxruntime.quantization.quantize_static`` in ``QuantFormat.QDQ`` (QuantizeLinear /
DequantizeLinear pairs: the explicit form TensorRT 10 builds strongly typed INT8 engines from;
TensorRT docs "Explicit Quantization"), symmetric INT8 activations and per-channel symmetric INT8
weights, calibrated on >= 200 procedural *training* samples by default.

Q/DQ placement. The default ``int8`` form quantizes only the *inputs* of the quantized ops
(activations and weights), never their outputs, as TensorRT recommends ("Explicit Quantization",
Q/DQ layer-placement recommendations): TensorRT fuses a convolution with the ReLU6 / Clip after it
and quantizes once, at the next Q. Quantizing a convolution's output instead rounds its
pre-activation range (about ±90 in the backbone) to 8 bits before the ReLU6 keeps only [0, 6],
leaving a handful of levels there (benchmarks/RESULTS.md has the accuracy it cost). The ``uint8`` form for ONNX Runtime's
x86-64 kernels quantizes outputs as well (``--quantize-outputs``), since QLinearConv chains need
them.

Kept in float by default: the first backbone convolutions (:data:`SENSITIVE_CONV_WEIGHTS`: the
stem, block 0 and block 1's expansion, at stride 2 on 160x160 maps in the ``edge`` preset), whose
int8 rounding costs most of the accuracy INT8 loses on the real-photo models
(``benchmarks/RESULTS.md`` "INT8 accuracy"; ``--quantize-stem`` quantizes them too), attention MatMuls (MatMuls whose two inputs are both activations:
Q·Kᵀ, attention·V and the query·pixel products), LayerNorm, Softmax, every op not in
``--op-types`` (GridSample, normalisations, activations) and, when outputs are quantized, the
nodes producing the float ops' inputs (so they read un-rounded float tensors). The text encoder
stays FP32 (it runs once per expression and is cached). The output bundle is written
atomically with its own manifest (``precision: int8``).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import onnx
from instancevg.runtime.bundle import Bundle, BundleError
from instancevg.runtime.errors import CLI_ERRORS, report_error

from instancevg.runtime.atomic_io import atomic_directory

DEFAULT_OP_TYPES = ("Conv", "MatMul", "Gemm")
# For ONNX Runtime on x86-64 CPUs (the default with --activation-type uint8): quantizing the ops
# between the convolutions too keeps tensors in uint8 so ORT fuses QLinearConv chains. Add is left
# out: ORT's float NCHWc Conv already fuses a residual Add, while a QLinearAdd plus its Q/DQ costs
# more than it saves (shipped model, 2-core x86-64, 2 threads: end to end 1.08x FP32 with Add, 1.18x without).
ORT_CPU_OP_TYPES = ("Conv", "MatMul", "Gemm", "Clip", "Relu", "Concat", "Resize", "MaxPool", "AveragePool",
                    "GlobalAveragePool")
MIN_CALIB = 200
# Weight initializers (as the exporter names them from the PyTorch parameters) of the backbone
# convolutions kept in float by default: EfficientNet-Lite0's stem and first MBConv blocks. Block
# 0's linear bottleneck output spans about +-90 and feeds everything after it, so symmetric int8
# steps there are coarse. These four convolutions are 11 % of the backbone's multiply-adds at 320x320
# (82 of 743 M).
SENSITIVE_CONV_WEIGHTS = ("model.backbone.stem.0.weight", "model.backbone.blocks.0._depthwise_conv.weight",
                          "model.backbone.blocks.0._project_conv.weight", "model.backbone.blocks.1._expand_conv.weight")


def attention_matmuls(model: onnx.ModelProto) -> list[str]:
    """Names of MatMul nodes with no constant input (activation x activation: attention scores,
    attention-weighted values, mask dot products), which stay in float by default."""
    consts = {i.name for i in model.graph.initializer}
    consts |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in model.graph.node
            if n.op_type == "MatMul" and not any(i in consts for i in n.input)]


FLOAT_OPS = ("LayerNormalization", "Softmax")


def sensitive_convs(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv nodes whose weight is one of :data:`SENSITIVE_CONV_WEIGHTS`, in graph order.

    Raises:
        ValueError: if the graph has none of them (a grounder exported from another backbone or
            with renamed weights: pass ``quantize_stem=True`` to quantize every convolution).
    """
    names = [n.name for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 1
             and n.input[1] in SENSITIVE_CONV_WEIGHTS]
    if not names:
        raise ValueError("the grounder has none of the backbone convolutions kept in float "
                         f"({SENSITIVE_CONV_WEIGHTS[0]}, ...); pass --quantize-stem to quantize all of them")
    return names


def float_input_producers(model: onnx.ModelProto, float_nodes: set[str]) -> list[str]:
    """Names of nodes whose outputs feed a node that stays in float (LayerNorm, Softmax, attention
    MatMuls). ONNX Runtime's QDQ quantizer also puts Q/DQ on the *output* of a quantized Gemm /
    Conv / Add, which would hand those float ops int8-rounded inputs (e.g. the MSDeformAttn
    attention-weight logits before their softmax); keeping the producers in float avoids that."""
    keep = float_nodes | {n.name for n in model.graph.node if n.op_type in FLOAT_OPS}
    feeds = {i for n in model.graph.node if n.name in keep for i in n.input}
    return [n.name for n in model.graph.node if n.name not in keep and any(o in feeds for o in n.output)]


def quantize_bundle(bundle: str | Path, out: str | Path, calib: str = "procedural", n_calib: int = MIN_CALIB,
                    op_types: tuple[str, ...] | None = None, quantize_attention: bool = False,
                    nodes_to_exclude: tuple[str, ...] = (), method: str = "minmax", per_channel: bool = True,
                    calib_split: str = "train", allow_few: bool = False, activation_type: str = "int8",
                    quantize_outputs: bool | None = None, quantize_stem: bool = False) -> Path:
    """Write an INT8 Q/DQ copy of ``bundle`` to ``out`` (atomically).

    Args:
        bundle: FP32 bundle directory from ``export_onnx.py``.
        out: the INT8 bundle directory to create or replace.
        calib: calibration data (see :func:`instancevg.export.calibration.calibration_samples`).
        n_calib: calibration samples (>= 200 unless ``allow_few``, which tests use).
        op_types: op types to quantize. Default: ``DEFAULT_OP_TYPES`` (Conv, MatMul, Gemm) for
            ``int8``, ``ORT_CPU_OP_TYPES`` for ``uint8``.
        quantize_attention: also quantize activation x activation MatMuls.
        nodes_to_exclude: more node names to keep in float.
        method: calibration method, ``minmax`` | ``entropy`` | ``percentile``.
        per_channel: per-output-channel weight scales (per-tensor if False).
        activation_type: ``int8`` (symmetric, zero point 0: what TensorRT's explicit
            quantization requires; ONNX Runtime fuses it into int8 kernels on ARM64 only) or
            ``uint8`` (asymmetric: what ONNX Runtime's x86-64 CPU kernels need to run
            QLinearConv / QLinearMatMul instead of DequantizeLinear + float ops). ``int8``
            keeps Conv/Gemm biases in float (TensorRT 10's DequantizeLinear takes no INT32;
            onnx-tensorrt docs/operators.md); ``uint8`` stores them as INT32 as QLinearConv does.
        quantize_outputs: also put Q/DQ on the outputs of quantized ops. Default: False for
            ``int8`` (TensorRT placement: inputs only), True for ``uint8`` (ONNX Runtime fusion).
        quantize_stem: also quantize the backbone convolutions of :data:`SENSITIVE_CONV_WEIGHTS`
            (kept in float by default, for both activation types).

    Returns:
        ``out``.

    Raises:
        ValueError: too few samples, an unknown method, or (unless ``quantize_stem``) a grounder
            without the backbone convolutions kept in float. BundleError: bad input bundle.
    """
    from instancevg.export.calibration import (
        GrounderCalibrationReader,
        calibration_samples,
    )
    from instancevg.runtime.grounder import Grounder
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if activation_type not in ("int8", "uint8"):
        raise ValueError(f"activation_type must be int8 or uint8, got {activation_type!r}")
    if method not in methods:
        raise ValueError(f"method must be one of {sorted(methods)}, got {method!r}")
    if n_calib < MIN_CALIB and not allow_few:
        raise ValueError(f"calibrate on at least {MIN_CALIB} samples, got {n_calib}")
    if quantize_outputs is None:
        quantize_outputs = activation_type == "uint8"
    if op_types is None:
        op_types = ORT_CPU_OP_TYPES if activation_type == "uint8" else DEFAULT_OP_TYPES
    if not op_types:
        raise ValueError("op_types is empty: name at least one op type to quantize")
    src = Bundle.open(bundle)
    if src.manifest.precision != "fp32":
        raise BundleError(f"{src.path} is a {src.manifest.precision} bundle; quantize the FP32 one")
    fp32 = Grounder.from_bundle(src.path, backend="onnxruntime")
    grounder_path = src.file("grounder.onnx")
    out = Path(out)
    with atomic_directory(out) as tmp, tempfile.TemporaryDirectory(dir=tmp.parent) as work:
        pre = Path(work) / "grounder.pre.onnx"
        # ORT symbolic shape inference fails on the dynamo graph (None shapes); ONNX shape inference suffices
        quant_pre_process(str(grounder_path), str(pre), skip_symbolic_shape=True)
        model = onnx.load(str(pre))
        exclude = list(nodes_to_exclude)
        float_convs = [] if quantize_stem else sensitive_convs(model)
        exclude += float_convs
        if not quantize_attention:
            exclude += attention_matmuls(model)
        if quantize_outputs:
            exclude += float_input_producers(model, set(exclude))
        reader = GrounderCalibrationReader(fp32, calibration_samples(calib, n_calib, calib_split))
        quantize_static(str(pre), str(tmp / "grounder.onnx"), reader, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(op_types), per_channel=per_channel,
                        activation_type=QuantType.QInt8 if activation_type == "int8" else QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=exclude, calibrate_method=methods[method],
                        extra_options={"ActivationSymmetric": activation_type == "int8", "WeightSymmetric": True,
                                       # TensorRT has no INT32 DequantizeLinear: int8 (TensorRT) keeps biases in
                                       # float; uint8 (ONNX Runtime QLinearConv) needs them as int32
                                       "QuantizeBias": activation_type == "uint8",
                                       "OpTypesToExcludeOutputQuantization":
                                           [] if quantize_outputs else list(op_types)})
        onnx.checker.check_model(str(tmp / "grounder.onnx"))
        for name in ("text_encoder.onnx", "tokenizer.json"):
            shutil.copyfile(src.file(name), tmp / name)
        import onnxruntime

        quantization = {
            "tool": "onnxruntime.quantization.quantize_static", "format": "QDQ",
            "activations": ("int8 symmetric" if activation_type == "int8" else "uint8 asymmetric") + " per-tensor",
            "weights": "int8 symmetric " + ("per-channel" if per_channel else "per-tensor"),
            "biases": "int32" if activation_type == "uint8" else "float",
            "op_types": list(op_types), "quantize_attention": quantize_attention,
            "float_conv_weights": [] if quantize_stem else list(SENSITIVE_CONV_WEIGHTS),
            "qdq_placement": "inputs and outputs" if quantize_outputs else "inputs only",
            "excluded_nodes": len(exclude), "calibration": {"data": calib, "split": calib_split,
                                                            "samples": reader.count, "method": method},
            "graphs_quantized": ["grounder"], "source_bundle_sha256": src.manifest.files,
        }
        replace(src.manifest, precision="int8", engines={}, quantization=quantization,
                versions={**src.manifest.versions, "onnxruntime": onnxruntime.__version__}).write(tmp)
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI; exit 2 on bad arguments or an unreadable bundle."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", required=True, help="FP32 bundle directory")
    p.add_argument("--calib", default="procedural", metavar="SPEC",
                   help="calibration data SPEC as for `instancevg eval`: procedural (default: procedural:0, rendered "
                        "in memory), procedural:SEED, a make-data directory or dataset.json, "
                        "coco:INSTANCES.json:IMAGES, grefcoco:ROOT, ...")
    p.add_argument("--calib-split", default="train", help="split of --calib to draw from (default train; never test)")
    p.add_argument("--out", required=True, help="INT8 bundle directory to write")
    p.add_argument("--n-calib", type=int, default=MIN_CALIB)
    p.add_argument("--op-types", default=None,
                   help=f"comma-separated op types to quantize (default: {','.join(DEFAULT_OP_TYPES)} for int8, "
                        f"{','.join(ORT_CPU_OP_TYPES)} for uint8)")
    p.add_argument("--quantize-attention", action="store_true", help="also quantize activation x activation MatMuls")
    p.add_argument("--nodes-to-exclude", default="", help="comma-separated node names kept in float")
    p.add_argument("--method", default="minmax", choices=["minmax", "entropy", "percentile"])
    p.add_argument("--per-tensor", action="store_true", help="per-tensor weight scales")
    p.add_argument("--activation-type", default="int8", choices=["int8", "uint8"],
                   help="int8: symmetric, for TensorRT / ARM64 (default); uint8: for ONNX Runtime on x86-64 CPUs")
    p.add_argument("--quantize-outputs", action=argparse.BooleanOptionalAction, default=None,
                   help="Q/DQ on the outputs of quantized ops too (default: only with --activation-type uint8)")
    p.add_argument("--quantize-stem", action="store_true",
                   help="also quantize the backbone's stem and first-block convolutions (kept in float by default)")
    args = p.parse_args(argv)
    try:
        out = quantize_bundle(args.bundle, args.out, args.calib, args.n_calib,
                              None if args.op_types is None else tuple(t for t in args.op_types.split(",") if t),
                              args.quantize_attention,
                              tuple(n for n in args.nodes_to_exclude.split(",") if n), args.method,
                              not args.per_tensor, args.calib_split, activation_type=args.activation_type,
                              quantize_outputs=args.quantize_outputs, quantize_stem=args.quantize_stem)
    except CLI_ERRORS as exc:  # BundleError, ValueError, OSError, ...
        return report_error(exc)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
