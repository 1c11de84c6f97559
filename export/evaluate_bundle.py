"""GREC / GRES accuracy of a bundle under the torch-free runtime, on a gRefCOCO-format split.

    python export/evaluate_bundle.py --bundle BUNDLE [--data procedural|DIR] [--split test] [--limit N]

Scored by the same :class:`instancevg.evaluation.scorer.GroundingScorer` as ``instancevg eval``
(GREC, GRES, REC, RES, no-target false positives, instance consistency; the same metric keys and
headline); images are fed as BGR frames as a camera would. The runtime reports no reference
points, so the consistency figures have no "point in mask".
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from instancevg.export.parity import PROCEDURAL


PROCEDURAL_SPLIT_SIZES = {"train": 1000, "val": 500, "test": 1000}  # make-data's defaults


def _samples(data: str, split: str, limit: int | None):
    """``(rgb uint8 (H, W, 3), expression, gt boxes (K, 4) xyxy pixels, gt masks (K, H, W) bool)``."""
    if data == PROCEDURAL:
        from instancevg.data.procedural import render_sample

        for i in range(limit if limit is not None else PROCEDURAL_SPLIT_SIZES.get(split, 1000)):
            s = render_sample(0, i, split)
            yield s.image, s.expression, s.boxes, s.masks
        return
    from instancevg.data.record_json import expand_expressions, load_grounding_json
    from instancevg.image_io import load_image

    path = Path(data) / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass --data procedural (rendered in memory) or run "
                                f"`instancevg make-data --out {data}`")
    items = expand_expressions(load_grounding_json(path, split))
    for record, text in items[:limit] if limit is not None else items:
        yield load_image(record.image_path), text, record.boxes, record.masks()


def evaluate_bundle(bundle: str | Path, data: str | Path = PROCEDURAL, split: str = "test", limit: int | None = None,
                    backend: str = "onnxruntime", threads: int | None = None) -> dict:
    """Evaluate a bundle; returns :meth:`instancevg.evaluation.scorer.GroundingScorer.compute`'s dict.

    Args:
        data: ``"procedural"`` (the procedural benchmark rendered in memory from seed 0, the
            samples ``instancevg make-data --seed 0`` writes; 1000 test samples unless ``limit``)
            or a directory holding ``dataset.json``.

    Raises:
        FileNotFoundError: no ``dataset.json`` in ``data``. BundleError: bad bundle.
    """
    from instancevg.runtime import Grounder

    from instancevg.evaluation.scorer import GroundingScorer

    samples = _samples(str(data), split, limit)
    first = next(samples, None)  # a missing data directory fails before the bundle loads
    g = Grounder.from_bundle(bundle, backend=backend, threads=threads)
    scorer = GroundingScorer()
    for rgb, text, boxes, masks in itertools.chain([first] if first is not None else [], samples):
        r = g.ground(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), text)[0]
        gt_union = masks.any(0) if len(masks) else np.zeros(rgb.shape[:2], dtype=bool)
        scorer.update(r, boxes, gt_union)
    return scorer.compute()


def main(argv: list[str] | None = None) -> int:
    """CLI: prints the headline metrics as percentages (and JSON with --json)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", required=True, action="append", help="repeat to compare bundles")
    p.add_argument("--data", default=PROCEDURAL,
                   help="procedural (default: rendered in memory, seed 0) or a make-data directory")
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
