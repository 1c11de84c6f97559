"""Export an InstanceVG-edge model to an ONNX bundle (docs/DESIGN.md "Edge path").

    python export/export_onnx.py --out BUNDLE [--checkpoint C] [--opset 18] [--no-slim] [--check]

writes ``BUNDLE/{text_encoder.onnx, grounder.onnx, tokenizer.json, manifest.json}`` (layout in
``runtime/bundle.py``). Exporter: ``torch.onnx.export(..., dynamo=True)`` (torch.export +
onnxscript). The legacy TorchScript exporter was tried and rejected: it bakes the traced text
length into the ``nn.MultiheadAttention`` reshapes, so a graph traced at L=7 fails at any other
length; the dynamo graph keeps batch and text length symbolic and is ~3x smaller. MSDeformAttn
traces through the grid_sample reference (``kernels/msda/reference.py``). Each graph is checked
with ``onnx.checker`` and simplified with onnxslim; the bundle is written atomically.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import warnings
from pathlib import Path

import onnx
import torch
from instancevg.export.gelu_rewrite import reorder_gelu_for_onnxruntime
from instancevg.export.graphs import (
    GROUNDER_INPUTS,
    GROUNDER_OUTPUTS,
    TEXT_INPUTS,
    TEXT_OUTPUTS,
    GrounderGraph,
    TextEncoderGraph,
)
from instancevg.runtime.manifest import GraphSpec, InputSpec, Manifest, sha256_file
from instancevg.runtime.errors import CLI_ERRORS, InstanceVGError, report_error

from instancevg.runtime.atomic_io import atomic_directory

DEFAULT_OPSET = 18
# Traced at batch 2 so that batch is not specialised to 1; at two lengths' max so L stays symbolic.
TRACE_TEXTS = ("the red circle to the left of the blue square", "all stars")

DYNAMIC_AXES = {
    "text_encoder": {"input_ids": {0: "batch", 1: "text_len"}, "attention_mask": {0: "batch", 1: "text_len"},
                     "text_features": {0: "batch", 1: "text_len"}},
    "grounder": {"image": {0: "image_batch"}, "text_features": {0: "batch", 1: "text_len"},
                 "text_mask": {0: "batch", 1: "text_len"}, "scores": {0: "batch"}, "boxes": {0: "batch"},
                 "instance_mask_logits": {0: "batch"}, "global_mask_logits": {0: "batch"},
                 "existence_logits": {0: "batch"}},
}


class ExportError(InstanceVGError, RuntimeError):
    """The model could not be exported, or an exported graph failed its check."""


def _versions() -> dict:
    import onnxscript
    import onnxslim

    import instancevg

    out = {"torch": torch.__version__, "onnx": onnx.__version__, "onnxscript": onnxscript.__version__,
           "onnxslim": onnxslim.__version__, "instancevg": instancevg.__version__, "python": sys.version.split()[0]}
    try:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return out


def _export_graph(module: torch.nn.Module, args: tuple, names_in, names_out, axes: dict, max_text_len: int,
                  opset: int, slim: bool) -> onnx.ModelProto:
    """torch.onnx dynamo export of one graph with symbolic batch / text length, checked and slimmed."""
    from torch.export import Dim

    dims = {"batch": Dim("batch", min=1, max=1024), "image_batch": Dim("image_batch", min=1, max=1024),
            "text_len": Dim("text_len", min=2, max=max_text_len)}
    dynamic_shapes = {name: {ax: dims[sym] for ax, sym in axes[name].items()} for name in names_in}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(module, args, None, input_names=list(names_in), output_names=list(names_out),
                                 opset_version=opset, dynamo=True, dynamic_shapes=dynamic_shapes, optimize=True,
                                 verbose=False)
    model = prog.model_proto
    if slim:
        import onnxslim

        model = onnxslim.slim(model)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported graph failed onnx.checker: {exc}") from exc
    got = [i.name for i in model.graph.input]
    if got != list(names_in):
        raise ExportError(f"exported inputs {got}, expected {list(names_in)}")
    symbol_of: dict[str, str] = {}  # ONNX dim_param -> our axis name
    for inp in model.graph.input:  # the symbolic axes must survive export and slimming, each its own
        dims_ = inp.type.tensor_type.shape.dim
        for ax, sym in axes[inp.name].items():
            param = dims_[ax].dim_param
            if not param:
                raise ExportError(f"input {inp.name} axis {ax} is static ({dims_[ax].dim_value}) after export")
            if symbol_of.setdefault(param, sym) != sym:
                raise ExportError(f"axes {symbol_of[param]!r} and {sym!r} were merged into one symbol {param!r}")
    return model


def export_bundle(model, out: str | Path, opset: int = DEFAULT_OPSET, slim: bool = True,
                  checkpoint: str | Path | None = None) -> Path:
    """Export ``model`` to a bundle directory at ``out`` (atomic: a failure leaves ``out`` as it was).

    Args:
        model: an :class:`instancevg.modeling.model.InstanceVGModel` (float32; put in eval mode here).
        out: bundle directory to create or replace.
        opset: ONNX opset (>= 17; default 18, the dynamo exporter's native opset).
        slim: simplify both graphs with onnxslim.
        checkpoint: the checkpoint file the model came from (recorded with its SHA-256).

    Returns:
        the bundle path.

    Raises:
        ValueError: opset < 17. ExportError: export or onnx.checker failure.
        NotADirectoryError: ``out`` or a folder above it is a file (missing folders are created).
    """
    from instancevg.modeling.text_encoder import TextTokenizer

    if opset < 17:
        raise ValueError(f"opset must be >= 17 (LayerNormalization, grid_sample), got {opset}")
    out = Path(out)
    cfg = model.config
    model = model.float().eval().cpu()
    tok = TextTokenizer(cfg.max_text_len)
    ids, mask = tok(list(TRACE_TEXTS))
    s = cfg.image_size
    with torch.no_grad():
        feats = model.encode_text(ids, mask)
    image = torch.randn(ids.shape[0], 3, s, s, generator=torch.Generator().manual_seed(0))
    logging.getLogger("onnxscript").setLevel(logging.ERROR)
    with atomic_directory(out) as tmp:
        te = _export_graph(TextEncoderGraph(model), (ids, mask), TEXT_INPUTS, TEXT_OUTPUTS,
                           DYNAMIC_AXES["text_encoder"], cfg.max_text_len, opset, slim)
        gr = _export_graph(GrounderGraph(model), (image, feats, mask), GROUNDER_INPUTS, GROUNDER_OUTPUTS,
                           DYNAMIC_AXES["grounder"], cfg.max_text_len, opset, slim)
        gelus = {"text_encoder": reorder_gelu_for_onnxruntime(te), "grounder": reorder_gelu_for_onnxruntime(gr)}
        onnx.save_model(te, str(tmp / "text_encoder.onnx"))
        onnx.save_model(gr, str(tmp / "grounder.onnx"))
        shutil.copyfile(tok.tokenizer_file, tmp / "tokenizer.json")
        Manifest(
            input=InputSpec(s, tuple(cfg.image_mean), tuple(cfg.image_std)),
            decision=cfg.decision,
            max_text_len=cfg.max_text_len,
            graphs={"text_encoder": GraphSpec("text_encoder.onnx", TEXT_INPUTS, TEXT_OUTPUTS, gelus["text_encoder"]),
                    "grounder": GraphSpec("grounder.onnx", GROUNDER_INPUTS, GROUNDER_OUTPUTS, gelus["grounder"])},
            model={"config": cfg.to_dict(), "checkpoint": str(checkpoint) if checkpoint else None,
                   "checkpoint_sha256": sha256_file(checkpoint) if checkpoint and Path(checkpoint).is_file()
                   else None},
            mask_size=cfg.mask_size,
            num_queries=cfg.num_queries,
            text_dim=int(feats.shape[-1]),
            opset=opset,
            exporter="torch.onnx.export(dynamo=True)" + (" + onnxslim" if slim else "")
                     + " + GELU reordered for ONNX Runtime's GeluFusion",
            dynamic_axes=DYNAMIC_AXES,
            versions=_versions(),
        ).write(tmp)
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 on success, 1 when ``--check`` finds a parity
    failure, 2 on a bad checkpoint or data, or an export failure)."""
    from instancevg.api import DEFAULT_WEIGHTS
    from instancevg.checkpoint import load_model

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="bundle directory to write (replaced atomically; folders created)")
    p.add_argument("--checkpoint", default=None, help="model .safetensors or checkpoint dir (default: shipped model)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    p.add_argument("--no-slim", action="store_true", help="skip onnxslim")
    p.add_argument("--check", action="store_true", help="run the PyTorch parity check after export")
    p.add_argument("--data", default="procedural",
                   help="held-out data for --check: procedural (default, = procedural:0: the procedural test split rendered in "
                        "memory), a make-data directory, or a SPEC such as coco:INSTANCES.json:IMAGES")
    p.add_argument("--n", type=int, default=50, help="samples for --check")
    args = p.parse_args(argv)
    ckpt = Path(args.checkpoint) if args.checkpoint else DEFAULT_WEIGHTS
    from instancevg.export.parity import check_parity, format_report, load_test_dataset

    try:
        model = load_model(ckpt, "cpu")
        # load the --check data first, so that a missing data directory fails before the export
        samples = load_test_dataset(model.config, args.data, args.n) if args.check else None
        out = export_bundle(model, args.out, opset=args.opset, slim=not args.no_slim, checkpoint=ckpt)
    except CLI_ERRORS as exc:  # CheckpointError, ExportError, BackboneUnavailableError, ...
        return report_error(exc)
    print(f"wrote {out}")
    if args.check:
        try:
            report = check_parity(model, out, samples)
        except CLI_ERRORS as exc:
            return report_error(exc)
        print(format_report(report))
        return 0 if report["passed"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
