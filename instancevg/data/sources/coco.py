"""``coco:INSTANCES.json[:IMAGE_DIR]``: any COCO instances file, with referring expressions
generated per sample from its labels (:mod:`instancevg.data.generators.coco_expressions`).

Splits come from ``split.json`` beside the instances file (without one the whole file is one
split, ``all``, which every split name reads). Training draws an image from a fresh permutation
per epoch and an expression from ``rng([seed, g])``, forever; evaluation draws
:data:`EVAL_EXPRESSIONS_PER_IMAGE` expressions per image (image ``g % N`` for item g) from
:data:`EVAL_SEED`, the same set for every run whatever the training seed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...config import ModelConfig
from ..dataset import CocoGroundingDataset
from ..readers.coco import WHOLE_FILE_SPLIT, CocoInstances, default_split_file
from ..sampling import TrainSampling
from .registry import DataSpec, RawSample, SourceKind, register

EVAL_EXPRESSIONS_PER_IMAGE = 4   # evaluation draws this many expressions per image ...
EVAL_SEED = 0                    # ... from this seed, whatever the training seed, so every run sees the same set


def instances(spec: DataSpec, cache: dict | None = None) -> CocoInstances:
    """The COCO index of a ``coco:`` / ``copy-paste:`` source, parsed once per (file, image folder)
    within one ``cache``."""
    if cache is None:
        return CocoInstances(spec.path, spec.extra)
    key = ("coco-instances", spec.path, spec.extra)
    if key not in cache:
        cache[key] = CocoInstances(spec.path, spec.extra)
    return cache[key]


def split_images(inst: CocoInstances, split: str):
    """The images of ``split``, or of the whole file when it has no split.json."""
    return inst.load_split(WHOLE_FILE_SPLIT if inst.split_names() == [WHOLE_FILE_SPLIT] else split)


def parse_instances_spec(path: str, extra: str | None) -> tuple[str, str | None]:
    """PATH is the instances file, EXTRA the image folder (both as given; nothing is read)."""
    return path, extra


def instances_files(spec: DataSpec) -> list[Path]:
    """The instances file, and split.json beside it when there is one."""
    split_file = default_split_file(spec.path)
    return [Path(spec.path)] + ([split_file] if split_file.is_file() else [])


def _train(spec: DataSpec, config: ModelConfig, seed: int, sampling: TrainSampling, cache: dict):
    inst = instances(spec, cache)
    return CocoGroundingDataset(config, split_images(inst, "train"), inst.category_names, seed, length=2**62,
                                shuffle=True, sampling=sampling)


def _eval(spec: DataSpec, config: ModelConfig | None, split: str, limit: int | None, full_masks: bool):
    inst = instances(spec)
    images = split_images(inst, split)
    n = len(images) * EVAL_EXPRESSIONS_PER_IMAGE
    return CocoGroundingDataset(config, images, inst.category_names, EVAL_SEED,
                                length=min(n, limit) if limit else n, shuffle=False, full_masks=full_masks)


def _samples(spec: DataSpec, split: str, limit: int | None):
    data = _eval(spec, None, split, limit, True)  # the config only shapes model items, which are not made here
    return _draws(data)


def _draws(data: CocoGroundingDataset):
    for g in range(len(data)):
        _, image, masks, boxes, expr = data.expression(g)
        t = list(expr.targets)
        yield RawSample(image, expr.text, np.asarray(boxes, np.float32).reshape(-1, 4)[t], masks[t])


def _check_val(spec: DataSpec) -> None:
    if not default_split_file(spec.path).is_file():
        raise ValueError(f"{spec}: no split.json beside the instances file, so its 'val' would be the training "
                         f"images; give --val-data")


register(SourceKind(name="coco", usage="coco:INSTANCES.json[:IMAGE_DIR]", parse=parse_instances_spec, train=_train,
                    eval=_eval, samples=_samples, files=instances_files, check_val=_check_val))
