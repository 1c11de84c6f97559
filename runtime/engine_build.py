"""Build TensorRT engines from a bundle (TensorRT 10 Python API), torch-free: part of the
``instancevg-runtime`` wheel, so the target device builds its own engines.

    instancevg-runtime build-engine --bundle BUNDLE (--fp16 | --int8) [--out DIR] [--workspace MiB]
        [--timing-cache FILE] [--max-batch 8] [--opt-batch 1] [--opt-text-len 16]
    python export/build_engine.py ...      # the same command from a checkout (can also export first)

One engine per ONNX graph (``text_encoder.<p>.engine``, ``grounder.<p>.engine``) is written into
the bundle (or a copy of it at ``--out``) and recorded in its manifest (``engines.<p>``: files,
profile shapes, TensorRT version, device, flags). Follows the TensorRT docs ("Python API: The
Build Phase", "Explicit Quantization", "Precision Control"):

* network parsed by ``trt.OnnxParser``; one optimization profile with dynamic batch and text
  length (min/opt/max from :func:`profile_shapes`);
* ``--fp16``: FP16 kernels allowed, with normalization, softmax and reduction layers (LayerNorm,
  GroupNorm/InstanceNorm, attention softmax) pinned to FP32 under ``OBEY_PRECISION_CONSTRAINTS``;
* ``--int8``: needs a Q/DQ bundle from ``export/quantize.py`` (symmetric int8 activations); its
  grounder is built as a STRONGLY_TYPED network, so the Q/DQ nodes alone decide INT8 and
  everything else keeps the ONNX types; the un-quantized text encoder is built as in ``--fp16``;
* timing cache loaded from and saved to ``--timing-cache``; engines written atomically.

TensorRT is imported inside the functions, so this module imports without it; the command exits
with status 2 and a one-line message when TensorRT is missing. No engine is ever faked.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from .atomic_io import atomic_directory, atomic_path, atomic_write_bytes
from .bundle import Bundle, BundleError
from .manifest import Manifest
from .errors import CLI_ERRORS, InstanceVGError, report_error

GRAPHS = ("text_encoder", "grounder")
MISSING_TRT = ("TensorRT is not installed: build engines on the target machine (Jetson: JetPack's "
               "python3-libnvinfer; x86-64 with a CUDA GPU: pip install tensorrt). "
               "The ONNX bundle runs without it on ONNX Runtime.")


class EngineBuildError(InstanceVGError, RuntimeError):
    """TensorRT could not parse the ONNX graph or build an engine."""


def profile_shapes(manifest: Manifest, max_batch: int = 8, opt_batch: int = 1, opt_text_len: int = 16) -> dict:
    """Optimization-profile shapes (min, opt, max) of every input of both graphs.

    Batch ranges over [1, max_batch] (opt ``opt_batch``), text length over [2, max_text_len]
    ([CLS] + [SEP] at least; opt ``opt_text_len`` clipped to that range); other axes are static
    (image 3 x S x S, 384 text channels). The grounder's image batch also ranges over
    [1, max_batch] but is optimised for 1: the runtime sends one frame for all its expressions.

    Returns:
        ``{graph: {input: (min_shape, opt_shape, max_shape)}}`` with shapes as tuples of ints.

    Raises:
        ValueError: max_batch < 1 or opt_batch outside [1, max_batch].
    """
    if max_batch < 1 or not 1 <= opt_batch <= max_batch:
        raise ValueError(f"need 1 <= opt_batch ({opt_batch}) <= max_batch ({max_batch})")
    s = manifest.input.image_size
    lmax = manifest.max_text_len
    lopt = min(max(2, opt_text_len), lmax)
    c = manifest.text_dim or 384

    def tri(shape_of):
        return tuple(shape_of(b, n) for b, n in ((1, 2), (opt_batch, lopt), (max_batch, lmax)))

    ids = tri(lambda b, n: (b, n))
    return {
        "text_encoder": {"input_ids": ids, "attention_mask": ids},
        "grounder": {"image": ((1, 3, s, s), (1, 3, s, s), (max_batch, 3, s, s)),
                     "text_features": tri(lambda b, n: (b, n, c)), "text_mask": ids},
    }


def _keep_fp32(trt, network) -> int:
    """Pin normalization / softmax / reduction layers (and their outputs) to FP32; returns the count."""
    kinds = {trt.LayerType.NORMALIZATION, trt.LayerType.SOFTMAX, trt.LayerType.REDUCE}
    n = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type in kinds:
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
            n += 1
    return n


def build_engine(onnx_path: Path, engine_path: Path, shapes: dict, fp16: bool, strongly_typed: bool,
                 workspace_mib: int, timing_cache: Path | None) -> dict:
    """Parse one ONNX graph, build and atomically write its serialized engine.

    Args:
        onnx_path: the graph. engine_path: where the engine goes.
        shapes: ``{input: (min, opt, max)}`` of :func:`profile_shapes`.
        fp16: allow FP16 kernels (normalization/softmax/reduce pinned to FP32).
        strongly_typed: build a STRONGLY_TYPED network (Q/DQ graphs; no precision flags).
        workspace_mib: workspace memory-pool limit in MiB.
        timing_cache: load the timing cache from and save it to this file (None: no cache file).

    Returns:
        metadata: file, bytes, build seconds, flags, layers pinned to FP32, profile shapes.

    Raises:
        ImportError: TensorRT missing. EngineBuildError: parse or build failure.
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    pinned = 0
    if fp16 and not strongly_typed:
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        pinned = _keep_fp32(trt, network)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in shapes.items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    if timing_cache is not None:
        data = timing_cache.read_bytes() if timing_cache.is_file() else b""
        config.set_timing_cache(config.create_timing_cache(data), ignore_mismatch=False)
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine for {onnx_path} (see the log above)")
    seconds = time.perf_counter() - t0
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(bytes(serialized))
    if timing_cache is not None:
        atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    return {"file": engine_path.name, "bytes": engine_path.stat().st_size, "build_seconds": round(seconds, 1),
            "strongly_typed": strongly_typed, "fp16": fp16 and not strongly_typed, "layers_pinned_fp32": pinned,
            "profile": {k: [list(s) for s in v] for k, v in shapes.items()}}


def _device_name() -> str | None:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            return None
    err, props = cudart.cudaGetDeviceProperties(0)
    return props.name.decode(errors="replace").strip("\x00") if err == cudart.cudaError_t.cudaSuccess else None


def check_precision(manifest: Manifest, precision: str) -> None:
    """Refuse precision/bundle mismatches before any build.

    Raises:
        BundleError: ``int8`` on a bundle without Q/DQ, or on uint8 (asymmetric) activations,
            which TensorRT's explicit quantization does not accept (zero point must be 0).
    """
    if precision == "int8":
        if manifest.precision != "int8":
            raise BundleError("--int8 needs a Q/DQ bundle: run export/quantize.py first "
                              f"(this bundle is {manifest.precision})")
        acts = (manifest.quantization or {}).get("activations", "")
        if not acts.startswith("int8"):
            raise BundleError(f"TensorRT needs symmetric int8 activations, this bundle has {acts!r}: "
                              "quantize with --activation-type int8")


def build_bundle_engines(bundle: Path, precision: str, out: Path | None = None, workspace_mib: int = 2048,
                         timing_cache: Path | None = None, max_batch: int = 8, opt_batch: int = 1,
                         opt_text_len: int = 16) -> Path:
    """Build both engines for ``precision`` ("fp16" | "int8") and record them in the manifest.

    Returns:
        the bundle directory holding the engines (``out`` or ``bundle``).

    Raises:
        ImportError: TensorRT missing. BundleError: bad bundle or precision mismatch.
        EngineBuildError: TensorRT failure (the manifest is then left unchanged).
    """
    import tensorrt as trt

    src = Bundle.open(bundle)
    check_precision(src.manifest, precision)
    for name in src.manifest.files:
        src.file(name)  # checksums
    if out is not None and Path(out).resolve() != src.path.resolve():
        with atomic_directory(out) as tmp:
            shutil.copytree(src.path, tmp, dirs_exist_ok=True)
        src = Bundle.open(out)
    shapes = profile_shapes(src.manifest, max_batch, opt_batch, opt_text_len)
    entry = {"tensorrt": trt.__version__, "device": _device_name(), "workspace_mib": workspace_mib,
             "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for graph in GRAPHS:
        strongly = precision == "int8" and graph == "grounder"
        entry[graph] = build_engine(src.path / f"{graph}.onnx", src.path / f"{graph}.{precision}.engine",
                                    shapes[graph], fp16=True, strongly_typed=strongly,
                                    workspace_mib=workspace_mib, timing_cache=timing_cache)
    manifest = Manifest.read(src.path)
    replace(manifest, engines={**manifest.engines, precision: entry}).write(src.path)
    return src.path


def _positive_mib(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("--workspace must be >= 1 MiB")
    return value


def add_arguments(p: argparse.ArgumentParser, bundle_required: bool = True) -> None:
    """The command's arguments (exactly one of --fp16 / --int8) on parser ``p``."""
    p.add_argument("--bundle", type=Path, required=bundle_required, default=None,
                   help="bundle to build from" + ("" if bundle_required else
                                                  " (default: export the shipped model to --out first)"))
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--fp16", action="store_true", help="FP16 engines, normalization/softmax in FP32")
    mode.add_argument("--int8", action="store_true", help="INT8 from a Q/DQ bundle (strongly typed)")
    p.add_argument("--out", type=Path, default=None, help="bundle directory that receives the engines")
    p.add_argument("--workspace", type=_positive_mib, default=2048, help="workspace limit in MiB (default 2048)")
    p.add_argument("--timing-cache", type=Path, default=None, help="timing cache file to load and update")
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--opt-batch", type=int, default=1)
    p.add_argument("--opt-text-len", type=int, default=16)


def run(args: argparse.Namespace, export_default=None) -> int:
    """Build the engines ``args`` ask for; exit 0 when they are written, 2 when TensorRT is missing,
    the bundle is unusable or a build fails (one line ``error: ...`` on stderr).

    Args:
        args: parsed :func:`add_arguments` arguments.
        export_default: ``(out: Path | None) -> Path`` that exports the shipped model when
            ``args.bundle`` is None (``export/build_engine.py`` passes the PyTorch exporter); None
            makes a missing ``--bundle`` an error.
    """
    precision = "int8" if args.int8 else "fp16"
    try:
        if args.bundle is not None:
            check_precision(Bundle.open(args.bundle).manifest, precision)
        elif args.int8:
            raise BundleError("--int8 needs --bundle pointing at a Q/DQ bundle from export/quantize.py")
        elif export_default is None:
            raise BundleError("--bundle is required: export a bundle with the full package first")
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            return report_error(MISSING_TRT)
        bundle = args.bundle if args.bundle is not None else export_default(args.out)
        out = build_bundle_engines(bundle, precision, args.out, args.workspace, args.timing_cache,
                                   args.max_batch, args.opt_batch, args.opt_text_len)
    except (*CLI_ERRORS, ImportError) as exc:  # BundleError, EngineBuildError, OSError, no exporter
        return report_error(exc)
    print(f"wrote {precision} engines into {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``instancevg-runtime build-engine``: :func:`run` on ``argv`` (``--bundle`` required)."""
    p = argparse.ArgumentParser(prog="instancevg-runtime build-engine", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
