"""Tests for instancevg.overlay: drawing a GroundingResult and saving it as PNG."""
from __future__ import annotations

import os

import numpy as np
import pytest

from instancevg.image_io import load_image
from instancevg.overlay import MASK_ALPHA, draw_overlay, instance_color, save_overlay
from instancevg.runtime.result import GroundingResult


def _result(h, w, boxes, scores, text="the red cup", no_target=False):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    masks = np.zeros((len(boxes), h, w), bool)
    for i, (x0, y0, x1, y1) in enumerate(boxes.astype(int)):
        masks[i, y0:y1, x0:x1] = True
    return GroundingResult(
        text=text,
        boxes=boxes,
        scores=np.asarray(scores, np.float32),
        masks=masks,
        union_mask=masks.any(0) if len(boxes) else np.zeros((h, w), bool),
        no_target=no_target,
        image_size=(h, w),
    )


def _image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(40, 200, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("h, w", [(64, 64), (240, 320), (300, 1000), (1500, 2000)])
def test_shape_dtype_and_input_unchanged(h, w):
    img = _image(h, w)
    before = img.copy()
    res = _result(h, w, [[w * 0.4, h * 0.5, w * 0.6, h * 0.8]], [0.87])
    out = draw_overlay(img, res)
    assert out.shape == (h, w, 3)
    assert out.dtype == np.uint8
    assert not np.shares_memory(out, img)
    np.testing.assert_array_equal(img, before)


def test_mask_pixels_tinted_and_far_pixels_unchanged():
    h, w = 400, 600
    img = _image(h, w)
    box = [250, 200, 350, 300]
    res = _result(h, w, [box], [0.9])
    out = draw_overlay(img, res)

    # Interior of the mask (away from the outline and the score tag): alpha-blended colour.
    inner = (slice(230, 290), slice(270, 340))
    color = np.array(instance_color(0), np.float32)
    expected = np.rint(img[inner].astype(np.float32) * (1 - MASK_ALPHA) + color * MASK_ALPHA)
    np.testing.assert_allclose(out[inner].astype(np.float32), expected, atol=1)
    assert (out[inner] != img[inner]).any(axis=-1).mean() > 0.95

    # Far from the mask, box, tag and the top banner: untouched.
    np.testing.assert_array_equal(out[350:, :], img[350:, :])
    np.testing.assert_array_equal(out[100:, :150], img[100:, :150])
    np.testing.assert_array_equal(out[100:, 450:], img[100:, 450:])

    # The banner darkens the top rows.
    assert out[:5].astype(int).mean() < img[:5].astype(int).mean() * 0.6


def test_several_instances_get_distinct_colours():
    h, w = 300, 400
    img = np.full((h, w, 3), 128, np.uint8)
    res = _result(h, w, [[40, 100, 140, 200], [240, 100, 340, 200]], [0.8, 0.7], text="both mugs")
    out = draw_overlay(img, res)
    a = out[160:190, 60:120].reshape(-1, 3).mean(0)
    b = out[160:190, 260:320].reshape(-1, 3).mean(0)
    assert np.abs(a - b).max() > 30
    assert instance_color(0) != instance_color(1)
    assert len({instance_color(i) for i in range(40)}) == 40


def test_several_results_on_one_frame_continue_the_colours():
    # Several expressions on one frame (the runtime's Grounder.ground output, robot_loop.py): the
    # second result's instance takes the palette's next colour, not the first result's colour.
    h, w = 300, 400
    img = np.full((h, w, 3), 128, np.uint8)
    cup = _result(h, w, [[40, 100, 140, 200]], [0.8], text="the cup")
    mug = _result(h, w, [[240, 100, 340, 200]], [0.7], text="the mug")
    absent = _result(h, w, [], [], text="the cat", no_target=True)
    out = draw_overlay(img, [cup, mug, absent])
    for (rows, cols), index in (((slice(160, 190), slice(60, 120)), 0), ((slice(160, 190), slice(260, 320)), 1)):
        expected = 128 * (1 - MASK_ALPHA) + np.array(instance_color(index), np.float32) * MASK_ALPHA
        np.testing.assert_allclose(out[rows, cols].reshape(-1, 3).mean(0), expected, atol=1)
    one = draw_overlay(img, cup)
    banner = lambda im: int((im[:60].astype(int).sum(-1) > 600).sum())  # white text pixels in the top rows
    assert banner(out) > banner(one)  # three expressions' lines, not one
    with pytest.raises(ValueError, match="empty sequence"):
        draw_overlay(img, [])
    with pytest.raises(ValueError, match="image_size"):
        draw_overlay(img, [cup, _result(10, 10, [], [])])


def test_no_target_draws_banner_only():
    h, w = 200, 300
    img = _image(h, w, seed=3)
    res = _result(h, w, [], [], text="the purple elephant", no_target=True)
    assert res.no_target and len(res) == 0
    out = draw_overlay(img, res)
    assert (out[:10] != img[:10]).any()
    # Everything below the banner is untouched.
    np.testing.assert_array_equal(out[h // 2 :], img[h // 2 :])
    # Versus the same text with a target: the banner differs ("[no target]" appended).
    res2 = _result(h, w, [], [], text="the purple elephant", no_target=False)
    assert not np.array_equal(draw_overlay(img, res2)[: h // 4], out[: h // 4])


@pytest.mark.parametrize("h, w", [(64, 64), (48, 2000), (4000, 3000)])
def test_banner_size_adapts(h, w):
    img = np.full((h, w, 3), 200, np.uint8)
    res = _result(h, w, [], [], text="a long referring expression " * 6, no_target=True)
    out = draw_overlay(img, res)
    changed_rows = np.nonzero((out != img).any(axis=(1, 2)))[0]
    assert changed_rows.size > 0
    banner_h = changed_rows.max() + 1
    assert banner_h <= max(h // 2, 20)  # never swallows the image
    assert banner_h >= min(8, h)  # and is not a sliver


def test_non_ascii_text_and_empty_text():
    img = _image(100, 160)
    for text in ["la tasse à café 咖啡", "", "line\nbreak\ttab"]:
        out = draw_overlay(img, _result(100, 160, [[10, 50, 60, 90]], [0.5], text=text))
        assert out.shape == img.shape


def test_box_partly_outside_image_and_box_only_result():
    h, w = 120, 160
    img = _image(h, w)
    res = GroundingResult(
        text="edge",
        boxes=np.array([[-20, 90, 200, 140]], np.float32),
        scores=np.array([0.4], np.float32),
        masks=np.zeros((0, h, w), bool),
        union_mask=np.zeros((h, w), bool),
        no_target=False,
        image_size=(h, w),
    )
    out = draw_overlay(img, res)
    assert out.shape == (h, w, 3)
    assert (out[90:] != img[90:]).any()


def test_size_mismatch_raises():
    img = _image(50, 60)
    with pytest.raises(ValueError, match="image_size"):
        draw_overlay(img, _result(60, 50, [], [], no_target=True))
    bad = _result(50, 60, [[1, 1, 10, 10]], [0.5])
    bad.scores = np.array([0.5, 0.4], np.float32)
    with pytest.raises(ValueError, match="scores"):
        draw_overlay(img, bad)


def test_save_overlay_roundtrip(tmp_path):
    img = _image(70, 90)
    out = draw_overlay(img, _result(70, 90, [[10, 20, 50, 60]], [0.75]))
    p = tmp_path / "ov.png"
    ret = save_overlay(p, out)
    assert ret == p and p.is_file()
    np.testing.assert_array_equal(load_image(p), out)
    # Overwrite in place, again atomically, and no temporary files remain.
    save_overlay(str(p), img)
    np.testing.assert_array_equal(load_image(p), img)
    assert sorted(os.listdir(tmp_path)) == ["ov.png"]


def test_save_overlay_missing_directory(tmp_path):
    target = tmp_path / "missing" / "ov.png"
    with pytest.raises(FileNotFoundError) as info:
        save_overlay(target, _image(8, 8))
    assert "missing" in str(info.value)
    assert not target.exists()
    assert not (tmp_path / "missing").exists()
    assert os.listdir(tmp_path) == []


def test_save_overlay_write_failure_leaves_nothing(tmp_path, monkeypatch):
    p = tmp_path / "ov.png"

    def boom(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(PermissionError, match="cannot save overlay"):
        save_overlay(p, _image(8, 8))
    assert os.listdir(tmp_path) == []


def test_save_overlay_rejects_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"\.png"):
        save_overlay(tmp_path / "ov.jpg", _image(8, 8))
    with pytest.raises(ValueError):
        save_overlay(tmp_path / "ov.png", np.zeros((8, 8, 5), np.uint8))
    d = tmp_path / "dir.png"
    d.mkdir()
    with pytest.raises(IsADirectoryError):
        save_overlay(d, _image(8, 8))
    assert sorted(os.listdir(tmp_path)) == ["dir.png"]
