"""GREC / GRES accuracy of a bundle under the torch-free runtime, on one split of a data source.

    python export/evaluate_bundle.py --bundle BUNDLE [--data procedural|SPEC] [--split test] [--limit N]

Scored by the same :class:`instancevg.evaluation.scorer.GroundingScorer` as ``instancevg eval``
(GREC, GRES, REC, RES, no-target false positives, instance consistency; the same metric keys and
headline); images are fed as RGB arrays (``channel_order="rgb"``). The runtime reports no reference
points, so the consistency figures have no "point in mask".
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from instancevg.data.sources import PROCEDURAL_SPLIT_SIZES  # noqa: F401  (re-exported)
from instancevg.export.parity import PROCEDURAL


def load_samples(data: str | Path = PROCEDURAL, split: str = "test", limit: int | None = None):
    """The samples of one split of a data SPEC, before preprocessing, as ``instancevg eval --data
    SPEC --split SPLIT --limit N`` reads them (:func:`instancevg.data.sources.eval_samples`).

    Args:
        data: a data SPEC (:mod:`instancevg.data.sources`): ``"procedural"`` (= ``procedural:0``,
            rendered in memory: the samples ``instancevg make-data --seed 0`` writes, by default
            :data:`~instancevg.data.sources.PROCEDURAL_SPLIT_SIZES` per split), ``procedural:SEED``,
            a directory holding ``dataset.json``, ``coco:INSTANCES.json[:IMAGES]``, ``grefcoco:ROOT``...
        split: split name. limit: the first ``limit`` samples (default: the whole split).

    Returns:
        An iterator of ``(rgb uint8 (H, W, 3), expression, gt boxes (K, 4) float32 xyxy pixels,
        gt masks (K, H, W) bool)``.

    Raises:
        ValueError: a bad SPEC (a bare path without ``dataset.json`` included), an unknown split,
            or a source without evaluation data (copy-paste). FileNotFoundError: missing files.
    """
    from instancevg.data.sources import DataSpec, eval_samples

    return eval_samples(DataSpec.parse(str(data)), split, limit)


def evaluate_bundle(bundle: str | Path, data: str | Path = PROCEDURAL, split: str = "test", limit: int | None = None,
                    backend: str = "onnxruntime", threads: int | None = None) -> dict:
    """Evaluate a bundle; returns :meth:`instancevg.evaluation.scorer.GroundingScorer.compute`'s dict.

    Args:
        data: a data SPEC (see :func:`load_samples`; default ``"procedural"``, the procedural
            benchmark rendered in memory from seed 0, 1000 test samples unless ``limit``).

    Raises:
        ValueError / FileNotFoundError: a bad SPEC or missing data (see :func:`load_samples`),
            before the bundle loads. BundleError: bad bundle.
    """
    from instancevg.runtime import Grounder

    from instancevg.evaluation.scorer import GroundingScorer

    samples = load_samples(data, split, limit)
    first = next(samples, None)  # a missing data directory fails before the bundle loads
    g = Grounder.from_bundle(bundle, backend=backend, threads=threads)
    scorer = GroundingScorer()
    for rgb, text, boxes, masks in itertools.chain([first] if first is not None else [], samples):
        r = g.ground(rgb, text, channel_order="rgb")
        gt_union = masks.any(0) if len(masks) else np.zeros(rgb.shape[:2], dtype=bool)
        scorer.update(r, boxes, gt_union)
    return scorer.compute()


def main(argv: list[str] | None = None) -> int:
    """CLI: prints the headline metrics as percentages (and JSON with --json)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", required=True, action="append", help="repeat to compare bundles")
    p.add_argument("--data", default=PROCEDURAL,
                   help="data SPEC as for `instancevg eval`: procedural (default: procedural:0, rendered in memory), "
                        "procedural:SEED, a make-data directory, coco:INSTANCES.json:IMAGES, grefcoco:ROOT, ...")
    p.add_argument("--split", default="test", help="split (default test)")
    p.add_argument("--limit", type=int, default=None, help="first N samples (default: the whole split)")
    p.add_argument("--json", default=None, help="also write all metrics to this JSON file")
    args = p.parse_args(argv)
    results = {}
    from instancevg.evaluation.scorer import headline
    from instancevg.runtime.errors import CLI_ERRORS, report_error

    for b in args.bundle:
        try:
            m = evaluate_bundle(b, args.data, args.split, args.limit)
        except CLI_ERRORS as exc:  # BundleError, FileNotFoundError, ValueError, ...
            return report_error(exc)
        results[b] = m
        print(f"{b} ({m['n_samples']} samples): "
              + ", ".join(f"{k} {100 * v:.2f}" for k, v in headline(m).items()))
    if args.json:
        from instancevg.runtime.atomic_io import atomic_write_json

        try:
            atomic_write_json(args.json, json.loads(json.dumps(results, default=float)))
        except OSError as exc:
            return report_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
