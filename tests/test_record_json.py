"""Loader tests on hand-written gRefCOCO / Ref-ZOM / RefCOCO style fixtures."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from instancevg.data.readers.record_json import GroundingRecord, expand_expressions, load_grounding_json

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """Tiny 16x12 PNGs named as in the fixtures (deterministic content)."""
    root = tmp_path / "images"
    root.mkdir()
    for k, name in enumerate(("img_a", "img_b", "img_c")):
        img = np.full((12, 16, 3), 40 * k, np.uint8)
        assert cv2.imwrite(str(root / f"{name}.png"), img)
    return root


def _write(tmp_path: Path, data, name: str = "bad.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return p


def _rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((12, 16), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_grefcoco_style_multi_target_and_no_target(image_root):
    recs = load_grounding_json(FIXTURES / "grefcoco_style.json", "train", image_root=image_root)
    assert len(recs) == 2
    a, b = recs
    assert isinstance(a, GroundingRecord)
    assert a.image_id == "img_a" and a.image_path == image_root / "img_a.png"
    assert (a.width, a.height) == (16, 12)
    assert a.expressions == ["both squares", "the two squares"]
    assert a.boxes.dtype == np.float32 and a.boxes.shape == (2, 4)
    np.testing.assert_array_equal(a.boxes, [[1, 1, 6, 5], [9, 6, 14, 11]])
    masks = a.masks()
    assert masks.shape == (2, 12, 16) and masks.dtype == bool
    # polygon rasterisation stays within the box and covers most of it
    for m, (x0, y0, x1, y1) in zip(masks, a.boxes.astype(int)):
        ys, xs = np.nonzero(m)
        assert xs.min() >= x0 and xs.max() < x1 + 1 and ys.min() >= y0 and ys.max() < y1 + 1
        assert m.sum() >= 0.6 * (x1 - x0) * (y1 - y0)
    # two polygons (triangles) of annotation 1 are merged into one square-ish mask
    assert masks[1][7:10, 10:13].all()
    assert not a.no_target
    assert b.no_target and b.boxes.shape == (0, 4) and b.masks().shape == (0, 12, 16)
    pairs = expand_expressions(recs)
    assert [e for _, e in pairs] == ["both squares", "the two squares", "the purple giraffe"]
    assert pairs[0][0] is a and pairs[2][0] is b

    val = load_grounding_json(FIXTURES / "grefcoco_style.json", "val", image_root=image_root)
    assert len(val) == 1 and val[0].expressions == ["the left square"]


def test_grefcoco_style_unknown_split_lists_available(image_root):
    with pytest.raises(ValueError, match=r"unknown split 'test'.*\['train', 'val'\]"):
        load_grounding_json(FIXTURES / "grefcoco_style.json", "test", image_root=image_root)


def test_refzom_style_list_with_split_field(image_root):
    test = load_grounding_json(FIXTURES / "refzom_style.json", "test", image_root=image_root)
    assert [r.image_id for r in test] == ["img_b", "img_a"]
    assert test[0].no_target and test[0].expressions == ["the dog on the sofa", "a cat"]
    np.testing.assert_array_equal(test[1].boxes, [[9, 6, 14, 11]])
    train = load_grounding_json(FIXTURES / "refzom_style.json", "train", image_root=image_root)
    assert len(train) == 1 and train[0].boxes.shape == (2, 4)
    assert len(expand_expressions(test)) == 3
    with pytest.raises(ValueError, match=r"unknown split 'val'.*\['test', 'train'\]"):
        load_grounding_json(FIXTURES / "refzom_style.json", "val", image_root=image_root)


def test_refcoco_style_single_dict_and_uncompressed_rle(image_root):
    recs = load_grounding_json(FIXTURES / "refcoco_style.json", "val", image_root=image_root)
    assert len(recs) == 1
    r = recs[0]
    assert r.image_path == image_root / "img_c.png"  # found from image_id alone
    assert (r.width, r.height) == (16, 12)  # read from the image file
    assert r.expressions == ["the left square", "small box"]
    np.testing.assert_array_equal(r.boxes, [[2, 3, 6, 7]])
    masks = r.masks()
    assert masks.shape == (1, 12, 16)
    np.testing.assert_array_equal(masks[0], _rect(2, 3, 6, 7))


def test_compressed_rle_str_counts(image_root, tmp_path):
    import pycocotools.mask as mask_utils

    m = _rect(4, 2, 9, 8)
    counts = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode()
    data = {"test": [{"image_id": "img_a", "width": 16, "height": 12, "expressions": ["x"],
                      "annotations": [{"bbox": [4, 2, 5, 6], "segmentation": {"size": [12, 16], "counts": counts}}]}]}
    recs = load_grounding_json(_write(tmp_path, data), "test", image_root=image_root)
    np.testing.assert_array_equal(recs[0].masks()[0], m)


def test_default_image_root_is_json_dir(image_root):
    data = [{"file_name": "img_a.png", "expressions": ["a"], "annotations": []}]
    p = _write(image_root, data, "list.json")
    recs = load_grounding_json(p, None)
    assert recs[0].image_path == image_root / "img_a.png" and recs[0].image_id == "img_a"
    # a list without split fields is one split: any requested split returns it
    assert len(load_grounding_json(p, "train")) == 1


def _good_record() -> dict:
    return {"image_id": "img_a", "file_name": "img_a.png", "width": 16, "height": 12,
            "expressions": ["the square"], "annotations": [{"bbox": [1, 1, 5, 4]}]}


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda r: r.pop("expressions"), r"record 0 \(image_id='img_a'.*missing key 'expressions'"),
        (lambda r: r.update(expressions=[]), r"record 0 .*non-empty list"),
        (lambda r: r.pop("annotations"), r"record 0 .*missing key 'annotations'"),
        (lambda r: r.update(annotations=[{"segmentation": []}]), r"record 0 .*annotation 0 is missing key 'bbox'"),
        (lambda r: r.update(annotations=[{"bbox": [1, 1, 0, 4]}]), r"record 0 .*non-positive"),
        (lambda r: r.update(annotations=[{"bbox": [1, 1, 3, -2]}]), r"record 0 .*non-positive"),
        (lambda r: r.update(annotations=[{"bbox": [1, 1, 3]}]), r"record 0 .*\[x, y, w, h\]"),
        (lambda r: r.update(file_name="missing.png"), r"record 0 .*image file not found.*missing.png"),
        (lambda r: (r.pop("file_name"), r.update(image_id="nope")), r"record 0 .*image file not found.*nope.jpg"),
        (lambda r: (r.pop("file_name"), r.pop("image_id")), r"record 0 .*missing key 'file_name' or 'image_id'"),
        (lambda r: r.update(no_target=True), r"record 0 .*'no_target' is true"),
    ],
)
def test_bad_records_raise_value_error(image_root, tmp_path, mutate, pattern):
    rec = _good_record()
    mutate(rec)
    p = _write(tmp_path, {"train": [rec]})
    with pytest.raises(ValueError, match=pattern):
        load_grounding_json(p, "train", image_root=image_root)


def test_bad_files_raise_value_error(image_root, tmp_path):
    with pytest.raises(ValueError, match="not valid JSON"):
        load_grounding_json(_write(tmp_path, "{not json"), "train", image_root=image_root)
    with pytest.raises(ValueError, match="expected a JSON list"):
        load_grounding_json(_write(tmp_path, "3"), "train", image_root=image_root)
    with pytest.raises(ValueError, match="record 1 of split .train. is not an object"):
        load_grounding_json(_write(tmp_path, {"train": [_good_record(), 5]}), "train", image_root=image_root)
    with pytest.raises(ValueError, match="record 1 has no 'split' field"):
        recs = [dict(_good_record(), split="train"), _good_record()]
        load_grounding_json(_write(tmp_path, recs), "train", image_root=image_root)


def test_bad_segmentation_raises_on_masks(image_root, tmp_path):
    rec = _good_record()
    rec["annotations"] = [{"bbox": [1, 1, 5, 4], "segmentation": {"size": [10, 10], "counts": [100]}}]
    (r,) = load_grounding_json(_write(tmp_path, {"train": [rec]}), "train", image_root=image_root)
    with pytest.raises(ValueError, match=r"'img_a'.*annotation 0.*RLE size \[10, 10\]"):
        r.masks()
    rec["annotations"] = [{"bbox": [1, 1, 5, 4], "segmentation": [[1, 2, 3]]}]
    (r,) = load_grounding_json(_write(tmp_path, {"train": [rec]}), "train", image_root=image_root)
    with pytest.raises(ValueError, match="polygon"):
        r.masks()


def test_annotation_without_segmentation_gives_box_mask(image_root, tmp_path):
    (r,) = load_grounding_json(_write(tmp_path, {"train": [_good_record()]}), "train", image_root=image_root)
    np.testing.assert_array_equal(r.masks()[0], _rect(1, 1, 6, 5))
