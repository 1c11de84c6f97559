"""``instancevg make-data --from-coco``: a COCO-format instance set written as a gRefCOCO dataset.

A few hundred labelled photos of one's own objects (CVAT, Label Studio and Roboflow export COCO
format) become grounding data: for each split, :data:`~instancevg.data.sources.EVAL_EXPRESSIONS_PER_IMAGE`
expressions per image, drawn exactly as ``--data coco:...`` evaluation draws them (image
``g % N``, expression from ``rng([seed, g])``), so ``instancevg eval --data grefcoco:OUT:IMAGES``
scores the same samples as ``--data coco:INSTANCES:IMAGES``.

Layout written (gRefCOCO / ReLA): ``OUT/grefcoco/grefs(unc).json`` and ``OUT/grefcoco/instances.json``
(the input instances, unchanged); images stay where they are and are named by the SPEC's image
folder. A ref: ``ref_id``, ``image_id``, ``ann_id`` (list; ``[-1]`` for no-target),
``category_id`` (list; ``[-1]``), ``split``, ``sentences`` [{raw, sent, tokens, sent_id}],
``sent_ids``, ``no_target``, ``file_name`` (the image file stem with an ``_<first ann_id>``
suffix, as released).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..runtime.atomic_io import atomic_path, atomic_write_json
from ..config import get_preset
from .dataset import CocoGroundingDataset
from .readers.coco import CocoInstances
from .readers.common import say
from .sources import EVAL_EXPRESSIONS_PER_IMAGE, EVAL_SEED

__all__ = ["write_grefcoco_from_coco"]


def write_grefcoco_from_coco(instances_json: str | Path, image_dir: str | Path, out: str | Path,
                             split_file: str | Path | None = None, seed: int = EVAL_SEED,
                             per_image: int = EVAL_EXPRESSIONS_PER_IMAGE) -> Path:
    """Write the gRefCOCO-format dataset; returns the refs file.

    Raises:
        FileNotFoundError / ValueError: an unreadable instances or split file, or missing images.
    """
    inst = CocoInstances(instances_json, image_dir, split_file)
    out = Path(out)
    (out / "grefcoco").mkdir(parents=True, exist_ok=True)
    config = get_preset("edge")
    refs, sent_id = [], 0
    for split in inst.split_names():
        images = inst.load_split(split)
        data = CocoGroundingDataset(config, images, inst.category_names, seed, length=len(images) * per_image,
                                    shuffle=False)
        for g in range(len(data)):
            im, _, _, _, expr = data.expression(g)
            anns = [im.objects[k] for k in expr.targets]
            ann_ids = [o.ann_id for o in anns] or [-1]
            refs.append({
                "ref_id": len(refs), "image_id": im.image_id, "ann_id": ann_ids,
                "category_id": [o.category_id for o in anns] or [-1], "split": split,
                "sentences": [{"raw": expr.text, "sent": expr.text.lower(), "tokens": expr.text.lower().split(),
                               "sent_id": sent_id}],
                "sent_ids": [sent_id], "no_target": not anns,
                "file_name": f"{Path(im.image_path).stem}_{ann_ids[0]}{Path(im.image_path).suffix}",
            })
            sent_id += 1
    with atomic_path(out / "grefcoco" / "instances.json") as tmp:
        shutil.copyfile(instances_json, tmp)
    path = out / "grefcoco" / "grefs(unc).json"
    atomic_write_json(path, refs)
    n_empty = sum(r["no_target"] for r in refs)
    say(f"wrote {path}: {len(refs)} refs ({n_empty} no-target) over {sorted({r['split'] for r in refs})}; "
        f"read it with --data grefcoco:{out}:{image_dir}")
    return path

