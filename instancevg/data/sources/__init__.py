"""Data sources named on the command line: ``KIND:PATH[:EXTRA][@WEIGHT]``.

=================================== ================================================================
SPEC                                what
=================================== ================================================================
``grefcoco:ROOT[:IMAGE_DIR]``       gRefCOCO (``ROOT/grefcoco/grefs(unc).json``, :mod:`.refs`)
``refcoco:ROOT[:SPLIT_BY]``         RefCOCO (``refs(unc).p``; also ``google``)
``refcoco+:ROOT[:SPLIT_BY]``        RefCOCO+ (``unc``)
``refcocog:ROOT[:SPLIT_BY]``        RefCOCOg (``umd``; also ``google``)
``refzom:ROOT[:IMAGE_DIR]``         Ref-ZOM (``ROOT/ref-zom/refs(final).p``)
``coco:INSTANCES_JSON[:IMAGE_DIR]`` COCO instances; expressions generated per sample (:mod:`.coco`)
``copy-paste:INSTANCES_JSON[:DIR]`` copy-paste scenes from that file's ``train`` split (training only)
``procedural:SEED``                 the procedural benchmark rendered in memory from SEED (all
                                    digits); a bare ``procedural`` means ``procedural:0``
``procedural:DIR``                  the procedural benchmark's files (``DIR/dataset.json``); a bare
                                    ``DIR`` with a ``dataset.json`` means the same
``parts:SEED``                      part-level procedural scenes rendered in memory (:mod:`.parts`)
=================================== ================================================================

``@WEIGHT`` (default 1) is the source's sampling weight in a training mixture. Training reads each
source's ``train`` split (procedural, COCO and copy-paste sources draw new samples on the fly
forever; the released datasets cycle through their sentences in a fresh order per epoch), and
validation the ``val`` split.

Each kind lives in its own module and registers a :class:`~.registry.SourceKind`
(:mod:`.registry`); the functions here dispatch through it, so ``instancevg train``,
``instancevg eval``, ``export/parity.py``, ``export/evaluate_bundle.py`` and
``export/calibration.py`` all take the same SPECs.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

from torch.utils.data import Dataset

from ...config import ModelConfig
from ..dataset import CyclicDataset
from ..mixture import MixtureDataset
from . import refs, coco, copy_paste, procedural, parts  # noqa: F401  (each registers its kind(s), in this order)
from .coco import EVAL_EXPRESSIONS_PER_IMAGE, EVAL_SEED
from .parts import PARTS_EVAL_SAMPLES
from .procedural import PROCEDURAL_SPLIT_SIZES
from ..sampling import TrainSampling
from .registry import DataSpec, RawSample, SourceKind, get_kind, registered_kinds

__all__ = ["DataSpec", "KINDS", "SourceKind", "RawSample", "TrainSampling", "get_kind", "train_dataset", "eval_dataset",
           "eval_samples", "validation_sources", "metrics_dir", "describe_sources", "finite_length", "kinds_usage",
           "EVAL_EXPRESSIONS_PER_IMAGE", "EVAL_SEED", "PARTS_EVAL_SAMPLES", "PROCEDURAL_SPLIT_SIZES"]

KINDS = tuple(registered_kinds())


def kinds_usage() -> str:
    """The SPEC form of every registered kind, comma-separated (for help texts)."""
    return ", ".join(get_kind(k).usage for k in registered_kinds())


def train_dataset(specs: list[DataSpec], config: ModelConfig, seed: int,
                  sampling: TrainSampling = TrainSampling()) -> Dataset:
    """The training stream, indexed by global sample index: one source, or their weighted mixture
    (source k draws from seed ``seed + 1000 * k``).
    ``sampling``: flips, scale jitter and the expression mix (:class:`~instancevg.data.sampling.TrainSampling`).

    Raises:
        ValueError / FileNotFoundError: an unknown kind, or from the loaders (a bad file or path,
            named in the message).
    """
    cache: dict = {}  # coco: and copy-paste: on one file parse it once
    parts_ = [get_kind(s).train(s, config, seed + 1000 * k, sampling, cache)
              for k, s in enumerate(specs)]
    if len(parts_) == 1:
        return parts_[0]
    return MixtureDataset(parts_, [s.weight for s in specs], seed)


def finite_length(stream: Dataset) -> int | None:
    """Samples in one epoch of a training stream from :func:`train_dataset`: the number of
    sentences of its finite sources, or None when any source is drawn on the fly (endless)."""
    parts_ = stream.parts if isinstance(stream, MixtureDataset) else [stream]
    if not all(isinstance(p, CyclicDataset) for p in parts_):
        return None
    return sum(len(p.base) for p in parts_)


def eval_dataset(spec: DataSpec, config: ModelConfig, split: str, limit: int | None = None,
                 full_masks: bool = True) -> Dataset:
    """A finite evaluation set of model items: one split of a source (its first ``limit`` items).

    COCO sources draw :data:`EVAL_EXPRESSIONS_PER_IMAGE` expressions per image from
    :data:`EVAL_SEED` (image ``g % N`` for item g), the same set for every run; ``parts``
    sources render the first :data:`PARTS_EVAL_SAMPLES` samples of the split;
    ``procedural:SEED`` renders the first :data:`PROCEDURAL_SPLIT_SIZES` ``[split]`` samples.

    Raises:
        ValueError: an unknown kind, a copy-paste source (training only), an unknown split, or a
            loader error. FileNotFoundError: missing files.
    """
    return get_kind(spec).eval(spec, config, split, limit, full_masks)


def eval_samples(spec: DataSpec, split: str, limit: int | None = None) -> Iterator[RawSample]:
    """The samples of :func:`eval_dataset` before the model's preprocessing, in the same order:
    :class:`RawSample` ``(image (H, W, 3) uint8 RGB, text, boxes (K, 4) float32 xyxy pixels,
    masks (K, H, W) bool)`` (for runtime bundles and INT8 calibration, which preprocess
    themselves).

    Raises:
        ValueError / FileNotFoundError: as :func:`eval_dataset`, when called (before the first sample).
    """
    return get_kind(spec).samples(spec, split, limit)


def validation_sources(specs: list[DataSpec]) -> list[DataSpec]:
    """The sources that validate a training mixture by default: each training source whose kind
    has a ``val`` split (copy-paste has none), weight dropped, duplicates removed.

    Raises:
        ValueError: a source that cannot validate itself (a COCO file without ``split.json``,
            whose ``val`` would be its training images).
    """
    out = []
    for spec in specs:
        kind = get_kind(spec)
        if not kind.has_val:
            continue
        if kind.check_val is not None:
            kind.check_val(spec)
        out.append(DataSpec(spec.kind, spec.path, spec.extra))
    return list(dict.fromkeys(out))


def metrics_dir(spec: DataSpec) -> Path | None:
    """Where ``instancevg eval`` writes a source's metrics by default: the directory of its files
    (``procedural:DIR``), or None for ``runs/eval``."""
    kind = get_kind(spec)
    return kind.metrics_dir(spec) if kind.metrics_dir is not None else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe_sources(train: list[DataSpec], val: list[DataSpec]) -> dict:
    """What a run reads, for ``RUN/data_sources.json``: each SPEC, its split and weight, and the
    SHA-256 of every annotation file.

    Raises:
        ValueError: an unknown kind. FileNotFoundError: a missing annotation file.
    """
    def one(spec: DataSpec, split: str) -> dict:
        return {"spec": str(spec), "kind": spec.kind, "split": split, "weight": spec.weight,
                "files": {str(p): _sha256(p) for p in spec.annotation_files()}}

    return {"train": [one(s, "train") for s in train], "val": [one(s, "val") for s in val]}
