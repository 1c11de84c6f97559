"""`instancevg train`: train or resume a run (settings: defaults < --recipe < --config < flags < --set)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path


def add_parser(sub) -> None:
    """Add the subcommand to the `instancevg` subparsers ``sub``."""
    from ..config import PRESETS
    from ..data.sources import kinds_usage
    from ..training.train_config import RECIPES

    t = sub.add_parser("train", help="train (or --resume) a model",
                       description="Train on one source or a weighted mixture (--data, repeatable), validating on "
                                   "each source's val split, with atomic checkpoints in RUN/checkpoints. Settings: "
                                   "defaults < --recipe < --config < flags < --set. --resume RUN continues exactly.")
    t.add_argument("--data", action="append", metavar="SPEC",
                   help="training source KIND:PATH[:EXTRA][@WEIGHT], repeat for a weighted mixture: "
                        f"{kinds_usage()} (a bare directory with dataset.json is procedural:DIR; a bare "
                        "'procedural' is procedural:0)")
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
    t.add_argument("--init-from", help="start from these model weights (.safetensors); modules the file lacks (an "
                                       "option it was trained without) start fresh and are listed")
    t.add_argument("--stop-at", type=int, help="stop after this global step (resume later with --resume)")
    t.add_argument("--time-limit-min", type=float,
                   help="stop (with a checkpoint) at the first step ending after this many minutes of training")
    t.set_defaults(func=run)


# `train` flags that map to a TrainConfig field of the same name (their argparse default is None, so
# only flags given on the command line override the recipe and the config file).
_TRAIN_FLAGS = ("preset", "precision", "steps", "epochs", "schedule", "batch_size", "lr", "warmup_steps",
                "val_every", "val_samples", "ckpt_every", "keep_every", "num_workers", "seed", "device", "init_from")


def run(args) -> int:
    """Run the subcommand; returns the exit status (errors propagate to :func:`instancevg.cli.main`)."""
    from ..device import resolve_device
    from ..training.train_config import TrainConfig, apply_overrides, parse_set, read_config_file, recipe_settings
    from ..training.trainer import train

    given = {k: getattr(args, k) for k in _TRAIN_FLAGS if getattr(args, k) is not None}
    if args.resume:
        cfg_path = Path(args.resume) / "train_config.json"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"{cfg_path} not found: --resume takes a run directory made by `instancevg train`")
        # runs written before mirroring existed drew no flips: keep their sample stream
        cfg = TrainConfig(**{"hflip": 0.0, **json.loads(cfg_path.read_text())})
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
