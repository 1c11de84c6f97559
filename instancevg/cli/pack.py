"""`instancevg pack`: a release weights file from a training checkpoint or the average of several."""
from __future__ import annotations

import dataclasses
from pathlib import Path


def add_parser(sub) -> None:
    """Add the subcommand to the `instancevg` subparsers ``sub``."""
    from ..runtime.consistency import CONSISTENCY_RULES

    k = sub.add_parser("pack", help="turn a training checkpoint (or the average of several) into a release "
                                    "weights file",
                       description="Write model weights (safetensors, config inside) from a training checkpoint, "
                                   "or from the weight average of several checkpoints of one run. Training-only "
                                   "parts (the Mask Grounding head) are left out.")
    k.add_argument("--checkpoint", required=True, action="append",
                   help="training checkpoint dir or model .safetensors; repeat to average the weights of several "
                        "checkpoints of one run (instancevg.training.weight_averaging)")
    k.add_argument("--out", required=True, help="output .safetensors")
    k.add_argument("--fp16", action="store_true", help="store floating weights as fp16")
    k.add_argument("--consistency", choices=list(CONSISTENCY_RULES),
                   help="box/mask consistency rule written into the file's config (default: the checkpoint's)")
    k.set_defaults(func=run)


def run(args) -> int:
    """Run the subcommand; returns the exit status (errors propagate to :func:`instancevg.cli.main`)."""
    import torch

    from ..checkpoint import build_model, load_model, save_model

    paths = [str(c) for c in args.checkpoint]
    if len(paths) == 1:
        model, source, what = load_model(paths[0]), paths[0], ""
    else:
        from ..training.weight_averaging import average_checkpoints

        what = f", average of {len(paths)} checkpoints"
        config, state = average_checkpoints(paths)
        model, source = build_model(config, state, source=what[2:]), paths
    if args.consistency:
        model.config = dataclasses.replace(model.config, consistency=args.consistency)
    if model.mask_grounding is not None:  # training-only head: not part of a release file
        model.mask_grounding = None
        model.config = dataclasses.replace(model.config, mask_grounding=False)
    save_model(model, args.out, dtype=torch.float16 if args.fp16 else None, extra={"source": source})
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 2**20:.1f} MiB{what})")
    return 0
