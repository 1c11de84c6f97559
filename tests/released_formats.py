"""Writers of tiny datasets in the released formats, for the loader tests.

Everything is made here by test code: a COCO instances file over three 64x48 JPEGs named as COCO
train2014 images, and refs files in gRefCOCO (JSON), RefCOCO (pickle, one ``ann_id``) and Ref-ZOM
(pickle, ``source: "zero"``) form, laid out as the released datasets are.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_utils

W, H = 64, 48
CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person"},
              {"id": 18, "name": "dog", "supercategory": "animal"},
              {"id": 47, "name": "cup", "supercategory": "kitchen"},
              {"id": 73, "name": "laptop", "supercategory": "electronic"}]


def _rect_poly(x0, y0, x1, y1) -> list[list[float]]:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _rle(x0, y0, x1, y1, compressed: bool) -> dict:
    m = np.zeros((H, W), np.uint8, order="F")
    m[y0:y1, x0:x1] = 1
    if compressed:
        r = mask_utils.encode(np.asfortranarray(m))
        return {"size": [H, W], "counts": r["counts"].decode("ascii")}
    flat = m.flatten(order="F")
    counts, cur, run = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            cur, run = v, 0
        run += 1
    counts.append(run)
    return {"size": [H, W], "counts": counts}


def annotations() -> list[dict]:
    """Image 1: two cups (polygons) and a laptop (compressed RLE); image 2: a crowd of people
    (uncompressed RLE) and a dog; image 3: nothing."""
    def ann(i, image_id, cat, box, seg, crowd=0):
        x0, y0, x1, y1 = box
        return {"id": i, "image_id": image_id, "category_id": cat, "bbox": [x0, y0, x1 - x0, y1 - y0],
                "segmentation": seg, "area": float((x1 - x0) * (y1 - y0)), "iscrowd": crowd}
    return [
        ann(101, 1, 47, (4, 20, 16, 36), _rect_poly(4, 20, 16, 36)),
        ann(102, 1, 47, (44, 20, 58, 38), _rect_poly(44, 20, 58, 38)),
        ann(103, 1, 73, (20, 4, 40, 24), _rle(20, 4, 40, 24, compressed=True)),
        ann(201, 2, 1, (0, 0, 30, 40), _rle(0, 0, 30, 40, compressed=False), crowd=1),
        ann(202, 2, 18, (36, 10, 60, 40), _rect_poly(36, 10, 60, 40)),
    ]


def write_instances(folder: Path, image_dir: Path, file_name=lambda i: f"COCO_train2014_{i:012d}.jpg") -> Path:
    """instances.json in ``folder`` and three JPEGs in ``image_dir``; returns the instances path."""
    folder.mkdir(parents=True, exist_ok=True)
    image_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for i in (1, 2, 3):
        name = file_name(i)
        img = np.full((H, W, 3), 60 * i, np.uint8)
        (image_dir / name).parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(image_dir / name), img)
        images.append({"id": i, "width": W, "height": H, "file_name": name})
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations(), "categories": CATEGORIES}))
    return path


def _sent(text: str, sid: int) -> dict:
    return {"raw": text, "sent": text.lower(), "tokens": text.lower().split(), "sent_id": sid}


def grefcoco_refs() -> list[dict]:
    """gRefCOCO refs: multi-target, single, no-target ([-1]), and a val ref."""
    return [
        {"ref_id": 0, "image_id": 1, "ann_id": [101, 102], "category_id": [47, 47], "split": "train",
         "sentences": [_sent("Both cups", 0), _sent("the two cups", 1)], "sent_ids": [0, 1],
         "no_target": False, "file_name": "COCO_train2014_000000000001_101.jpg"},
        {"ref_id": 1, "image_id": 1, "ann_id": [103], "category_id": [73], "split": "train",
         "sentences": [_sent("the laptop", 2)], "sent_ids": [2], "no_target": False,
         "file_name": "COCO_train2014_000000000001_103.jpg"},
        {"ref_id": 2, "image_id": 3, "ann_id": [-1], "category_id": [-1], "split": "train",
         "sentences": [_sent("the purple elephant", 3)], "sent_ids": [3], "no_target": True,
         "file_name": "COCO_train2014_000000000003_-1.jpg"},
        {"ref_id": 3, "image_id": 2, "ann_id": [201, 202], "category_id": [1, 18], "split": "val",
         "sentences": [_sent("the people and the dog", 4)], "sent_ids": [4], "no_target": False,
         "file_name": "COCO_train2014_000000000002_201.jpg"},
    ]


def write_grefcoco(root: Path, refs: list[dict] | None = None) -> Path:
    """ROOT/grefcoco/{grefs(unc).json, instances.json}, ROOT/images/train2014/."""
    write_instances(root / "grefcoco", root / "images" / "train2014")
    (root / "grefcoco" / "grefs(unc).json").write_text(json.dumps(grefcoco_refs() if refs is None else refs))
    return root


def write_refcoco(root: Path, name: str = "refcoco", split_by: str = "unc") -> Path:
    """ROOT/<name>/{refs(<split_by>).p, instances.json} (a protocol-2 pickle, one ann_id per ref)."""
    write_instances(root / name, root / "images" / "train2014")
    refs = [
        {"ref_id": 10, "image_id": 1, "ann_id": 103, "category_id": 73, "split": "train",
         "sentences": [_sent("laptop in the middle", 20), _sent("open laptop", 21)], "sent_ids": [20, 21],
         "file_name": "COCO_train2014_000000000001_103.jpg"},
        {"ref_id": 11, "image_id": 1, "ann_id": 101, "category_id": 47, "split": "testA",
         "sentences": [_sent("left cup", 22)], "sent_ids": [22], "file_name": "COCO_train2014_000000000001_101.jpg"},
        {"ref_id": 12, "image_id": 2, "ann_id": 202, "category_id": 18, "split": "testB",
         "sentences": [_sent("dog", 23)], "sent_ids": [23], "file_name": "COCO_train2014_000000000002_202.jpg"},
    ]
    with open(root / name / f"refs({split_by}).p", "wb") as f:
        pickle.dump(refs, f, protocol=2)
    return root


def write_refzom(root: Path) -> Path:
    """ROOT/ref-zom/{refs(final).p, instances.json}, ROOT/images/trainval2014/ (train2014 and val2014 names)."""
    write_instances(root / "ref-zom", root / "images" / "trainval2014",
                    file_name=lambda i: f"COCO_{'val' if i == 3 else 'train'}2014_{i:012d}.jpg")
    refs = [
        {"ref_id": 30, "image_id": 1, "ann_id": [101, 102], "split": "train", "source": "many",
         "sentences": [_sent("all the cups", 40)]},
        {"ref_id": 31, "image_id": 3, "ann_id": [], "split": "train", "source": "zero",
         "sentences": [_sent("the red car", 41)]},
        {"ref_id": 32, "image_id": 2, "ann_id": [202], "split": "test", "source": "one",
         "sentences": [_sent("the dog", 42)]},
    ]
    with open(root / "ref-zom" / "refs(final).p", "wb") as f:
        pickle.dump(refs, f, protocol=2)
    return root
