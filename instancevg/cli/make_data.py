"""`instancevg make-data`: the procedural benchmark, or gRefCOCO-format data from COCO labels."""
from __future__ import annotations


def add_parser(sub) -> None:
    """Add the subcommand to the `instancevg` subparsers ``sub``."""
    from ..data.sources import PROCEDURAL_SPLIT_SIZES as SIZES

    m = sub.add_parser("make-data", help="write the procedural GREC/GRES benchmark, or grounding data from COCO labels",
                       description="Without --from-coco: the procedural benchmark (gRefCOCO-style records in "
                                   "OUT/dataset.json). With --from-coco: a COCO instances file written as a gRefCOCO "
                                   "dataset (OUT/grefcoco/grefs(unc).json) with generated expressions.")
    m.add_argument("--out", required=True, help="output directory")
    m.add_argument("--seed", type=int, default=0, help="seed of the scenes / expressions (default 0)")
    m.add_argument("--n-train", type=int, default=0, help="procedural train records to write (default 0: drawn on "
                                                          "the fly in training)")
    m.add_argument("--n-val", type=int, default=SIZES["val"],
                   help=f"procedural val records (default {SIZES['val']}, as procedural:SEED evaluates)")
    m.add_argument("--n-test", type=int, default=SIZES["test"],
                   help=f"procedural test records (default {SIZES['test']}, as procedural:SEED evaluates)")
    m.add_argument("--from-coco", metavar="INSTANCES.json", help="COCO instances file to turn into gRefCOCO format")
    m.add_argument("--images", metavar="DIR", help="with --from-coco: folder the images' file_name is relative to")
    m.add_argument("--split-file", metavar="S", help="with --from-coco: {split: [image ids]} JSON (default: "
                                                     "split.json beside the instances file, else one split 'all')")
    m.set_defaults(func=run)


def run(args) -> int:
    """Run the subcommand; returns the exit status (errors propagate to :func:`instancevg.cli.main`)."""
    if args.from_coco:
        from ..data.coco_to_grefcoco import write_grefcoco_from_coco

        if not args.images:
            raise ValueError("--from-coco needs --images DIR (the folder the images' file_name is relative to)")
        write_grefcoco_from_coco(args.from_coco, args.images, args.out, split_file=args.split_file, seed=args.seed)
        return 0
    from ..data.make_data import make_data

    path = make_data(args.out, seed=args.seed, n_train=args.n_train, n_val=args.n_val, n_test=args.n_test)
    print(f"wrote {path}")
    return 0
