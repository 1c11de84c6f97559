"""Loaders of the released formats (COCO instances, gRefCOCO, RefCOCO/+/g, Ref-ZOM) on tiny
datasets written by test code (tests/released_formats.py), plus coco-real from ../shared."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from instancevg.data.readers.coco import CocoInstances
from instancevg.data.readers.refs import load_refs
from released_formats import W, H, grefcoco_refs, write_grefcoco, write_instances, write_refcoco, write_refzom

COCO_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco-real"


def test_coco_instances_objects_crowd_kept_and_masks(tmp_path):
    path = write_instances(tmp_path, tmp_path / "img")
    inst = CocoInstances(path, tmp_path / "img")
    images = inst.load_split("train")  # no split.json: the whole file serves any split
    assert [im.image_id for im in images] == [1, 2, 3]
    im2 = images[1]
    assert [o.category for o in im2.objects] == ["person", "dog"]
    assert [o.iscrowd for o in im2.objects] == [True, False]  # crowd kept and flagged
    masks = im2.masks()
    assert masks.shape == (2, H, W) and masks.dtype == bool
    assert masks[0][:40, :30].all() and masks[0].sum() == 30 * 40  # uncompressed RLE
    assert masks[1][10:40, 36:60].mean() > 0.9  # polygon
    im1 = images[0]
    np.testing.assert_allclose(im1.objects[2].box, [20, 4, 40, 24])
    assert im1.masks()[2].sum() == 20 * 20  # compressed RLE
    assert images[2].objects == [] and images[2].masks().shape == (0, H, W)


def test_coco_split_file_and_errors(tmp_path):
    path = write_instances(tmp_path, tmp_path)
    (tmp_path / "split.json").write_text(json.dumps({"train": [1, 2], "val": [3]}))
    inst = CocoInstances(path)
    assert [im.image_id for im in inst.load_split("val")] == [3]
    with pytest.raises(ValueError, match="unknown split 'test'.*'train', 'val'"):
        inst.load_split("test")
    data = json.loads(path.read_text())
    data["annotations"][0]["image_id"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="annotation 101 has unknown image_id 99"):
        CocoInstances(path)
    del data["annotations"][0]["bbox"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"annotations\[0\] \(id=101\) is missing \['bbox'\]"):
        CocoInstances(path)


def test_coco_missing_images_counted_or_fatal(tmp_path, capsys):
    path = write_instances(tmp_path, tmp_path)
    (tmp_path / "COCO_train2014_000000000002.jpg").unlink()
    images = CocoInstances(path).load_split("all")
    assert [im.image_id for im in images] == [1, 3]
    assert "1 missing images" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no image of split"):
        CocoInstances(path, tmp_path / "elsewhere").load_split("all")


def test_grefcoco_multi_and_no_target_one_record_per_sentence(tmp_path, capsys):
    root = write_grefcoco(tmp_path)
    recs = load_refs("grefcoco", root, "train")
    assert [r.expressions for r in recs] == [["Both cups"], ["the two cups"], ["the laptop"], ["the purple elephant"]]
    both = recs[0]
    assert both.ref_id == 0 and both.sent_id == 0 and both.ann_ids == (101, 102) and both.source == "grefcoco"
    assert both.image_path == root / "images" / "train2014" / "COCO_train2014_000000000001.jpg"  # not the ref's file_name
    np.testing.assert_allclose(both.boxes, [[4, 20, 16, 36], [44, 20, 58, 38]])
    assert both.masks().shape == (2, H, W) and both.masks()[0][20:36, 4:16].mean() > 0.9
    assert recs[2].masks()[0].sum() == 400  # RLE laptop
    empty = recs[3]
    assert empty.no_target and empty.boxes.shape == (0, 4) and empty.ann_ids == ()
    err = capsys.readouterr().err
    assert "3 refs, 4 sentences, no-target 33.3 %, multi-target 33.3 %, 0 missing images" in err
    val = load_refs("grefcoco", root, "val")
    assert len(val) == 1 and val[0].ann_ids == (201, 202)


@pytest.mark.parametrize("change, message", [
    (lambda refs: refs[1].update(ann_id=[999]), "ref_id 1: ann_id 999 is not in"),
    (lambda refs: refs[1].update(image_id=77), "ref_id 1: image_id 77 is not in"),
    (lambda refs: refs[0].pop("sentences"), r"ref_id 0: missing \['sentences'\]"),
    (lambda refs: refs[0].update(no_target=True), r"ref_id 0: no_target is true but ann_id is \[101, 102\]"),
    (lambda refs: refs[1].update(ann_id=[202]), "ref_id 1: ann_id \\[202\\] belongs to another image"),
])
def test_grefcoco_bad_refs_name_file_and_ref(tmp_path, change, message):
    refs = grefcoco_refs()
    change(refs)
    root = write_grefcoco(tmp_path, refs)
    with pytest.raises(ValueError, match=message) as e:
        load_refs("grefcoco", root, "train")
    assert "grefs(unc).json" in str(e.value)


def test_grefcoco_pickle_unknown_split_and_missing_layout(tmp_path):
    root = write_grefcoco(tmp_path)
    (root / "grefcoco" / "grefs(unc).json").unlink()
    with open(root / "grefcoco" / "grefs(unc).p", "wb") as f:
        pickle.dump(grefcoco_refs(), f, protocol=2)
    assert len(load_refs("grefcoco", root, "train")) == 4  # the .p form is read first
    with pytest.raises(ValueError, match="unknown split 'testA'; available splits: \\['train', 'val'\\]"):
        load_refs("grefcoco", root, "testA")
    with pytest.raises(FileNotFoundError, match="no refs file"):
        load_refs("grefcoco", tmp_path / "nowhere", "train")


def test_refcoco_pickle_single_target_splits(tmp_path):
    root = write_refcoco(tmp_path, "refcoco+", "unc")
    train = load_refs("refcoco+", root, "train")
    assert [r.expressions[0] for r in train] == ["laptop in the middle", "open laptop"]
    assert all(r.ann_ids == (103,) and r.boxes.shape == (1, 4) for r in train)
    assert [r.ann_ids for r in load_refs("refcoco+", root, "testA")] == [(101,)]
    assert [r.ann_ids for r in load_refs("refcoco+", root, "testB")] == [(202,)]
    root_g = write_refcoco(tmp_path / "g", "refcocog", "umd")
    assert len(load_refs("refcocog", root_g, "train")) == 2  # umd is RefCOCOg's default split-by
    with pytest.raises(FileNotFoundError, match=r"refs\(google\).p"):
        load_refs("refcocog", root_g, "train", split_by="google")


def test_refzom_zero_source_is_no_target(tmp_path):
    root = write_refzom(tmp_path)
    train = load_refs("refzom", root, "train")
    assert [r.no_target for r in train] == [False, True]
    assert train[0].ann_ids == (101, 102)
    assert train[1].image_path.name == "COCO_val2014_000000000003.jpg"
    assert [r.expressions[0] for r in load_refs("refzom", root, "test")] == ["the dog"]


@pytest.mark.skipif(not (COCO_REAL / "instances.json").is_file(),
                    reason="../shared/data/coco-real is absent (real COCO photos live outside the repository)")
def test_coco_real_loads_with_its_split():
    inst = CocoInstances(COCO_REAL / "instances.json", COCO_REAL)
    train, val = inst.load_split("train"), inst.load_split("val")
    assert (len(train), len(val)) == (443, 100)
    assert not {im.image_id for im in train} & {im.image_id for im in val}
    assert len(inst.category_names) == 80 and "dining table" in inst.category_names
    objects = [o for im in train + val for o in im.objects]
    assert len(objects) == 4624 and sum(o.iscrowd for o in objects) == 49
    im = val[0]
    masks = im.masks()
    assert masks.shape == (len(im.objects), im.height, im.width)
    for o, m in zip(im.objects, masks):  # each mask lies inside its box (1 px rounding)
        ys, xs = np.nonzero(m)
        if len(xs):
            assert xs.min() >= o.box[0] - 1.5 and xs.max() <= o.box[2] + 1.5
