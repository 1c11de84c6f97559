"""Scale jitter of real-photo training samples: crops and pads move image, boxes and masks together,
objects cut below half their mask are never targets, and 0 leaves the stream untouched."""
from __future__ import annotations

import json

import numpy as np
import pytest

from instancevg.config import get_preset
from instancevg.data.dataset import CocoGroundingDataset, CopyPasteDataset
from instancevg.data.generators.copy_paste import CopyPasteComposer
from instancevg.data.readers.coco import CocoInstances
from instancevg.data.sources import DataSpec, TrainSampling, train_dataset
from instancevg.data.transforms import ZOOM_FILL, draw_zoom, zoom
from instancevg.training.train_config import TrainConfig
from released_formats import write_instances

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _scene():
    """A 60x90 grey photo with a red 10x20 object and a blue 30x30 one, their masks and boxes."""
    image = np.full((60, 90, 3), 50, np.uint8)
    masks = np.zeros((2, 60, 90), bool)
    masks[0, 5:15, 10:30] = True
    masks[1, 25:55, 50:80] = True
    image[masks[0]], image[masks[1]] = RED, BLUE
    return image, np.array([[10, 5, 30, 15], [50, 25, 80, 55]], np.float32), masks


def _tight_box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.parametrize("factor", [1.5, 2.0, 3.0])
def test_zoom_in_crops_image_boxes_and_masks_together(factor):
    image, boxes, masks = _scene()
    cut = 0
    for seed in range(40):
        out, b, m, visible = zoom(image, boxes, masks, factor, np.random.default_rng(seed))
        assert out.shape == (round(60 / factor), round(90 / factor), 3) and m.shape == (2, *out.shape[:2])
        for k, colour in enumerate((RED, BLUE)):
            painted = (out == colour).all(-1)
            np.testing.assert_array_equal(m[k], painted)  # the mask still covers exactly its pixels
            assert visible[k] == pytest.approx(painted.sum() / masks[k].sum())
            if painted.any():
                np.testing.assert_allclose(b[k], _tight_box(painted))  # clipped box = box of what is left
            else:
                assert b[k, 2] - b[k, 0] == 0 or b[k, 3] - b[k, 1] == 0  # nothing left: a degenerate box
            cut += 0 < visible[k] < 1
    assert cut > 0  # some draws cut an object at the border


def test_zoom_out_pads_with_the_mean_colour_and_keeps_every_pixel():
    image, boxes, masks = _scene()
    for seed in range(20):
        out, b, m, visible = zoom(image, boxes, masks, 0.5, np.random.default_rng(seed))
        assert out.shape == (120, 180, 3)
        np.testing.assert_array_equal(visible, [1.0, 1.0])
        photo = ~(out == ZOOM_FILL).all(-1)
        y0, x0 = np.argwhere(photo)[0]
        np.testing.assert_array_equal(out[y0:y0 + 60, x0:x0 + 90], image)  # the photo, unscaled, in one place
        assert photo.sum() == 60 * 90
        for k in range(2):
            np.testing.assert_allclose(b[k], boxes[k] + [x0, y0, x0, y0])
            np.testing.assert_allclose(b[k], _tight_box(m[k]))


def test_zoom_identity_and_bad_input():
    image, boxes, masks = _scene()
    out, b, m, visible = zoom(image, boxes, masks, 1.0, np.random.default_rng(0))
    assert out is image and m is masks and visible.tolist() == [1.0, 1.0]
    for bad in (0.0, -2.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="zoom factor must be a positive number"):
            zoom(image, boxes, masks, bad, np.random.default_rng(0))
    empty, b0, m0, v0 = zoom(image, boxes[:0], masks[:0], 2.0, np.random.default_rng(0))  # a photo without objects
    assert empty.shape == (30, 45, 3) and b0.shape == (0, 4) and m0.shape == (0, 30, 45) and v0.shape == (0,)
    with pytest.raises(ValueError, match="2 boxes but 1 masks"):
        zoom(image, boxes, masks[:1], 2.0, np.random.default_rng(0))


def test_draw_zoom_covers_both_directions_within_the_range():
    rng = np.random.default_rng(0)
    factors = np.array([draw_zoom(0.5, rng) for _ in range(2000)])
    assert factors.min() >= 1 / 1.5 and factors.max() <= 1.5
    assert 0.4 < (factors > 1).mean() < 0.6  # log-uniform: as many zoom-ins as zoom-outs
    assert factors.min() < 0.7 and factors.max() > 1.43
    untouched = np.random.default_rng(1)
    assert draw_zoom(0.0, untouched) == 1.0
    assert untouched.random() == np.random.default_rng(1).random()  # 0 draws nothing


@pytest.fixture
def coco_train(tmp_path):
    path = write_instances(tmp_path / "coco", tmp_path / "coco")
    (tmp_path / "coco" / "split.json").write_text(json.dumps({"train": [1, 2, 3], "val": []}))
    inst = CocoInstances(path)
    return inst, inst.load_split("train"), path


def test_coco_targets_are_the_zoomed_objects_and_never_mostly_cut(coco_train):
    inst, images, _ = coco_train
    config = get_preset("edge-tiny")
    data = CocoGroundingDataset(config, images, inst.category_names, seed=0, length=2**62, shuffle=True,
                                sampling=TrainSampling(scale_jitter=1.0))
    sizes = set()
    for g in range(40):
        im, image, masks, boxes, expr = data.expression(g)
        sizes.add(image.shape[:2])
        assert masks.shape[1:] == image.shape[:2] and len(boxes) == len(im.objects)
        full = {k: float(im.mask(k).sum()) for k in range(len(im.objects))}
        for k in expr.targets:  # a target keeps at least half of its mask in the frame
            assert masks[k].sum() >= 0.5 * full[k] > 0
        target = data[g]["target"]
        assert target["orig_size"] == image.shape[:2]
        np.testing.assert_allclose(target["boxes_xyxy"].numpy(), boxes[list(expr.targets)].reshape(-1, 4))
    assert len(sizes) > 5  # the frame size changes from draw to draw
    plain = CocoGroundingDataset(config, images, inst.category_names, seed=0, length=2**62, shuffle=True)
    off = CocoGroundingDataset(config, images, inst.category_names, seed=0, length=2**62, shuffle=True,
                               sampling=TrainSampling(scale_jitter=0.0))
    for g in range(10):  # 0 is the stream without scale jitter, sample for sample
        assert off[g]["text"] == plain[g]["text"]
        np.testing.assert_array_equal(off[g]["image"].numpy(), plain[g]["image"].numpy())


def test_copy_paste_zoom_and_the_training_stream(coco_train):
    inst, images, path = coco_train
    config = get_preset("edge-tiny")
    cp = CopyPasteDataset(config, CopyPasteComposer(images), inst.category_names, seed=0,
                          sampling=TrainSampling(scale_jitter=1.0))
    plain = CopyPasteDataset(config, CopyPasteComposer(images), inst.category_names, seed=0)
    changed = 0
    for g in range(12):
        t = cp[g]["target"]
        assert all(m.sum() > 0 for m in t["masks"])  # every target is still in the frame
        changed += t["orig_size"] != plain[g]["target"]["orig_size"]
    assert changed > 6
    stream = train_dataset([DataSpec("coco", str(path)), DataSpec("copy-paste", str(path))], config, seed=0,
                           sampling=TrainSampling(scale_jitter=1.0))
    again = train_dataset([DataSpec("coco", str(path)), DataSpec("copy-paste", str(path))], config, seed=0,
                          sampling=TrainSampling(scale_jitter=1.0))
    assert [stream[g]["text"] for g in range(8)] == [again[g]["text"] for g in range(8)]  # reproducible


@pytest.mark.parametrize("bad", [-0.1, 3.5])
def test_train_config_rejects_a_bad_scale_jitter(bad):
    with pytest.raises(ValueError, match="scale_jitter must be in"):
        TrainConfig(data=["procedural"], out="runs/x", scale_jitter=bad)
