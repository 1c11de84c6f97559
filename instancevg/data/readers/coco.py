"""COCO instances files (``images``, ``annotations``, ``categories``) as an index of objects.

Any COCO-format instances file is an object source: the released grounding datasets (gRefCOCO,
RefCOCO/+/g, Ref-ZOM) take their boxes and masks from one by ``ann_id``, and
:mod:`instancevg.data.generators.coco_expressions` turns the objects of an image into grounding
samples. The index is pycocotools' ``COCO`` (``pycocotools/coco.py``, ``createIndex``); masks are
decoded only when asked for. Crowd annotations (``iscrowd: 1``) are kept and flagged, never dropped.

Splits come from a ``split.json`` beside the instances file (``{"train": [image ids], "val":
[...]}``, as ``shared/data/coco-real``); without one the whole file is a single split, ``all``.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import read_json, say
from .records import decode_segmentation

__all__ = ["CocoObject", "CocoImage", "CocoInstances", "WHOLE_FILE_SPLIT", "default_split_file"]

WHOLE_FILE_SPLIT = "all"
_REQUIRED = {"images": ("id", "width", "height", "file_name"),
             "annotations": ("id", "image_id", "category_id", "bbox"),
             "categories": ("id", "name")}


def default_split_file(instances_json: str | Path) -> Path:
    """``split.json`` beside an instances file (it may not exist)."""
    return Path(instances_json).parent / "split.json"


@dataclass(frozen=True)
class CocoObject:
    """One instance annotation.

    Attributes:
        ann_id: COCO annotation ``id``.
        category_id, category: COCO category id and name (``"dining table"``).
        box: (4,) float32 xyxy in original-image pixels (from COCO's xywh ``bbox``).
        segmentation: raw COCO segmentation (polygons or RLE), decoded by :meth:`CocoImage.masks`.
        iscrowd: COCO's crowd flag (an RLE region over several instances).
        area: COCO ``area`` in pixels (mask area; box area when absent).
    """

    ann_id: int
    category_id: int
    category: str
    box: np.ndarray
    segmentation: object
    iscrowd: bool
    area: float


@dataclass
class CocoImage:
    """One image and all of its annotated objects (an object record: no expressions yet).

    Attributes:
        image_id: COCO image ``id``.
        image_path: the image file (``IMAGE_DIR / file_name``).
        width, height: image size in pixels, as the instances file gives it.
        objects: every annotation of the image, crowd ones included.
    """

    image_id: int
    image_path: Path
    width: int
    height: int
    objects: list[CocoObject]

    def masks(self) -> np.ndarray:
        """(K, H, W) bool masks of ``objects``, in order.

        Raises:
            ValueError: on a malformed segmentation (names the image and the ann_id).
        """
        out = np.zeros((len(self.objects), self.height, self.width), bool)
        for k in range(len(self.objects)):
            out[k] = self.mask(k)
        return out

    def mask(self, k: int) -> np.ndarray:
        """(H, W) bool mask of ``objects[k]``.

        Raises:
            ValueError: on a malformed segmentation (names the image and the ann_id).
        """
        obj = self.objects[k]
        try:
            return decode_segmentation(obj.segmentation, self.height, self.width, obj.box)
        except ValueError as e:
            raise ValueError(f"image {self.image_id} ann_id {obj.ann_id}: {e}") from None


class CocoInstances:
    """Index of one COCO instances file (pycocotools ``COCO``) with checked fields.

    Args:
        instances_json: path of the instances file.
        image_dir: folder that the images' ``file_name`` is relative to (default: the folder of
            ``instances_json``).
        split_file: the split file (default: ``split.json`` beside ``instances_json``; without
            one the whole file is one split, ``all``).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: invalid JSON, a missing top-level key or a missing field (the message names
            the file, the list and the entry), an annotation whose ``image_id`` or
            ``category_id`` is unknown, or a box with non-positive size.
    """

    def __init__(self, instances_json: str | Path, image_dir: str | Path | None = None,
                 split_file: str | Path | None = None):
        from pycocotools.coco import COCO

        self.path = Path(instances_json)
        self.split_file = Path(split_file) if split_file is not None else default_split_file(self.path)
        if split_file is not None and not self.split_file.is_file():
            raise FileNotFoundError(f"split file not found: {self.split_file}")
        self.image_dir = Path(image_dir) if image_dir is not None else self.path.parent
        data = read_json(self.path, "COCO instances file")
        if not isinstance(data, dict):
            raise ValueError(f"{self.path}: expected a COCO instances object, got {type(data).__name__}")
        for key, fields in _REQUIRED.items():
            if key not in data:
                raise ValueError(f"{self.path}: missing top-level key {key!r} (a COCO instances file has "
                                 f"'images', 'annotations' and 'categories')")
            for i, entry in enumerate(data[key]):
                missing = [f for f in fields if f not in entry]
                if missing:
                    raise ValueError(f"{self.path}: {key}[{i}] (id={entry.get('id')!r}) is missing {missing}")
        self.coco = COCO()
        self.coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
            self.coco.createIndex()
        for ann in data["annotations"]:
            if ann["image_id"] not in self.coco.imgs:
                raise ValueError(f"{self.path}: annotation {ann['id']} has unknown image_id {ann['image_id']}")
            if ann["category_id"] not in self.coco.cats:
                raise ValueError(f"{self.path}: annotation {ann['id']} has unknown category_id {ann['category_id']}")
        self._images: dict[int, CocoImage] = {}
        self._exists: dict[int, bool] = {}

    @property
    def category_names(self) -> list[str]:
        """The category names in id order."""
        return [self.coco.cats[c]["name"] for c in sorted(self.coco.cats)]

    def annotation(self, ann_id: int, where: str) -> dict:
        """The raw annotation ``ann_id``.

        Raises:
            ValueError: unknown ``ann_id`` (the message starts with ``where``).
        """
        ann = self.coco.anns.get(ann_id)
        if ann is None:
            raise ValueError(f"{where}: ann_id {ann_id} is not in {self.path}")
        return ann

    def image_path(self, image_id: int) -> Path:
        """``IMAGE_DIR / file_name`` of an image (not checked for existence)."""
        return self.image_dir / self.coco.imgs[image_id]["file_name"]

    def has_image_file(self, image_id: int) -> bool:
        """Whether the image file exists (checked once per image)."""
        if image_id not in self._exists:
            self._exists[image_id] = self.image_path(image_id).is_file()
        return self._exists[image_id]

    def coco_object(self, ann: dict, where: str = "") -> CocoObject:
        """One raw annotation as a :class:`CocoObject`.

        Raises:
            ValueError: a bbox that is not 4 finite numbers with positive width and height.
        """
        bbox = ann["bbox"]
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise ValueError(f"{where or self.path}: ann_id {ann['id']} bbox must be [x, y, w, h], got {bbox!r}") from None
        if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
            raise ValueError(f"{where or self.path}: ann_id {ann['id']} bbox {bbox!r} has non-positive or "
                             f"non-finite size")
        return CocoObject(
            ann_id=int(ann["id"]), category_id=int(ann["category_id"]),
            category=self.coco.cats[ann["category_id"]]["name"],
            box=np.array([x, y, x + w, y + h], np.float32), segmentation=ann.get("segmentation"),
            iscrowd=bool(ann.get("iscrowd", 0)), area=float(ann.get("area", w * h)),
        )

    def image(self, image_id: int) -> CocoImage:
        """The object record of ``image_id`` (built once, then cached).

        Raises:
            ValueError: unknown ``image_id`` or a malformed bbox.
        """
        if image_id not in self._images:
            if image_id not in self.coco.imgs:
                raise ValueError(f"{self.path}: unknown image_id {image_id}")
            info = self.coco.imgs[image_id]
            objects = [self.coco_object(a) for a in self.coco.imgToAnns.get(image_id, [])]
            self._images[image_id] = CocoImage(image_id=image_id, image_path=self.image_path(image_id),
                                               width=int(info["width"]), height=int(info["height"]),
                                               objects=objects)
        return self._images[image_id]

    def split_names(self) -> list[str]:
        """Splits of this file: the keys of the split file, else ``["all"]``."""
        if not self.split_file.is_file():
            return [WHOLE_FILE_SPLIT]
        return sorted(read_json(self.split_file, "split file"))

    def split_image_ids(self, split: str) -> list[int]:
        """Image ids of ``split`` from the split file; without one, every image.

        Raises:
            ValueError: unknown split (lists the available ones) or an id not in the file.
        """
        split_file = self.split_file
        if not split_file.is_file():
            return sorted(self.coco.imgs)
        splits = read_json(split_file, "split file")
        if split not in splits:
            raise ValueError(f"{split_file}: unknown split {split!r}; available splits: {sorted(splits)}")
        ids = [int(i) for i in splits[split]]
        unknown = [i for i in ids if i not in self.coco.imgs]
        if unknown:
            raise ValueError(f"{split_file}: split {split!r} names image ids not in {self.path.name}: {unknown[:5]}")
        return ids

    def load_split(self, split: str) -> list[CocoImage]:
        """The object records of ``split`` whose image file exists, with a summary on stderr.

        Raises:
            FileNotFoundError: none of the split's image files exist (names the first path tried).
            ValueError: see :meth:`split_image_ids` and :meth:`image`.
        """
        ids = self.split_image_ids(split)
        present = [i for i in ids if self.has_image_file(i)]
        if ids and not present:
            raise FileNotFoundError(f"no image of split {split!r} of {self.path} exists, e.g. "
                                    f"{self.image_path(ids[0])}: check the image folder")
        images = [self.image(i) for i in present]
        n_obj = sum(len(im.objects) for im in images)
        n_crowd = sum(o.iscrowd for im in images for o in im.objects)
        whole = "" if self.split_file.is_file() else " (no split file: the whole file)"
        say(f"coco {self.path}: split {split}{whole}: {len(images)} images, {n_obj} objects ({n_crowd} crowd), "
            f"{len(self.coco.cats)} categories, {len(ids) - len(present)} missing images")
        return images
