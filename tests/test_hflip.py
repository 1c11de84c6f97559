"""Horizontal flip of real-photo training samples: boxes, masks and left/right words mirror
together; evaluation and procedural data are never flipped."""
from __future__ import annotations

import json

import numpy as np
import pytest

from instancevg.config import get_preset
from instancevg.data.readers.coco import CocoInstances
from instancevg.data.dataset import CocoGroundingDataset
from instancevg.data.sampling import TrainSampling
from instancevg.data.transforms import hflip, swap_left_right
from released_formats import write_instances


@pytest.mark.parametrize("text,mirrored", [
    ("the cup left of the laptop", "the cup right of the laptop"),
    ("Leftmost chair", "Rightmost chair"),
    ("the second bottle from the right", "the second bottle from the left"),
    ("the left-most dog and the righthand cat", "the right-most dog and the lefthand cat"),
    ("the bright light, leftover cake", "the bright light, leftover cake"),  # words, not substrings
])
def test_swap_left_right(text, mirrored):
    assert swap_left_right(text) == mirrored
    assert swap_left_right(mirrored) == text


def test_hflip_mirrors_image_boxes_and_masks():
    image = np.zeros((4, 10, 3), np.uint8)
    image[:, 1:3] = 255
    masks = np.zeros((1, 4, 10), bool)
    masks[0, :, 1:3] = True
    out, boxes, m = hflip(image, np.array([[1, 0, 3, 4]], np.float32), masks)
    np.testing.assert_array_equal(boxes, [[7, 0, 9, 4]])
    assert out[:, 7:9].all() and not out[:, :7].any() and m[0, :, 7:9].all() and m.sum() == 8
    assert hflip(image, np.zeros((0, 4), np.float32), masks[:0])[1].shape == (0, 4)


def test_coco_flip_mirrors_targets_before_the_expression(tmp_path):
    path = write_instances(tmp_path / "coco", tmp_path / "coco")
    (tmp_path / "coco" / "split.json").write_text(json.dumps({"train": [1], "val": [2, 3]}))
    inst = CocoInstances(path)
    images = inst.load_split("train")
    config = get_preset("edge-tiny")
    plain = CocoGroundingDataset(config, images, inst.category_names, seed=0, length=2**62, shuffle=True)
    flipped = CocoGroundingDataset(config, images, inst.category_names, seed=0, length=2**62, shuffle=True,
                                   sampling=TrainSampling(hflip=1.0))
    w = images[0].width
    for g in range(6):
        _, image, masks, boxes, _ = plain.expression(g)
        _, image_f, masks_f, boxes_f, expr = flipped.expression(g)
        np.testing.assert_array_equal(image_f, image[:, ::-1])
        np.testing.assert_array_equal(masks_f, masks[:, :, ::-1])
        np.testing.assert_allclose(boxes_f[:, [0, 2]], w - boxes[:, [2, 0]])
        target = flipped[g]["target"]  # the item's targets are the mirrored boxes the expression picks
        np.testing.assert_allclose(target["boxes_xyxy"].numpy(), boxes_f[list(expr.targets)])
    half = CocoGroundingDataset(config, images, inst.category_names, seed=0, length=2**62, shuffle=True,
                                sampling=TrainSampling(hflip=0.5))
    drawn = [not np.array_equal(half.expression(g)[3], plain.expression(g)[3]) for g in range(40)]  # boxes
    assert 8 <= sum(drawn) <= 32  # about half, and the same every time
    assert drawn == [not np.array_equal(half.expression(g)[3], plain.expression(g)[3]) for g in range(40)]
