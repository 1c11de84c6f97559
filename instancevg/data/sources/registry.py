"""The data-source kinds and the SPEC that names one: ``KIND:PATH[:EXTRA][@WEIGHT]``.

Each kind module of this package (:mod:`.refs`, :mod:`.coco`, :mod:`.copy_paste`,
:mod:`.procedural`, :mod:`.parts`) describes its kind as one :class:`SourceKind` and hands it to
:func:`register`; every command and tool reaches a kind only through :func:`get_kind`, so what a
kind accepts and how it reads its data is written in one place.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np


__all__ = ["DataSpec", "SourceKind", "RawSample", "register", "get_kind", "registered_kinds", "record_samples"]

_KINDS: dict[str, "SourceKind"] = {}


class RawSample(NamedTuple):
    """One grounding sample before the model's preprocessing (what a camera and a labeller give).

    Attributes:
        image: (H, W, 3) uint8 RGB.
        text: the referring expression.
        boxes: (K, 4) float32 xyxy pixel boxes of the K referred objects (K = 0: no target).
        masks: (K, H, W) bool masks of those objects.
    """

    image: np.ndarray
    text: str
    boxes: np.ndarray
    masks: np.ndarray


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``KIND:PATH[:EXTRA][@WEIGHT]``.

    Attributes:
        kind: a registered kind (:data:`instancevg.data.sources.KINDS`).
        path: dataset root, instances file, procedural directory or seed, as the kind reads it.
        extra: split-by (RefCOCO family) or image folder (other kinds), or None.
        weight: sampling weight in a mixture (> 0).
    """

    kind: str
    path: str
    extra: str | None = None
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "DataSpec":
        """Parse a SPEC. A bare ``procedural`` means ``procedural:0`` (the benchmark rendered in
        memory from seed 0); a bare directory holding ``dataset.json``, or a ``.json`` file, means
        ``procedural:THAT``.

        Raises:
            ValueError: (one line naming ``text``) unknown kind (the message lists the registered
                kinds), missing PATH, a weight that is not a positive number, or a PATH / EXTRA
                the kind does not take.
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
            bare = _bare(body)
            if bare is None:
                raise ValueError(f"data source {text!r}: expected KIND:PATH with KIND one of {registered_kinds()}, "
                                 f"or a directory holding dataset.json (no {Path(body) / 'dataset.json'}: write one "
                                 f"with `instancevg make-data --out {body}`)")
            kind, rest = bare
        if kind not in _KINDS:
            raise ValueError(f"data source {text!r}: unknown kind {kind!r}; known kinds: {registered_kinds()}")
        path, _, extra = rest.partition(":")
        if not path:
            raise ValueError(f"data source {text!r}: missing PATH after {kind}:")
        try:
            path, extra = _KINDS[kind].parse(path, extra or None)
        except ValueError as exc:
            raise ValueError(f"data source {text!r}: {exc}") from None
        return cls(kind, path, extra, weight)

    def __str__(self) -> str:
        extra = f":{self.extra}" if self.extra else ""
        weight = f"@{self.weight:g}" if self.weight != 1.0 else ""
        return f"{self.kind}:{self.path}{extra}{weight}"

    @property
    def source(self) -> "SourceKind":
        """This SPEC's :class:`SourceKind`. Raises ValueError for an unregistered kind."""
        return get_kind(self)

    def annotation_files(self) -> list[Path]:
        """The annotation files this source reads (for the run record and its checksums)."""
        return self.source.files(self)


def _bare(body: str) -> tuple[str, str] | None:
    """(kind, rest) that a SPEC without ``KIND:`` stands for, or None."""
    if body == "procedural":
        return "procedural", "0"
    path = Path(body)
    if (path / "dataset.json").is_file() or (path.suffix == ".json" and path.is_file()):
        return "procedural", body
    return None


@dataclass(frozen=True)
class SourceKind:
    """What one data-source kind is and how it reads its data.

    Attributes:
        name: the KIND of ``KIND:PATH[:EXTRA]``.
        usage: its SPEC form for help texts, e.g. ``coco:INSTANCES.json[:IMAGE_DIR]``.
        parse: ``(path, extra or None) -> (path, extra or None)``, raising ValueError (a reason,
            without the SPEC, which :meth:`DataSpec.parse` adds) for a PATH or EXTRA the kind
            does not take; touches no file.
        train: ``(spec, config, seed, sampling, cache) -> Dataset``, the
            source's training stream indexed by global sample index (``cache``: a dict shared by
            the sources of one mixture, for indexes worth building once; ``sampling``: a
            :class:`~instancevg.data.sampling.TrainSampling`).
        eval: ``(spec, config, split, limit, full_masks) -> Dataset``, a finite evaluation set of
            model items (the first ``limit`` when given); raises ValueError for an unknown split
            or a kind with no evaluation data.
        samples: ``(spec, split, limit) -> Iterator[RawSample]``, the same evaluation set as
            ``eval`` before preprocessing, in the same order (runtime bundles, calibration).
        files: ``spec -> [Path]``, the annotation files the source reads (none when rendered).
        has_val: whether training sources of this kind validate on their own ``val`` split.
        check_val: ``spec -> None``, raising ValueError when the source cannot validate itself
            (called only when ``has_val``).
        metrics_dir: ``spec -> Path | None``, where ``instancevg eval`` writes its metrics by
            default (None: ``runs/eval``).
    """

    name: str
    usage: str
    parse: Callable[[str, str | None], tuple[str, str | None]]
    train: Callable
    eval: Callable
    samples: Callable[..., Iterator[RawSample]]
    files: Callable[[DataSpec], list[Path]]
    has_val: bool = True
    check_val: Callable[[DataSpec], None] | None = None
    metrics_dir: Callable[[DataSpec], Path | None] | None = None


def register(kind: SourceKind) -> SourceKind:
    """Add ``kind`` to the registry (in registration order) and return it.

    Raises:
        ValueError: a kind of that name is registered already.
    """
    if kind.name in _KINDS:
        raise ValueError(f"data-source kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def registered_kinds() -> list[str]:
    """The registered kind names, in registration order."""
    return list(_KINDS)


def get_kind(spec: DataSpec | str) -> SourceKind:
    """The :class:`SourceKind` of a :class:`DataSpec` (or of a kind name).

    Raises:
        ValueError: an unregistered kind (the message names the SPEC and lists the registered kinds).
    """
    name = spec.kind if isinstance(spec, DataSpec) else spec
    if name not in _KINDS:
        raise ValueError(f"data source {str(spec)!r}: unknown kind {name!r}; known kinds: {registered_kinds()}")
    return _KINDS[name]


def record_samples(records, limit: int | None) -> Iterator[RawSample]:
    """:class:`RawSample` s of loaded :class:`~instancevg.data.readers.records.GroundingRecord` s, one per
    (record, expression) in record order, the first ``limit`` when given (the order of
    :class:`~instancevg.data.dataset.RecordsDataset`)."""
    from ...image_io import load_image
    from ..readers.records import expand_expressions

    items = expand_expressions(records)
    for record, text in items[:limit] if limit is not None else items:
        yield RawSample(load_image(record.image_path), text, record.boxes, record.masks())
