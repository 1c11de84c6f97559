"""`instancevg eval`: the metrics of a model on one split of a data source, printed and written as JSON."""
from __future__ import annotations

import dataclasses
from pathlib import Path


def add_parser(sub) -> None:
    """Add the subcommand to the `instancevg` subparsers ``sub``."""
    from ..data.sources import kinds_usage
    from ..runtime.consistency import CONSISTENCY_RULES

    e = sub.add_parser("eval", help="evaluate a checkpoint (default: the shipped model) on a split",
                       description="GREC Precision@(F1=1, IoU>=0.5) and N-acc, GRES cIoU / gIoU / N-acc / T-acc, "
                                   "REC Acc@0.5 (overall and per category) and the no-target false positives of a "
                                   "model on one split of a data source; writes the metrics as JSON.")
    e.add_argument("--checkpoint", help="model .safetensors or training checkpoint dir (default: shipped model)")
    e.add_argument("--data", required=True, metavar="SPEC",
                   help=f"KIND:PATH[:EXTRA] as for train: {kinds_usage()} (a bare directory with dataset.json is "
                        "procedural:DIR; a bare 'procedural' is procedural:0)")
    e.add_argument("--split", default="test",
                   help="split name: val, test (procedural, parts, RefCOCOg), testA, testB (RefCOCO/+, gRefCOCO), "
                        "train, or all (a COCO file without split.json); default test")
    e.add_argument("--limit", type=int, help="evaluate the first N samples only (default: the whole split)")
    e.add_argument("--batch-size", type=int, default=8, help="samples per forward pass (default 8)")
    e.add_argument("--num-workers", type=int, default=0, help="data loader workers (default 0)")
    e.add_argument("--device", default="auto", help="auto (default: cuda when available), cpu, cuda or cuda:N")
    e.add_argument("--consistency", choices=list(CONSISTENCY_RULES),
                   help="box/mask consistency rule of the post-processing (default: the checkpoint's config)")
    e.add_argument("--out", help="metrics JSON path (default: DIR/metrics_SPLIT.json for procedural:DIR, "
                                 "runs/eval/metrics_KIND_SPLIT.json otherwise)")
    e.set_defaults(func=run)


def run(args) -> int:
    """Run the subcommand; returns the exit status (errors propagate to :func:`instancevg.cli.main`)."""
    from ..runtime.atomic_io import atomic_write_json
    from ..api import DEFAULT_WEIGHTS
    from ..checkpoint import load_model
    from ..data.sources import DataSpec, eval_dataset, metrics_dir
    from ..device import resolve_device
    from ..evaluation.evaluate import evaluate, format_table

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
    home = metrics_dir(spec)
    if args.out:
        out = Path(args.out)
    elif home is not None:
        out = home / f"metrics_{args.split}.json"
    else:
        out = Path("runs") / "eval" / f"metrics_{spec.kind}_{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, {"checkpoint": str(checkpoint), "data": str(spec), "split": args.split, **metrics})
    print(f"wrote {out}")
    return 0
