"""Readers of the released referring datasets: gRefCOCO, RefCOCO / RefCOCO+ / RefCOCOg, Ref-ZOM.

Each is a list of *refs* (one referred object set, several sentences) over a COCO instances file
that holds the boxes and masks, read by ``ann_id``. Layouts, as released:

========== =========================================== ============================== ===========================
kind       refs                                        instances                      default image folder
========== =========================================== ============================== ===========================
grefcoco   ``ROOT/grefcoco/grefs(unc).p`` or ``.json``  ``ROOT/grefcoco/instances.json`` ``ROOT/images/train2014``
refcoco    ``ROOT/refcoco/refs(unc|google).p``          ``ROOT/refcoco/instances.json``  ``ROOT/images/train2014``
refcoco+   ``ROOT/refcoco+/refs(unc).p``                ``ROOT/refcoco+/instances.json`` (or refer's
refcocog   ``ROOT/refcocog/refs(umd|google).p``         ``ROOT/refcocog/instances.json`` ``images/mscoco/images/train2014``)
refzom     ``ROOT/ref-zom/refs(final).p`` (the release  ``ROOT/ref-zom/instances.json``  ``ROOT/images/trainval2014``
           is ``Ref-ZOM(final).p``, also accepted)
========== =========================================== ============================== ===========================

A ref (gRefCOCO ``grefer.py`` in henghuiding/gRefCOCO, the same file in henghuiding/ReLA
``gres_model/data/datasets/grefer.py``; lichengunc/refer ``refer.py``; toggle1995/RIS-DMMI
``refer/refer.py`` and ``data/dataset_zom.py``)::

    {"ref_id": int, "image_id": int, "split": "train"|"val"|"testA"|"testB"|"test",
     "ann_id": int | [int, ...],            # gRefCOCO: [-1] for no-target
     "category_id": int | [int, ...], "sent_ids": [...], "file_name": "COCO_train2014_..._<ann_id>.jpg",
     "sentences": [{"raw": str, "sent": str, "tokens": [...], "sent_id": int}],
     "no_target": bool,                     # gRefCOCO only
     "source": "zero"|...}                  # Ref-ZOM only: "zero" marks a no-target (one-to-zero) ref

The ref's ``file_name`` carries an ``_<ann_id>`` suffix and is *not* the image file: the image is
``IMAGE_DIR / instances.images[image_id].file_name``, as ReLA's ``grefcoco.py`` builds it. Crowd
annotations that a ref names stay targets (``grefer.getMaskByRef`` decodes them too). The
expression is the sentence's ``raw`` text (ReLA tokenizes ``raw``), or ``sent`` when ``raw`` is
absent.

The refs files are pickles in the released form (``.p``); Python 2 pickles are read with
``encoding="latin1"`` as a fallback. A pickle can run code when loaded: only read files from
the dataset's publisher.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .coco import CocoInstances
from .common import read_json, say
from .records import GroundingRecord

__all__ = ["REF_KINDS", "load_refs", "refs_files"]

# kind -> (dataset folder, default splitBy, refs file names to try (first found wins))
REF_KINDS: dict[str, tuple[str, str]] = {
    "grefcoco": ("grefcoco", "unc"),
    "refcoco": ("refcoco", "unc"),
    "refcoco+": ("refcoco+", "unc"),
    "refcocog": ("refcocog", "umd"),
    "refzom": ("ref-zom", "final"),
}


def refs_files(kind: str, root: str | Path, split_by: str | None = None,
               image_root: str | Path | None = None) -> tuple[Path, Path, Path]:
    """(refs file, instances file, image folder) of a released dataset under ``root``.

    Raises:
        ValueError: unknown ``kind``.
        FileNotFoundError: no refs file, no instances file or no image folder (the message lists
            the paths tried).
    """
    if kind not in REF_KINDS:
        raise ValueError(f"unknown referring dataset kind {kind!r}; known: {sorted(REF_KINDS)}")
    root = Path(root)
    folder, default_by = REF_KINDS[kind]
    by = split_by or default_by
    data_dir = root / folder
    names = {"grefcoco": [f"grefs({by}).p", f"grefs({by}).json"],
             "refzom": [f"refs({by}).p", "Ref-ZOM(final).p"]}.get(kind, [f"refs({by}).p"])
    tried = [data_dir / n for n in names]
    refs = next((p for p in tried if p.is_file()), None)
    if refs is None:
        raise FileNotFoundError(f"{kind}: no refs file, tried {[str(p) for p in tried]}")
    instances = data_dir / "instances.json"
    if not instances.is_file():
        raise FileNotFoundError(f"{kind}: instances file not found: {instances}")
    if image_root is not None:
        images = [Path(image_root)]
    elif kind == "refzom":
        images = [root / "images" / "trainval2014"]
    else:
        images = [root / "images" / "train2014", root / "images" / "mscoco" / "images" / "train2014"]
    found = next((p for p in images if p.is_dir()), None)
    if found is None:
        raise FileNotFoundError(f"{kind}: image folder not found, tried {[str(p) for p in images]} "
                                f"(give another with the image root)")
    return refs, instances, found


def _read_refs(path: Path) -> list:
    if path.suffix == ".json":
        refs = read_json(path, "refs file")
    else:
        try:
            with open(path, "rb") as f:
                try:
                    refs = pickle.load(f)
                except UnicodeDecodeError:  # a Python 2 pickle with non-ASCII str
                    f.seek(0)
                    refs = pickle.load(f, encoding="latin1")
        except (pickle.UnpicklingError, EOFError) as e:
            raise ValueError(f"{path}: not a readable refs pickle: {e}") from None
    if not isinstance(refs, list):
        raise ValueError(f"{path}: expected a list of refs, got {type(refs).__name__}")
    return refs


def _ann_ids(ref: dict, kind: str, where: str) -> list[int]:
    """The ref's target ann_ids; [] for a no-target ref."""
    ids = ref["ann_id"]
    ids = list(ids) if isinstance(ids, (list, tuple)) else [ids]
    try:
        ids = [int(i) for i in ids]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: ann_id must be an int or a list of ints, got {ref['ann_id']!r}") from None
    no_target = ids == [-1] or (kind == "refzom" and ref.get("source") == "zero")
    if ref.get("no_target") is True and not no_target:
        raise ValueError(f"{where}: no_target is true but ann_id is {ref['ann_id']!r} (expected [-1])")
    if no_target:
        return []
    if -1 in ids:
        raise ValueError(f"{where}: ann_id {ref['ann_id']!r} mixes -1 (no-target) with object ids")
    if not ids:
        raise ValueError(f"{where}: empty ann_id list on a ref that is not marked no-target")
    return ids


def _sentences(ref: dict, where: str) -> list[tuple[str, int]]:
    sents = ref["sentences"]
    if not isinstance(sents, list) or not sents:
        raise ValueError(f"{where}: 'sentences' must be a non-empty list")
    out = []
    for j, s in enumerate(sents):
        if not isinstance(s, dict):
            raise ValueError(f"{where}: sentence {j} must be a dict with 'raw' or 'sent'")
        text = s.get("raw") or s.get("sent")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: sentence {j} has no 'raw' or 'sent' text")
        out.append((text.strip(), int(s.get("sent_id", -1))))
    return out


def load_refs(kind: str, root: str | Path, split: str, split_by: str | None = None,
              image_root: str | Path | None = None) -> list[GroundingRecord]:
    """Load one split of a released referring dataset as one record per sentence.

    Args:
        kind: ``grefcoco``, ``refcoco``, ``refcoco+``, ``refcocog`` or ``refzom``.
        root: dataset root (see the module table).
        split: ``train``, ``val``, ``testA``, ``testB`` or ``test``, as the refs file has them.
        split_by: refs file variant (``unc``, ``umd``, ``google``; default per kind).
        image_root: image folder (default per kind).

    Returns:
        ``GroundingRecord`` s, one per sentence, in refs order, ``boxes`` (K, 4) float32 xyxy
        pixels (K = 0 for no-target), raw segmentations decoded lazily, ``ref_id`` /
        ``sent_id`` / ``ann_ids`` set. Refs whose image file is missing are skipped and counted
        in the summary printed on stderr (refs, sentences, no-target and multi-target shares,
        missing images).

    Raises:
        FileNotFoundError: missing files (see :func:`refs_files`), or no image of the split exists.
        ValueError: unknown split (lists the available ones), a ref missing a field, or an
            ``ann_id`` / ``image_id`` not in the instances file; the message names the file and
            the ``ref_id``.
    """
    refs_path, inst_path, image_dir = refs_files(kind, root, split_by, image_root)
    refs = _read_refs(refs_path)
    instances = CocoInstances(inst_path, image_dir)
    splits = sorted({str(r.get("split")) for r in refs if isinstance(r, dict)})
    if split not in splits:
        raise ValueError(f"{refs_path}: unknown split {split!r}; available splits: {splits}")
    records: list[GroundingRecord] = []
    n_refs = n_empty = n_multi = 0
    missing: set[int] = set()
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict):
            raise ValueError(f"{refs_path}: ref {i} is not a dict")
        if ref.get("split") != split:
            continue
        where = f"{refs_path.name}: ref_id {ref.get('ref_id', f'#{i}')}"
        lacking = [k for k in ("ref_id", "image_id", "ann_id", "sentences") if k not in ref]
        if lacking:
            raise ValueError(f"{where}: missing {lacking}")
        image_id = int(ref["image_id"])
        if image_id not in instances.coco.imgs:
            raise ValueError(f"{where}: image_id {image_id} is not in {inst_path}")
        objects = [instances.coco_object(instances.annotation(a, where), where) for a in _ann_ids(ref, kind, where)]
        bad = [o.ann_id for o in objects if instances.coco.anns[o.ann_id]["image_id"] != image_id]
        if bad:
            raise ValueError(f"{where}: ann_id {bad} belongs to another image than image_id {image_id}")
        sentences = _sentences(ref, where)
        if not instances.has_image_file(image_id):
            missing.add(image_id)
            continue
        n_refs += 1
        n_empty += not objects
        n_multi += len(objects) > 1
        info = instances.coco.imgs[image_id]
        boxes = np.stack([o.box for o in objects]) if objects else np.zeros((0, 4), np.float32)
        segs = [o.segmentation for o in objects]
        ann_ids = tuple(o.ann_id for o in objects)
        for text, sent_id in sentences:
            records.append(GroundingRecord(
                image_path=instances.image_path(image_id), width=int(info["width"]), height=int(info["height"]),
                expressions=[text], boxes=boxes, segmentations=segs, image_id=str(image_id),
                ref_id=int(ref["ref_id"]), sent_id=sent_id, ann_ids=ann_ids, source=kind))
    if missing and not records:
        raise FileNotFoundError(f"{kind} split {split!r}: none of the images exist, e.g. "
                                f"{instances.image_path(next(iter(missing)))}")
    share = 100.0 / max(1, n_refs)
    say(f"{kind} {refs_path} split {split}: {n_refs} refs, {len(records)} sentences, "
        f"no-target {n_empty * share:.1f} %, multi-target {n_multi * share:.1f} %, "
        f"{len(missing)} missing images")
    return records
