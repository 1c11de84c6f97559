"""Write a COCO-format copy whose ``train`` split keeps only N of the source's train photos.

    python tools/coco_subset.py --instances ../shared/data/coco-real/instances.json \
        --n-train 110 --seed 0 --out data/coco-sub110

For a learning curve over the number of real training photos: ``OUT/instances.json`` is the
source file unchanged and ``OUT/split.json`` lists N train image ids and the source's ``val``
ids. The N photos are the first N of one seeded permutation of the source's train ids, so the
subsets of one seed are nested (110 of them lie inside 221). The images stay where they are:
name their folder in the data spec (``coco:OUT/instances.json:IMAGE_DIR``).

Raises SystemExit with a one-line message when the source has no ``split.json``, when that file
is not valid JSON or has no ``train`` split, or when N is not in 1..(number of train photos).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np


def subset_split(split: dict, n_train: int, seed: int) -> dict:
    """The split with ``train`` cut to ``n_train`` ids drawn by a seeded permutation.

    Args:
        split: ``{"train": [image ids], ...}`` as in ``coco-real/split.json``.
        n_train: photos to keep, 1 <= n_train <= len(split["train"]).
        seed: permutation seed; for one seed a smaller subset lies inside a larger one.

    Raises:
        ValueError: no ``train`` list, or ``n_train`` out of range.
    """
    if "train" not in split:
        raise ValueError(f"split has no 'train' list (keys: {sorted(split)})")
    train = sorted(int(i) for i in split["train"])
    if not 1 <= n_train <= len(train):
        raise ValueError(f"--n-train must be in 1..{len(train)}, got {n_train}")
    order = np.random.default_rng(seed).permutation(len(train))
    kept = sorted(train[i] for i in order[:n_train])
    return {**split, "train": kept}


def main(argv: list[str] | None = None) -> int:
    from instancevg.runtime.atomic_io import atomic_write_bytes
    from instancevg.data.readers.coco import default_split_file
    from instancevg.data.readers.common import read_json

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--instances", required=True, help="source COCO instances JSON (split.json beside it)")
    p.add_argument("--n-train", type=int, required=True, help="train photos to keep")
    p.add_argument("--seed", type=int, default=0, help="permutation seed (default 0)")
    p.add_argument("--out", required=True, help="folder to write instances.json and split.json into")
    args = p.parse_args(argv)
    source = Path(args.instances)
    split_file = default_split_file(source)
    try:
        split = read_json(split_file, "split file (the source needs a split.json with a 'train' list)")
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    try:
        split = subset_split(split, args.n_train, args.seed)
    except ValueError as e:
        sys.exit(f"error: {split_file}: {e}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "instances.json")
    atomic_write_bytes(out / "split.json", json.dumps(split).encode())
    print(f"wrote {out}: {len(split['train'])} train photos, "
          + ", ".join(f"{k} {len(v)}" for k, v in split.items() if k != "train"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
