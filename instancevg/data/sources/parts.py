"""``parts:SEED``: part-level procedural scenes rendered in memory
(:mod:`instancevg.data.generators.procedural_parts`).

Sample i of a split is ``render_part_sample(SEED, i, split)``; training draws the ``train``
split endlessly, evaluation renders the first :data:`PARTS_EVAL_SAMPLES` samples of a split (or
the first ``limit``, at most that many).
"""
from __future__ import annotations

from pathlib import Path

from ...config import ModelConfig
from ..dataset import PartsGroundingDataset
from ..generators.procedural_parts import render_part_sample
from ..generators.procedural_scene import check_sample_address
from ..sampling import TrainSampling
from .registry import DataSpec, RawSample, SourceKind, register

PARTS_EVAL_SAMPLES = 500  # evaluation renders this many samples of the split


def _parse(path: str, extra: str | None) -> tuple[str, str | None]:
    if extra or not path.isdigit():
        raise ValueError("parts takes one non-negative integer seed (parts:0)")
    return path, None


def _eval_size(spec: DataSpec, split: str, limit: int | None) -> int:
    check_sample_address(int(spec.path), 0, split)  # the renderer's own check, before any item is drawn
    return min(limit or PARTS_EVAL_SAMPLES, PARTS_EVAL_SAMPLES)


def _train(spec: DataSpec, config: ModelConfig, seed: int, sampling: TrainSampling, cache: dict):
    return PartsGroundingDataset(config, int(spec.path), "train", length=2**62)


def _eval(spec: DataSpec, config: ModelConfig, split: str, limit: int | None, full_masks: bool):
    return PartsGroundingDataset(config, int(spec.path), split, _eval_size(spec, split, limit), full_masks=full_masks)


def _samples(spec: DataSpec, split: str, limit: int | None):
    return _rendered(int(spec.path), split, _eval_size(spec, split, limit))


def _rendered(seed: int, split: str, n: int):
    for i in range(n):
        s = render_part_sample(seed, i, split)
        yield RawSample(s.image, s.expression, s.boxes, s.masks)


def _files(spec: DataSpec) -> list[Path]:
    return []  # rendered from the seed


register(SourceKind(name="parts", usage="parts:SEED", parse=_parse, train=_train, eval=_eval, samples=_samples,
                    files=_files))
