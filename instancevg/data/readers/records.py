"""The grounding record every loader produces, and segmentation decoding.

A :class:`GroundingRecord` is one image, the expressions that refer to one set of objects in it
(zero, one or many), and those objects' boxes and raw segmentations. Masks are decoded only when
asked for (:meth:`GroundingRecord.masks`), so loading a dataset of ~280k sentences indexes it
without rasterising anything.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils

__all__ = ["GroundingRecord", "decode_segmentation", "expand_expressions"]


@dataclass
class GroundingRecord:
    """One image with its referring expressions and the referred objects.

    Attributes:
        image_path: absolute or root-relative path of the image file (exists at load time).
        width, height: image size in pixels.
        expressions: referring expressions that all refer to the same objects.
        boxes: (K, 4) float32 xyxy pixel boxes of the K referred objects (K = 0: no target).
        segmentations: K raw segmentation objects (polygon list, RLE dict, or None when absent).
        image_id: identifier of the image / record.
        ref_id: the released dataset's ``ref_id`` (-1 when the source has none).
        sent_id: the released dataset's ``sent_id`` of the (single) expression (-1 when none).
        ann_ids: the COCO ``ann_id`` of each referred object (empty for no-target or when the
            source has none).
        source: which loader made the record (``grefcoco``, ``refcoco``, ``coco``, ``json`` ...).
    """

    image_path: Path
    width: int
    height: int
    expressions: list[str]
    boxes: np.ndarray
    segmentations: list = field(default_factory=list)
    image_id: str = ""
    ref_id: int = -1
    sent_id: int = -1
    ann_ids: tuple[int, ...] = ()
    source: str = "json"

    @property
    def no_target(self) -> bool:
        """True when the expressions refer to nothing (K = 0)."""
        return int(self.boxes.shape[0]) == 0

    def masks(self) -> np.ndarray:
        """Decode the per-object masks.

        Returns:
            (K, H, W) bool. Polygons are rasterised with pycocotools (all polygons of an object
            merged); RLE dicts may have compressed (str/bytes) or uncompressed (list) counts. An
            annotation without segmentation gives a filled box mask.

        Raises:
            ValueError: malformed segmentation or RLE size different from (height, width).
        """
        h, w = self.height, self.width
        out = np.zeros((len(self.segmentations), h, w), bool)
        for k, seg in enumerate(self.segmentations):
            try:
                out[k] = decode_segmentation(seg, h, w, self.boxes[k])
            except ValueError as e:
                raise ValueError(f"record {self.image_id!r}: annotation {k}: {e}") from None
        return out


def _rle_decode(rle: dict) -> np.ndarray:
    """pycocotools decode -> (H, W) bool, silencing its NumPy-2 ``__array__`` DeprecationWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


def decode_segmentation(seg, h: int, w: int, box_xyxy: np.ndarray) -> np.ndarray:
    """One COCO segmentation -> (h, w) bool mask.

    Args:
        seg: polygons (a list of flat ``[x1, y1, x2, y2, ...]`` lists, or one such list), an RLE
            dict with compressed (str/bytes) or uncompressed (list) ``counts``, or ``None``.
        h, w: image height and width in pixels (an RLE's ``size`` must equal them).
        box_xyxy: (4,) pixel box, filled when ``seg`` is None.

    Raises:
        ValueError: on a malformed segmentation (message says what is wrong).

    Polygons are merged and rasterised with pycocotools, as COCO's ``annToMask``.
    """
    if seg is None:
        m = np.zeros((h, w), bool)
        x1, y1, x2, y2 = box_xyxy
        m[max(0, int(np.floor(y1))) : int(np.ceil(y2)), max(0, int(np.floor(x1))) : int(np.ceil(x2))] = True
        return m
    if isinstance(seg, dict):
        if "counts" not in seg or "size" not in seg:
            raise ValueError(f"RLE segmentation needs 'counts' and 'size', got keys {sorted(seg)}")
        size = [int(v) for v in seg["size"]]
        if size != [h, w]:
            raise ValueError(f"RLE size {size} differs from image size [height, width] = {[h, w]}")
        counts = seg["counts"]
        if isinstance(counts, list):
            if sum(int(c) for c in counts) != h * w:
                raise ValueError(f"uncompressed RLE counts sum to {sum(counts)}, expected {h * w}")
            rle = mask_utils.frPyObjects({"size": size, "counts": [int(c) for c in counts]}, h, w)
        elif isinstance(counts, (str, bytes)):
            rle = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        else:
            raise ValueError(f"RLE counts must be str, bytes or list, got {type(counts).__name__}")
        return _rle_decode(rle)
    if isinstance(seg, list):
        polys = [seg] if seg and not isinstance(seg[0], (list, tuple)) else seg
        polys = [[float(v) for v in p] for p in polys]
        if not polys or any(len(p) < 6 or len(p) % 2 for p in polys):
            raise ValueError("polygon segmentation needs lists of >= 3 (x, y) pairs")
        rles = mask_utils.frPyObjects(polys, h, w)
        return _rle_decode(mask_utils.merge(rles))
    raise ValueError(f"segmentation must be a polygon list or an RLE dict, got {type(seg).__name__}")


def expand_expressions(records: list[GroundingRecord]) -> list[tuple[GroundingRecord, str]]:
    """One ``(record, expression)`` pair per expression, in record order."""
    return [(rec, expr) for rec in records for expr in rec.expressions]
