"""Load the project's own grounding JSON (the procedural benchmark's ``dataset.json``, written by
``instancevg make-data``) into :class:`GroundingRecord` objects.

The released datasets (gRefCOCO, RefCOCO/+/g, Ref-ZOM, COCO instances) have their own readers in
:mod:`instancevg.data.readers.refs` and :mod:`instancevg.data.readers.coco`.

Accepted layouts of the JSON file:

(a) the procedural ``dataset.json`` (see :mod:`instancevg.data.make_data`): a dict whose split keys
    (``"train"``, ``"val"``, ``"test"``, ...) hold lists of records; other keys (``"info"``) are ignored;
(b) a plain list of records (gRefCOCO / Ref-ZOM style) with an optional per-record ``"split"``
    field; when no record has one, the whole list is returned for any requested split;
(c) RefCOCO-style single-target records, where ``"annotations"`` may be a single dict.

A record::

    {"image_id": "...", "file_name": "images/x.png",          # at least one of the two
     "width": W, "height": H,                                   # optional (read from the image)
     "expressions": ["..."],                                    # or "sentences": [{"sent": ...}],
                                                                #   or "expression"/"sentence": "..."
     "annotations": [{"bbox": [x, y, w, h],                     # xywh pixels, w > 0 and h > 0
                      "segmentation": [[x1, y1, x2, y2, ...]]   # polygons, or an RLE dict with
                     }]}                                        #   str (compressed) or list counts

``annotations`` lists the referred objects; an empty list (or ``null``) means no target.
``file_name`` is resolved against ``image_root`` (default: the JSON file's directory); with only an
``image_id`` the image is ``{image_root}/{image_id}.jpg``, ``.jpeg`` or ``.png``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import read_json
from .records import GroundingRecord, expand_expressions

__all__ = ["GroundingRecord", "load_grounding_json", "expand_expressions"]  # records re-exported

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _expressions(rec: dict, where: str) -> list[str]:
    if "expressions" in rec:
        exprs = rec["expressions"]
        if isinstance(exprs, str):
            exprs = [exprs]
    elif "sentences" in rec:
        exprs = []
        for s in rec["sentences"]:
            if isinstance(s, dict):
                text = s.get("sent", s.get("raw"))
                if text is None:
                    raise ValueError(f"{where}: sentence entry without 'sent' or 'raw': {s!r}")
                exprs.append(text)
            else:
                exprs.append(s)
    elif "expression" in rec:
        exprs = [rec["expression"]]
    elif "sentence" in rec:
        exprs = [rec["sentence"]]
    else:
        raise ValueError(f"{where}: missing key 'expressions' (or 'sentences'/'expression'/'sentence')")
    if not isinstance(exprs, list) or not exprs or not all(isinstance(e, str) and e.strip() for e in exprs):
        raise ValueError(f"{where}: 'expressions' must be a non-empty list of non-empty strings, got {exprs!r}")
    return list(exprs)


def _annotations(rec: dict, where: str) -> tuple[np.ndarray, list]:
    if "annotations" not in rec:
        raise ValueError(f"{where}: missing key 'annotations' (use [] for no-target)")
    anns = rec["annotations"]
    if anns is None:
        anns = []
    elif isinstance(anns, dict):
        anns = [anns]
    if not isinstance(anns, list):
        raise ValueError(f"{where}: 'annotations' must be a list or a dict, got {type(anns).__name__}")
    if rec.get("no_target") is True and anns:
        raise ValueError(f"{where}: 'no_target' is true but {len(anns)} annotations are given")
    boxes, segs = [], []
    for k, ann in enumerate(anns):
        if not isinstance(ann, dict):
            raise ValueError(f"{where}: annotation {k} must be a dict, got {type(ann).__name__}")
        if "bbox" not in ann:
            raise ValueError(f"{where}: annotation {k} is missing key 'bbox'")
        bbox = ann["bbox"]
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise ValueError(f"{where}: annotation {k} bbox must be [x, y, w, h], got {bbox!r}")
        try:
            x, y, bw, bh = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: annotation {k} bbox must be numeric, got {bbox!r}") from None
        if not (np.isfinite([x, y, bw, bh]).all() and bw > 0 and bh > 0):
            raise ValueError(f"{where}: annotation {k} bbox {bbox!r} has non-positive or non-finite size")
        boxes.append([x, y, x + bw, y + bh])
        seg = ann.get("segmentation")
        if seg is not None and not isinstance(seg, (list, dict)):
            raise ValueError(f"{where}: annotation {k} segmentation must be a polygon list or RLE dict")
        segs.append(seg)
    return np.asarray(boxes, np.float32).reshape(-1, 4), segs


def _resolve_image(rec: dict, root: Path, where: str) -> Path:
    if rec.get("file_name"):
        path = root / str(rec["file_name"])
        if not path.is_file():
            raise ValueError(f"{where}: image file not found: {path}")
        return path
    if rec.get("image_id") is None or rec.get("image_id") == "":
        raise ValueError(f"{where}: missing key 'file_name' or 'image_id'")
    tried = [root / f"{rec['image_id']}{ext}" for ext in _IMAGE_EXTENSIONS]
    for path in tried:
        if path.is_file():
            return path
    raise ValueError(f"{where}: image file not found, tried {[str(p) for p in tried]}")


def _image_size(rec: dict, path: Path, where: str) -> tuple[int, int]:
    if "width" in rec and "height" in rec:
        try:
            w, h = int(rec["width"]), int(rec["height"])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: width/height must be integers") from None
    else:
        import cv2

        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise ValueError(f"{where}: cannot read image {path} to get its size")
        h, w = img.shape[:2]
    if w <= 0 or h <= 0:
        raise ValueError(f"{where}: non-positive image size {w}x{h}")
    return w, h


def _select_split(data, split: str | None, json_path: Path) -> list:
    if isinstance(data, dict):
        available = sorted(k for k, v in data.items() if isinstance(v, list))
        if split is None:
            raise ValueError(f"{json_path}: split must be given for a dict of splits; available: {available}")
        if split not in available:
            raise ValueError(f"{json_path}: unknown split {split!r}; available splits: {available}")
        return data[split]
    if isinstance(data, list):
        with_split = [r for r in data if isinstance(r, dict) and "split" in r]
        if not with_split or split is None:
            return data
        if len(with_split) != len(data):
            i = next(i for i, r in enumerate(data) if not (isinstance(r, dict) and "split" in r))
            raise ValueError(f"{json_path}: record {i} has no 'split' field while others have one")
        available = sorted({str(r["split"]) for r in data})
        if split not in available:
            raise ValueError(f"{json_path}: unknown split {split!r}; available splits: {available}")
        return [r for r in data if r["split"] == split]
    raise ValueError(f"{json_path}: expected a JSON list of records or a dict of splits, got {type(data).__name__}")


def load_grounding_json(
    json_path: str | Path, split: str | None, image_root: str | Path | None = None
) -> list[GroundingRecord]:
    """Load the records of one split of a grounding JSON file.

    Args:
        json_path: path of the JSON file (any layout described in the module docstring).
        split: split to load (``"train"``, ``"val"``, ``"test"``, ...). ``None`` loads a whole plain
            list; for a dict of splits it is an error.
        image_root: directory that ``file_name`` / ``image_id`` are relative to; default: the
            directory of ``json_path``.

    Returns:
        Records in file order; ``boxes`` converted from xywh to xyxy (float32 pixels).

    Raises:
        FileNotFoundError: ``json_path`` does not exist.
        ValueError: unreadable JSON, unknown split (the message lists the available ones), or a bad
            record (the message names the record index / image id and the problem: missing key,
            bbox with non-positive size, image file not found, ...).
    """
    json_path = Path(json_path)
    root = Path(image_root) if image_root is not None else json_path.parent
    data = read_json(json_path, "grounding JSON")
    raw = _select_split(data, split, json_path)
    records = []
    for i, rec in enumerate(raw):
        if not isinstance(rec, dict):
            raise ValueError(f"{json_path}: record {i} of split {split!r} is not an object")
        ident = rec.get("image_id", rec.get("file_name"))
        where = f"{json_path.name}: record {i} (image_id={ident!r}, split={split!r})"
        exprs = _expressions(rec, where)
        boxes, segs = _annotations(rec, where)
        path = _resolve_image(rec, root, where)
        w, h = _image_size(rec, path, where)
        image_id = str(rec["image_id"]) if rec.get("image_id") not in (None, "") else Path(str(rec["file_name"])).stem
        records.append(
            GroundingRecord(
                image_path=path, width=w, height=h, expressions=exprs, boxes=boxes, segmentations=segs, image_id=image_id
            )
        )
    return records
