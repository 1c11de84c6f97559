"""`instancevg` command line: make-data, train, eval, ground.

Every user-facing failure (missing or corrupt image, empty expression, unreadable checkpoint,
missing dataset, missing model package: any :class:`~instancevg.runtime.errors.InstanceVGError`,
``ValueError`` or ``OSError``) prints one line ``instancevg: error: ...`` and exits with status 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from pathlib import Path


def _cmd_make_data(args) -> int:
    if args.from_coco:
        from .data.coco_to_grefcoco import write_grefcoco_from_coco

        if not args.images:
            raise ValueError("--from-coco needs --images DIR (the folder the images' file_name is relative to)")
        write_grefcoco_from_coco(args.from_coco, args.images, args.out, split_file=args.split_file, seed=args.seed)
        return 0
    from .data.make_data import make_data

    path = make_data(args.out, seed=args.seed, n_train=args.n_train, n_val=args.n_val, n_test=args.n_test)
    print(f"wrote {path}")
    return 0


# `train` flags that map to a TrainConfig field of the same name (their argparse default is None, so
# only flags given on the command line override the recipe and the config file).
_TRAIN_FLAGS = ("preset", "precision", "steps", "epochs", "schedule", "batch_size", "lr", "warmup_steps",
                "val_every", "val_samples", "ckpt_every", "keep_every", "num_workers", "seed", "device", "init_from")


def _cmd_train(args) -> int:
    from .device import resolve_device
    from .training.train_config import TrainConfig, apply_overrides, parse_set, read_config_file, recipe_settings
    from .training.trainer import train

    given = {k: getattr(args, k) for k in _TRAIN_FLAGS if getattr(args, k) is not None}
    if args.resume:
        cfg_path = Path(args.resume) / "train_config.json"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"{cfg_path} not found: --resume takes a run directory made by `instancevg train`")
        cfg = TrainConfig(**json.loads(cfg_path.read_text()))
        extend = {k: v for k, v in given.items() if k in ("steps", "keep_every", "num_workers", "val_every")}
        if "steps" in extend:
            extend["epochs"] = None  # an explicit length replaces an epoch count
        cfg = apply_overrides(dataclasses.replace(cfg, out=args.resume), {**extend, **parse_set(args.set or [])})
        resolve_device(cfg.device)  # an unknown or unavailable device fails here, in one line
        train(cfg, resume=True, stop_at=args.stop_at, time_limit_s=_minutes(args.time_limit_min))
        return 0
    if not args.data or not args.out:
        raise ValueError("train needs --data SPEC and --out RUN (or --resume RUN)")
    cfg = TrainConfig(data=args.data, val_data=args.val_data or [], out=args.out)
    layers = [recipe_settings(args.recipe) if args.recipe else {},
              read_config_file(args.config) if args.config else {}, given, parse_set(args.set or [])]
    for overrides in layers:  # later wins: recipe < --config file < flags < --set
        cfg = apply_overrides(cfg, overrides)
    resolve_device(cfg.device)
    train(cfg, stop_at=args.stop_at, time_limit_s=_minutes(args.time_limit_min))
    return 0


def _minutes(value: float | None) -> float | None:
    """--time-limit-min in seconds. Raises ValueError when it is not positive."""
    if value is None:
        return None
    if value <= 0:
        raise ValueError(f"--time-limit-min must be positive, got {value}")
    return 60.0 * value


def _cmd_eval(args) -> int:
    from .atomic_io import atomic_write_json
    from .api import DEFAULT_WEIGHTS
    from .checkpoint import load_model
    from .data.sources import DataSpec, eval_dataset
    from .device import resolve_device
    from .evaluation.evaluate import evaluate, format_table

    device = resolve_device(args.device)
    spec = DataSpec.parse(args.data)
    checkpoint = args.checkpoint or DEFAULT_WEIGHTS
    model = load_model(checkpoint, device)
    if args.consistency:
        model.config = dataclasses.replace(model.config, consistency=args.consistency)
    data = eval_dataset(spec, model.config, args.split, limit=args.limit)
    metrics = evaluate(model, data, batch_size=args.batch_size, device=device, num_workers=args.num_workers)
    print(format_table(metrics))
    if metrics["REC per category"]:
        rows = sorted(metrics["REC per category"].items(), key=lambda kv: -kv[1]["n"])
        print("REC Acc@0.5 by category (single-target samples): "
              + ", ".join(f"{c} {100 * v['Acc@0.5']:.0f}% (n={v['n']})" for c, v in rows))
    if args.out:
        out = Path(args.out)
    elif spec.kind == "procedural":
        out = Path(spec.path) / f"metrics_{args.split}.json"
    else:
        out = Path("runs") / "eval" / f"metrics_{spec.kind}_{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, {"checkpoint": str(checkpoint), "data": str(spec), "split": args.split, **metrics})
    print(f"wrote {out}")
    return 0


def _overlay_paths(out: str, n: int) -> list[Path]:
    """One overlay path per expression: ``out`` itself for one, ``stem-1.png``... for several."""
    out = Path(out)
    return [out] if n == 1 else [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, n + 1)]


def _cmd_ground(args) -> int:
    from .api import DEFAULT_WEIGHTS, InstanceVG, image_array
    from .device import resolve_device
    from .overlay import draw_overlay, save_overlay
    from .runtime.result import ground_document
    from .runtime.expressions import check_expression

    device = resolve_device(args.device)
    for i, text in enumerate(args.text, 1):
        check_expression(text, "--text" if len(args.text) == 1 else f"--text {i}")
    image = image_array(args.image)
    model = InstanceVG.from_pretrained(args.checkpoint, device=device)
    results = model.ground_many(image, args.text)  # one backbone pass for all expressions
    if args.json:
        doc = ground_document(results, args.image, args.checkpoint or DEFAULT_WEIGHTS)
        print(json.dumps(doc, indent=2))
    else:
        for result in results:
            _print_result(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        for result, out in zip(results, _overlay_paths(args.out, len(results))):
            path = save_overlay(out, draw_overlay(image, result))
            if not args.json:
                print(f"overlay written to {path}")
    return 0


def _print_result(result) -> None:
    """The text form of one GroundingResult: "no target" or one line per instance."""
    if result.no_target:
        print(f'"{result.text}": no target')
        return
    print(f'"{result.text}": {len(result)} instance(s)')
    for i, inst in enumerate(result.to_dict()["instances"]):
        x0, y0, x1, y1 = inst["box_xyxy"]
        print(f"  [{i}] box=({x0:.1f}, {y0:.1f}, {x1:.1f}, {y1:.1f}) score={inst['score']:.3f} "
              f"mask_area={inst['mask_area']} px")


def _cmd_pack(args) -> int:
    import torch

    from .checkpoint import build_model, load_model, save_model

    paths = [str(c) for c in args.checkpoint]
    if len(paths) == 1:
        model, source, what = load_model(paths[0]), paths[0], ""
    else:
        from .training.weight_averaging import average_checkpoints

        what = f", average of {len(paths)} checkpoints"
        config, state = average_checkpoints(paths)
        model, source = build_model(config, state, source=what[2:]), paths
    if args.consistency:
        import dataclasses

        model.config = dataclasses.replace(model.config, consistency=args.consistency)
    save_model(model, args.out, dtype=torch.float16 if args.fp16 else None, extra={"source": source})
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 2**20:.1f} MiB{what})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the `instancevg` command."""
    from .config import PRESETS
    from .runtime.consistency import CONSISTENCY_RULES
    from .training.train_config import RECIPES

    from . import __version__

    p = argparse.ArgumentParser(prog="instancevg", description="Generalized visual grounding (InstanceVG-edge): "
                                "every object a phrase refers to (zero, one or many) as boxes, scores and masks.")
    p.add_argument("--version", action="version", version=f"instancevg {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("ground", help="ground an expression in an image with the shipped (or a given) model",
                       description="Ground one or more referring expressions in one image. Prints each kept "
                                   "instance (box xyxy in pixels, score, mask area) or 'no target'; --json prints "
                                   "one document of schema instancevg.ground/1.")
    g.add_argument("--image", required=True, help="JPEG/PNG/... file")
    g.add_argument("--text", required=True, action="append",
                   help="referring expression; repeat for several in the same image (one backbone pass)")
    g.add_argument("--out", help="write an overlay PNG here, creating its folder (several expressions: NAME-1.png, "
                                 "NAME-2.png, ...); default: no overlay")
    g.add_argument("--json", action="store_true",
                   help='print {"schema": "instancevg.ground/1", "image", "checkpoint", "results": [one per --text]}')
    g.add_argument("--checkpoint", help="model .safetensors or training checkpoint dir (default: shipped model)")
    g.add_argument("--device", default="auto", help="auto (default: cuda when available), cpu, cuda or cuda:N")
    g.set_defaults(func=_cmd_ground)

    m = sub.add_parser("make-data", help="write the procedural GREC/GRES benchmark, or grounding data from COCO labels",
                       description="Without --from-coco: the procedural benchmark (gRefCOCO-style records in "
                                   "OUT/dataset.json). With --from-coco: a COCO instances file written as a gRefCOCO "
                                   "dataset (OUT/grefcoco/grefs(unc).json) with generated expressions.")
    m.add_argument("--out", required=True, help="output directory")
    m.add_argument("--seed", type=int, default=0, help="seed of the scenes / expressions (default 0)")
    m.add_argument("--n-train", type=int, default=0, help="procedural train records to write (default 0: drawn on "
                                                          "the fly in training)")
    m.add_argument("--n-val", type=int, default=500, help="procedural val records (default 500)")
    m.add_argument("--n-test", type=int, default=1000, help="procedural test records (default 1000)")
    m.add_argument("--from-coco", metavar="INSTANCES.json", help="COCO instances file to turn into gRefCOCO format")
    m.add_argument("--images", metavar="DIR", help="with --from-coco: folder the images' file_name is relative to")
    m.add_argument("--split-file", metavar="S", help="with --from-coco: {split: [image ids]} JSON (default: "
                                                     "split.json beside the instances file, else one split 'all')")
    m.set_defaults(func=_cmd_make_data)

    t = sub.add_parser("train", help="train (or --resume) a model",
                       description="Train on one source or a weighted mixture (--data, repeatable), validating on "
                                   "each source's val split, with atomic checkpoints in RUN/checkpoints. Settings: "
                                   "defaults < --recipe < --config < flags < --set. --resume RUN continues exactly.")
    t.add_argument("--data", action="append", metavar="SPEC",
                   help="training source KIND:PATH[:EXTRA][@WEIGHT], repeat for a weighted mixture; KIND is one of "
                        "grefcoco, refcoco, refcoco+, refcocog, refzom, coco, copy-paste, procedural (a bare "
                        "directory with dataset.json is procedural)")
    t.add_argument("--val-data", action="append", metavar="SPEC",
                   help="validation source (repeatable; default: the val split of each --data source)")
    t.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                   help="autocast precision (default auto: bf16 on CUDA and on CPUs with AVX-512 BF16, else fp32)")
    t.add_argument("--out", help="run directory")
    t.add_argument("--resume", metavar="RUN",
                   help="continue RUN exactly; with --steps N it is extended to N steps (also --keep-every, --set)")
    t.add_argument("--recipe", choices=sorted(RECIPES),
                   help="named recipe (instancevg-grefcoco: the official InstanceVG gRefCOCO settings); "
                        "--config, flags and --set override it")
    t.add_argument("--config", metavar="FILE.yaml", help="YAML mapping of TrainConfig / ModelConfig fields")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="set any TrainConfig or ModelConfig field (value read as YAML), e.g. --set mask_dim=256 "
                        "--set train_text_layers=2; repeatable, wins over everything else")
    t.add_argument("--preset", choices=sorted(PRESETS), help="model preset (default edge)")
    t.add_argument("--steps", type=int, help="training steps (default 20000)")
    t.add_argument("--epochs", type=float, help="train this many epochs of finite sources instead of --steps")
    t.add_argument("--schedule", choices=["step", "cosine"],
                   help="after warm-up: step decay x0.1 at 80%% of the steps (default) or cosine")
    t.add_argument("--batch-size", type=int, help="samples per step and process (default 8)")
    t.add_argument("--lr", type=float, help="head learning rate (default 5e-4; backbone x0.1)")
    t.add_argument("--warmup-steps", type=int, help="linear warm-up steps (default 300)")
    t.add_argument("--val-every", type=int, help="validate every N steps (default 500)")
    t.add_argument("--val-samples", type=int, help="samples per validation source (default 200)")
    t.add_argument("--ckpt-every", type=int, help="checkpoint every N steps (default 250)")
    t.add_argument("--keep-every", type=int,
                   help="also keep the checkpoints at multiples of this step (for `pack` averaging; also with "
                        "--resume); default 0: last 2 only")
    t.add_argument("--num-workers", type=int, help="data loader workers (default 2)")
    t.add_argument("--seed", type=int, help="seed of the sample stream and the initialisation (default 0)")
    t.add_argument("--device", help="auto (default: cuda when available), cpu, cuda or cuda:N")
    t.add_argument("--init-from", help="start from these model weights (.safetensors)")
    t.add_argument("--stop-at", type=int, help="stop after this global step (resume later with --resume)")
    t.add_argument("--time-limit-min", type=float,
                   help="stop (with a checkpoint) at the first step ending after this many minutes of training")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint (default: the shipped model) on a split",
                       description="GREC Precision@(F1=1, IoU>=0.5) and N-acc, GRES cIoU / gIoU / N-acc / T-acc, "
                                   "REC Acc@0.5 (overall and per category) and the no-target false positives of a "
                                   "model on one split of a data source; writes the metrics as JSON.")
    e.add_argument("--checkpoint", help="model .safetensors or training checkpoint dir (default: shipped model)")
    e.add_argument("--data", required=True, metavar="SPEC",
                   help="KIND:PATH[:EXTRA] as for train (a bare directory with dataset.json is procedural)")
    e.add_argument("--split", default="test",
                   help="split name: val, test (procedural, RefCOCOg), testA, testB (RefCOCO/+, gRefCOCO), "
                        "train, or all (a COCO file without split.json); default test")
    e.add_argument("--limit", type=int, help="evaluate the first N samples only (default: the whole split)")
    e.add_argument("--batch-size", type=int, default=8, help="samples per forward pass (default 8)")
    e.add_argument("--num-workers", type=int, default=0, help="data loader workers (default 0)")
    e.add_argument("--device", default="auto", help="auto (default: cuda when available), cpu, cuda or cuda:N")
    e.add_argument("--consistency", choices=list(CONSISTENCY_RULES),
                   help="box/mask consistency rule of the post-processing (default: the checkpoint's config)")
    e.add_argument("--out", help="metrics JSON path (default: DIR/metrics_SPLIT.json for procedural data, "
                                 "runs/eval/metrics_KIND_SPLIT.json otherwise)")
    e.set_defaults(func=_cmd_eval)

    k = sub.add_parser("pack", help="turn a training checkpoint (or the average of several) into a release "
                                    "weights file",
                       description="Write model weights (safetensors, config inside) from a training checkpoint, "
                                   "or from the weight average of several checkpoints of one run.")
    k.add_argument("--checkpoint", required=True, action="append",
                   help="training checkpoint dir or model .safetensors; repeat to average the weights of several "
                        "checkpoints of one run (instancevg.training.weight_averaging)")
    k.add_argument("--out", required=True, help="output .safetensors")
    k.add_argument("--fp16", action="store_true", help="store floating weights as fp16")
    k.add_argument("--consistency", choices=list(CONSISTENCY_RULES),
                   help="box/mask consistency rule written into the file's config (default: the checkpoint's)")
    k.set_defaults(func=_cmd_pack)
    return p


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings on the command line as ``instancevg: warning: ...``, one line each."""
    print(f"instancevg: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `instancevg` console script."""
    from .runtime.errors import CLI_ERRORS, report_error

    args = build_parser().parse_args(argv)
    shown, warnings.showwarning = warnings.showwarning, _one_line_warning
    try:
        return args.func(args)
    except CLI_ERRORS as exc:  # InstanceVGError (CheckpointError, BackboneUnavailableError, ...), ValueError, OSError
        return report_error(exc, prog="instancevg")
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":
    sys.exit(main())
