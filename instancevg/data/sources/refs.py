"""The released referring datasets (:mod:`instancevg.data.readers.refs`), one kind each:

``grefcoco:ROOT[:IMAGE_DIR]``, ``refcoco:ROOT[:SPLIT_BY]`` (``unc``; also ``google``),
``refcoco+:ROOT[:SPLIT_BY]`` (``unc``), ``refcocog:ROOT[:SPLIT_BY]`` (``umd``; also ``google``),
``refzom:ROOT[:IMAGE_DIR]``.

Training cycles through the split's sentences in a fresh order per epoch (mirrored with
``TrainSampling.hflip``, "left" and "right" swapped); evaluation reads one split in refs order.
"""
from __future__ import annotations

from pathlib import Path

from ...config import ModelConfig
from ..dataset import CyclicDataset, RecordsDataset
from ..readers.refs import REF_KINDS, load_refs, refs_files
from ..sampling import TrainSampling
from .registry import DataSpec, SourceKind, record_samples, register

SPLIT_BY_KINDS = ("refcoco", "refcoco+", "refcocog")  # EXTRA is the refs file variant; the others: an image folder


def _loader_args(spec: DataSpec) -> dict:
    """Keyword arguments of :func:`load_refs` / :func:`refs_files` for ``spec``'s EXTRA."""
    return {"split_by": spec.extra} if spec.kind in SPLIT_BY_KINDS else {"image_root": spec.extra}


def _records(spec: DataSpec, split: str):
    return load_refs(spec.kind, spec.path, split, **_loader_args(spec))


def _parse(path: str, extra: str | None) -> tuple[str, str | None]:
    return path, extra


def _train(spec: DataSpec, config: ModelConfig, seed: int, sampling: TrainSampling, cache: dict):
    return CyclicDataset(RecordsDataset(config, _records(spec, "train"), flip_prob=sampling.hflip), seed)


def _eval(spec: DataSpec, config: ModelConfig, split: str, limit: int | None, full_masks: bool):
    return RecordsDataset(config, _records(spec, split), limit, full_masks)


def _samples(spec: DataSpec, split: str, limit: int | None):
    return record_samples(_records(spec, split), limit)


def _files(spec: DataSpec) -> list[Path]:
    refs, instances, _ = refs_files(spec.kind, spec.path, **_loader_args(spec))
    return [refs, instances]


_USAGE = {"grefcoco": "grefcoco:ROOT[:IMAGE_DIR]", "refcoco": "refcoco:ROOT[:SPLIT_BY]",
          "refcoco+": "refcoco+:ROOT[:SPLIT_BY]", "refcocog": "refcocog:ROOT[:SPLIT_BY]",
          "refzom": "refzom:ROOT[:IMAGE_DIR]"}

for _name in REF_KINDS:
    register(SourceKind(name=_name, usage=_USAGE[_name], parse=_parse, train=_train, eval=_eval, samples=_samples,
                        files=_files))
