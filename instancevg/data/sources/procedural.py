"""The procedural benchmark (:mod:`instancevg.data.generators.procedural`), from a seed or from files:

``procedural:SEED`` (an all-digit PATH; a bare ``procedural`` means ``procedural:0``)
    rendered in memory: sample i of a split is ``render_sample(SEED, i, split)``, the sample
    ``instancevg make-data --seed SEED`` writes as record i of that split. Evaluation reads the
    first :data:`PROCEDURAL_SPLIT_SIZES` ``[split]`` samples (make-data's default sizes), or the
    first ``limit``.
``procedural:DIR`` (or a bare ``DIR`` holding ``dataset.json``)
    the records of ``DIR/dataset.json`` (PATH may also name the JSON file itself). Training on a
    make-data directory renders its seed's ``train`` split on the fly, endlessly, as
    ``procedural:SEED`` does; any other grounding JSON cycles through its ``train`` records.
"""
from __future__ import annotations

from pathlib import Path

from ...config import ModelConfig
from ..dataset import CyclicDataset, JsonGroundingDataset, ProceduralGroundingDataset
from ..generators.procedural import render_sample
from ..generators.procedural_scene import check_sample_address
from ..readers.common import read_json
from ..readers.record_json import load_grounding_json
from ..sampling import TrainSampling
from .registry import DataSpec, RawSample, SourceKind, record_samples, register

# samples of a split that evaluating procedural:SEED reads without a limit; val and test are
# `instancevg make-data`'s defaults (--n-val, --n-test), train is drawn on the fly in training
PROCEDURAL_SPLIT_SIZES = {"train": 1000, "val": 500, "test": 1000}
GENERATOR = "instancevg.procedural"  # dataset.json info["generator"] of a make-data directory


def seed_of(spec: DataSpec) -> int | None:
    """The seed of a ``procedural:SEED`` source, None for ``procedural:DIR``."""
    return int(spec.path) if spec.path.isdigit() else None


def json_path(spec: DataSpec) -> Path:
    """The grounding JSON a ``procedural:DIR`` source reads: ``DIR/dataset.json``, or PATH itself
    when it names a ``.json`` file."""
    path = Path(spec.path)
    return path if path.suffix == ".json" and not path.is_dir() else path / "dataset.json"


def _info(path: Path) -> dict:
    """The ``info`` block of a grounding JSON. Raises FileNotFoundError / ValueError (not JSON)."""
    data = read_json(path, "grounding JSON", hint=f" (create it with `instancevg make-data --out {path.parent}`)")
    return data.get("info", {}) if isinstance(data, dict) else {}


def _parse(path: str, extra: str | None) -> tuple[str, str | None]:
    if extra:
        raise ValueError("procedural takes only a directory or a seed (procedural:DIR, procedural:0), "
                         "nothing after it")
    return path, None


def _split_size(spec: DataSpec, split: str, limit: int | None) -> int:
    """Samples of ``split`` that evaluating ``procedural:SEED`` reads (the renderer checks the split)."""
    check_sample_address(seed_of(spec), 0, split)
    return limit if limit else PROCEDURAL_SPLIT_SIZES[split]


def _train(spec: DataSpec, config: ModelConfig, seed: int, sampling: TrainSampling, cache: dict):
    scene_seed = seed_of(spec)
    if scene_seed is None:
        info = _info(json_path(spec))
        if info.get("generator") != GENERATOR:
            return CyclicDataset(JsonGroundingDataset(config, json_path(spec), "train"), seed)
        scene_seed = int(info["seed"])
    return ProceduralGroundingDataset(config, scene_seed, "train", length=2**62)


def _eval(spec: DataSpec, config: ModelConfig, split: str, limit: int | None, full_masks: bool):
    if seed_of(spec) is None:
        return JsonGroundingDataset(config, json_path(spec), split, limit=limit, full_masks=full_masks)
    return ProceduralGroundingDataset(config, seed_of(spec), split, _split_size(spec, split, limit),
                                      full_masks=full_masks)


def _samples(spec: DataSpec, split: str, limit: int | None):
    seed = seed_of(spec)
    if seed is None:
        return record_samples(load_grounding_json(json_path(spec), split), limit)
    return _rendered(seed, split, _split_size(spec, split, limit))


def _rendered(seed: int, split: str, n: int):
    for i in range(n):
        s = render_sample(seed, i, split)
        yield RawSample(s.image, s.expression, s.boxes, s.masks)


def _files(spec: DataSpec) -> list[Path]:
    return [] if seed_of(spec) is not None else [json_path(spec)]


def _metrics_dir(spec: DataSpec) -> Path | None:
    return None if seed_of(spec) is not None else json_path(spec).parent


register(SourceKind(name="procedural", usage="procedural:SEED|DIR", parse=_parse, train=_train, eval=_eval,
                    samples=_samples, files=_files, metrics_dir=_metrics_dir))
