"""Data sources named on the command line: ``KIND:PATH[:EXTRA][@WEIGHT]``.

=================================== ================================================================
SPEC                                what
=================================== ================================================================
``grefcoco:ROOT[:IMAGE_DIR]``       gRefCOCO (``ROOT/grefcoco/grefs(unc).json``, :mod:`.refs`)
``refcoco:ROOT[:SPLIT_BY]``         RefCOCO (``refs(unc).p``; also ``google``)
``refcoco+:ROOT[:SPLIT_BY]``        RefCOCO+ (``unc``)
``refcocog:ROOT[:SPLIT_BY]``        RefCOCOg (``umd``; also ``google``)
``refzom:ROOT[:IMAGE_DIR]``         Ref-ZOM (``ROOT/ref-zom/refs(final).p``)
``coco:INSTANCES_JSON[:IMAGE_DIR]`` COCO instances; expressions generated per sample (:mod:`.coco_expressions`)
``copy-paste:INSTANCES_JSON[:DIR]`` copy-paste scenes from that file's ``train`` split (training only)
``procedural:DIR``                  the procedural benchmark (``DIR/dataset.json``); a bare ``DIR``
                                    with a ``dataset.json`` means the same
``parts:SEED``                      part-level procedural scenes rendered in memory (:mod:`.procedural_parts`)
=================================== ================================================================

``@WEIGHT`` (default 1) is the source's sampling weight in a training mixture. Training reads each
source's ``train`` split (procedural, COCO and copy-paste sources draw new samples on the fly
forever; the released datasets cycle through their sentences in a fresh order per epoch), and
validation the ``val`` split.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from ..config import ModelConfig
from .coco import WHOLE_FILE_SPLIT, CocoInstances, default_split_file
from .copy_paste import CopyPasteComposer
from .dataset import (CocoGroundingDataset, CopyPasteDataset, CyclicDataset, JsonGroundingDataset,
                      PartsGroundingDataset, ProceduralGroundingDataset, RecordsDataset, dataset_info)
from .mixture import MixtureDataset
from .procedural_scene import check_sample_address
from .refs import REF_KINDS, load_refs, refs_files

__all__ = ["DataSpec", "KINDS", "train_dataset", "eval_dataset", "describe_sources", "finite_length",
           "EVAL_EXPRESSIONS_PER_IMAGE", "EVAL_SEED"]

KINDS = (*REF_KINDS, "coco", "copy-paste", "procedural", "parts")
PARTS_EVAL_SAMPLES = 500         # parts: evaluation renders this many samples of the split
EVAL_EXPRESSIONS_PER_IMAGE = 4   # coco: evaluation draws this many expressions per image ...
EVAL_SEED = 0                    # ... from this seed, whatever the training seed, so every run sees the same set


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``KIND:PATH[:EXTRA][@WEIGHT]``.

    Attributes:
        kind: one of :data:`KINDS`.
        path: dataset root, instances file or procedural directory.
        extra: split-by (RefCOCO family) or image folder (other kinds), or None.
        weight: sampling weight in a mixture (> 0).
    """

    kind: str
    path: str
    extra: str | None = None
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "DataSpec":
        """Parse a SPEC.

        Raises:
            ValueError: unknown kind, missing path, a weight that is not a positive number, or an
                extra part on a kind that takes none.
        """
        body, weight = text, 1.0
        if "@" in text:
            body, _, w = text.rpartition("@")
            try:
                weight = float(w)
            except ValueError:
                raise ValueError(f"data source {text!r}: weight {w!r} after '@' is not a number") from None
            if not weight > 0:
                raise ValueError(f"data source {text!r}: weight must be positive, got {weight}")
        kind, sep, rest = body.partition(":")
        if not sep:
            if (Path(body) / "dataset.json").is_file():
                return cls("procedural", body, None, weight)
            raise ValueError(f"data source {text!r}: expected KIND:PATH with KIND one of {list(KINDS)} "
                             f"(or a procedural directory holding dataset.json)")
        if kind not in KINDS:
            raise ValueError(f"data source {text!r}: unknown kind {kind!r}; known kinds: {list(KINDS)}")
        path, _, extra = rest.partition(":")
        if not path:
            raise ValueError(f"data source {text!r}: missing PATH after {kind}:")
        if extra and kind == "procedural":
            raise ValueError(f"data source {text!r}: procedural takes only a directory")
        if kind == "parts" and (extra or not path.isdigit()):
            raise ValueError(f"data source {text!r}: parts takes one non-negative integer seed (parts:0)")
        return cls(kind, path, extra or None, weight)

    def __str__(self) -> str:
        extra = f":{self.extra}" if self.extra else ""
        weight = f"@{self.weight:g}" if self.weight != 1.0 else ""
        return f"{self.kind}:{self.path}{extra}{weight}"

    def loader_args(self) -> dict:
        """Keyword arguments of :func:`load_refs` for a released-dataset source."""
        if self.kind in ("refcoco", "refcoco+", "refcocog"):
            return {"split_by": self.extra}
        return {"image_root": self.extra}

    def annotation_files(self) -> list[Path]:
        """The annotation files this source reads (for the run record and its checksums)."""
        if self.kind in REF_KINDS:
            refs, instances, _ = refs_files(self.kind, self.path, **self.loader_args())
            return [refs, instances]
        if self.kind == "procedural":
            return [Path(self.path) / "dataset.json"]
        if self.kind == "parts":
            return []  # rendered from the seed
        files = [Path(self.path)]
        split_file = default_split_file(self.path)
        return files + [split_file] if split_file.is_file() else files

    def instances(self) -> CocoInstances:
        """The COCO index of a ``coco`` / ``copy-paste`` source."""
        return CocoInstances(self.path, self.extra)


def _coco_split(instances: CocoInstances, split: str) -> str:
    """``split``, or the whole file's single split when there is no split.json."""
    return WHOLE_FILE_SPLIT if instances.split_names() == [WHOLE_FILE_SPLIT] else split


def _train_part(spec: DataSpec, config: ModelConfig, seed: int, indexes: dict, flip_prob: float,
                multi_target_weight: float) -> Dataset:
    if spec.kind == "parts":
        return PartsGroundingDataset(config, int(spec.path), "train", length=2**62)
    if spec.kind == "procedural":
        info = dataset_info(spec.path)
        if info.get("generator") == "instancevg.procedural":
            return ProceduralGroundingDataset(config, int(info["seed"]), "train", length=2**62)
        return CyclicDataset(JsonGroundingDataset(config, Path(spec.path) / "dataset.json", "train"), seed)
    if spec.kind in REF_KINDS:
        return CyclicDataset(RecordsDataset(config, load_refs(spec.kind, spec.path, "train", **spec.loader_args()),
                                            flip_prob=flip_prob), seed)
    key = (spec.path, spec.extra)
    if key not in indexes:  # coco: and copy-paste: on one file parse it once
        indexes[key] = spec.instances()
    inst = indexes[key]
    images = inst.load_split(_coco_split(inst, "train"))
    if spec.kind == "coco":
        return CocoGroundingDataset(config, images, inst.category_names, seed, length=2**62, shuffle=True,
                                    flip_prob=flip_prob, multi_target_weight=multi_target_weight)
    return CopyPasteDataset(config, CopyPasteComposer(images), inst.category_names, seed, flip_prob=flip_prob,
                            multi_target_weight=multi_target_weight)


def train_dataset(specs: list[DataSpec], config: ModelConfig, seed: int, flip_prob: float = 0.0,
                  multi_target_weight: float = 1.0) -> Dataset:
    """The training stream, indexed by global sample index: one source, or their weighted mixture.
    ``flip_prob``: probability of mirroring a real-photo sample (coco, copy-paste, released datasets);
    ``multi_target_weight``: how much likelier generated expressions with several targets are
    (coco, copy-paste; :func:`instancevg.data.coco_expressions.draw_expression`).

    Raises:
        ValueError / FileNotFoundError: from the loaders (a bad file or path, named in the message).
    """
    indexes: dict = {}
    parts = [_train_part(s, config, seed + 1000 * k, indexes, flip_prob, multi_target_weight)
             for k, s in enumerate(specs)]
    if len(parts) == 1:
        return parts[0]
    return MixtureDataset(parts, [s.weight for s in specs], seed)


def finite_length(stream: Dataset) -> int | None:
    """Samples in one epoch of a training stream from :func:`train_dataset`: the number of
    sentences of its finite sources, or None when any source is drawn on the fly (endless)."""
    parts = stream.parts if isinstance(stream, MixtureDataset) else [stream]
    if not all(isinstance(p, CyclicDataset) for p in parts):
        return None
    return sum(len(p.base) for p in parts)


def eval_dataset(spec: DataSpec, config: ModelConfig, split: str, limit: int | None = None,
                 full_masks: bool = True) -> Dataset:
    """A finite evaluation set: one split of a source.

    COCO sources draw :data:`EVAL_EXPRESSIONS_PER_IMAGE` expressions per image from
    :data:`EVAL_SEED` (image ``g % N`` for item g), the same set for every run; ``parts``
    sources render the first :data:`PARTS_EVAL_SAMPLES` samples of the split.

    Raises:
        ValueError: a copy-paste source (training only), an unknown split, or a loader error.
    """
    if spec.kind == "procedural":
        return JsonGroundingDataset(config, Path(spec.path) / "dataset.json", split, limit=limit,
                                    full_masks=full_masks)
    if spec.kind in REF_KINDS:
        return RecordsDataset(config, load_refs(spec.kind, spec.path, split, **spec.loader_args()), limit, full_masks)
    if spec.kind == "parts":
        check_sample_address(int(spec.path), 0, split)  # the renderer's own check, before any item is drawn
        return PartsGroundingDataset(config, int(spec.path), split, min(limit or PARTS_EVAL_SAMPLES, PARTS_EVAL_SAMPLES),
                                     full_masks=full_masks)
    if spec.kind == "copy-paste":
        raise ValueError(f"{spec}: copy-paste scenes are for training only; evaluate on coco:{spec.path}")
    inst = spec.instances()
    images = inst.load_split(_coco_split(inst, split))
    n = len(images) * EVAL_EXPRESSIONS_PER_IMAGE
    return CocoGroundingDataset(config, images, inst.category_names, EVAL_SEED,
                                length=min(n, limit) if limit else n, shuffle=False, full_masks=full_masks)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe_sources(train: list[DataSpec], val: list[DataSpec]) -> dict:
    """What a run reads, for ``RUN/data_sources.json``: each SPEC, its split and weight, and the
    SHA-256 of every annotation file."""
    def one(spec: DataSpec, split: str) -> dict:
        return {"spec": str(spec), "kind": spec.kind, "split": split, "weight": spec.weight,
                "files": {str(p): _sha256(p) for p in spec.annotation_files()}}

    return {"train": [one(s, "train") for s in train], "val": [one(s, "val") for s in val]}
