"""Lay out the hand-written coco-real val expressions as a gRefCOCO root, for ``instancevg eval``.

    python tools/handwritten_refs.py --out runs/handwritten
    instancevg eval --data grefcoco:runs/handwritten:../shared/data/coco-real --split val

``tools/handwritten/grefs(unc).json`` holds 135 expressions written by hand for 33 coco-real
``val`` photos, in gRefCOCO's refs format (``ann_id`` lists of the photo's official COCO
annotations, ``[-1]`` and ``no_target`` for expressions that refer to nothing): attributes,
relations, actions and groups, as a person would phrase them, where the generated val
expressions are templates. The photos are those the model's checkpoints are chosen on (with
generated expressions), so this set is a test of phrasing, not of unseen photos; it is never used
to choose or tune anything. This writes ``OUT/grefcoco/grefs(unc).json`` and a copy of the
instances file beside it (the layout :mod:`instancevg.data.readers.refs` reads).

Raises (as SystemExit with a one-line message): the coco-real instances file is missing.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from instancevg.runtime.atomic_io import atomic_write_bytes

REFS = Path(__file__).resolve().parent / "handwritten" / "grefs(unc).json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="gRefCOCO root to write (OUT/grefcoco/...)")
    p.add_argument("--instances", default="../shared/data/coco-real/instances.json",
                   help="the coco-real instances file the refs' ann_ids come from")
    args = p.parse_args(argv)
    instances = Path(args.instances)
    if not instances.is_file():
        raise SystemExit(f"no coco-real instances file at {instances} (the hand-written refs name its ann_ids)")
    folder = Path(args.out) / "grefcoco"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "grefs(unc).json", REFS.read_bytes())
    atomic_write_bytes(folder / "instances.json", instances.read_bytes())
    print(f"wrote {folder}: evaluate with instancevg eval --data grefcoco:{args.out}:{instances.parent} --split val")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
