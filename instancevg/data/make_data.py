"""Write a procedural benchmark to disk as PNG images + one gRefCOCO-style ``dataset.json``.

Layout of ``OUT``::

    OUT/dataset.json
    OUT/images/train/train-000000.png
    OUT/images/val/val-000000.png
    OUT/images/test/test-000000.png

``dataset.json``::

    {"info": {"generator": "instancevg.procedural", "version": 1, "seed": S,
              "n_train": ..., "n_val": ..., "n_test": ..., "held_out_combos": [[color, shape], ...]},
     "train": [record, ...], "val": [...], "test": [...]}

Each record (one expression per image, as rendered by
:func:`instancevg.data.generators.procedural.render_sample`)::

    {"image_id": "test-000042", "file_name": "images/test/test-000042.png", "width": W, "height": H,
     "expressions": ["the red circle"], "kind": "attribute", "held_out_referent": false,
     "annotations": [{"bbox": [x, y, w, h], "segmentation": {"size": [H, W], "counts": "..."},
                      "area": A}]}

``annotations`` lists the referred objects (empty for no-target); ``bbox`` is xywh in pixels, tight
around the visible mask; ``segmentation`` is a compressed COCO RLE with ``counts`` as str; ``area``
is the mask area in pixels. ``kind`` (expression kind) and ``held_out_referent`` (a referent is a
held-out colour/shape pair) are extra fields for per-kind evaluation; loaders may ignore them.

The same seed and sizes give byte-identical files (JSON with sorted keys and no timestamps, PNG from
deterministic pixels). Every file is written to a temporary name and moved into place.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_utils
from tqdm import tqdm

from instancevg.runtime.atomic_io import atomic_write_bytes
from instancevg.data.generators.procedural import HELD_OUT_COMBOS, Sample, render_sample

__all__ = ["make_data", "sample_record", "DATASET_VERSION"]

DATASET_VERSION = 1


def sample_record(sample: Sample, file_name: str) -> dict:
    """gRefCOCO-style JSON record of one rendered sample (see the module docstring for the schema).

    Args:
        sample: a rendered :class:`~instancevg.data.generators.procedural.Sample`.
        file_name: image path relative to the dataset directory (forward slashes).

    Returns:
        A JSON-serialisable dict; bbox xywh in pixels, segmentation compressed RLE (str counts).
    """
    h, w = sample.image.shape[:2]
    annotations = []
    for box, mask in zip(sample.boxes, sample.masks):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        x1, y1, x2, y2 = (float(v) for v in box)
        annotations.append(
            {
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "segmentation": {"size": [int(h), int(w)], "counts": rle["counts"].decode("ascii")},
                "area": int(mask.sum()),
            }
        )
    return {
        "image_id": sample.sample_id,
        "file_name": file_name,
        "width": int(w),
        "height": int(h),
        "expressions": [sample.expression],
        "kind": sample.kind,
        "held_out_referent": bool(any(sample.objects[i].held_out for i in sample.referents)),
        "annotations": annotations,
    }


def make_data(
    out: str | Path,
    seed: int,
    n_train: int,
    n_val: int,
    n_test: int,
    progress: bool = True,
) -> Path:
    """Render ``n_train``/``n_val``/``n_test`` procedural samples into the directory ``out``.

    Args:
        out: output directory (created if missing; existing files with the same names are replaced).
        seed: dataset seed passed to :func:`~instancevg.data.generators.procedural.render_sample`.
        n_train, n_val, n_test: number of samples per split (>= 0); sample ``i`` of a split is
            ``render_sample(seed, i, split)``.
        progress: show a tqdm progress bar.

    Returns:
        Path of the written ``dataset.json``.

    Raises:
        ValueError: negative seed or sample count.
        OSError: the directory or a file cannot be written.
    """
    counts = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
    if seed < 0 or any(n < 0 for n in counts.values()):
        raise ValueError(f"seed and sample counts must be non-negative, got seed={seed}, counts={counts}")
    out = Path(out)
    dataset: dict = {
        "info": {
            "generator": "instancevg.procedural",
            "version": DATASET_VERSION,
            "seed": int(seed),
            "n_train": counts["train"],
            "n_val": counts["val"],
            "n_test": counts["test"],
            "held_out_combos": [list(p) for p in sorted(HELD_OUT_COMBOS)],
        }
    }
    bar = tqdm(total=sum(counts.values()), desc=f"make-data {out}", unit="img", disable=not progress)
    for split, n in counts.items():
        image_dir = out / "images" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        records = []
        for index in range(n):
            sample = render_sample(seed, index, split)
            file_name = f"images/{split}/{sample.sample_id}.png"
            ok, png = cv2.imencode(".png", cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR))
            if not ok:  # pragma: no cover
                raise OSError(f"PNG encoding failed for {sample.sample_id}")
            atomic_write_bytes(out / file_name, png.tobytes())
            records.append(sample_record(sample, file_name))
            bar.update(1)
        dataset[split] = records
    bar.close()
    json_path = out / "dataset.json"
    atomic_write_bytes(json_path, json.dumps(dataset, sort_keys=True, indent=1).encode("utf-8") + b"\n")
    return json_path
