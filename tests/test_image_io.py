"""Tests for instancevg.image_io: file decoding and in-memory normalisation to (H, W, 3) uint8."""
from __future__ import annotations

import io
import struct
import warnings
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, features

from instancevg.image_io import ImageLoadError, as_rgb_uint8, load_image


def _check_rgb(arr: np.ndarray, h: int, w: int) -> None:
    assert isinstance(arr, np.ndarray)
    assert arr.dtype == np.uint8
    assert arr.shape == (h, w, 3)
    assert arr.flags["C_CONTIGUOUS"]


def _gradient_rgb(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1).astype(np.uint8)


# ----------------------------------------------------------------------------- load_image: good


def test_rgb_jpeg(tmp_path):
    rgb = _gradient_rgb(37, 53)
    p = tmp_path / "a.jpg"
    Image.fromarray(rgb).save(p, quality=95)
    out = load_image(p)
    _check_rgb(out, 37, 53)
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 4  # lossy but close


def test_rgb_png_exact_and_str_path(tmp_path):
    rgb = _gradient_rgb(20, 31)
    p = tmp_path / "a.png"
    Image.fromarray(rgb).save(p)
    out = load_image(str(p))
    _check_rgb(out, 20, 31)
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("ext", ["bmp", "webp", "gif", "tiff"])
def test_other_formats(tmp_path, ext):
    if ext == "webp" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    rgb = _gradient_rgb(12, 17)
    p = tmp_path / f"a.{ext}"
    kwargs = {"lossless": True} if ext == "webp" else {}
    Image.fromarray(rgb).save(p, **kwargs)
    out = load_image(p)
    _check_rgb(out, 12, 17)
    if ext in ("bmp", "webp", "tiff"):
        np.testing.assert_array_equal(out, rgb)


def test_gray_png_replicated(tmp_path):
    gray = (np.arange(6 * 9).reshape(6, 9) * 4).astype(np.uint8)
    p = tmp_path / "g.png"
    Image.fromarray(gray, mode="L").save(p)
    out = load_image(p)
    _check_rgb(out, 6, 9)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_bilevel_png(tmp_path):
    img = Image.new("1", (5, 4), 0)
    img.putpixel((2, 1), 1)
    p = tmp_path / "b.png"
    img.save(p)
    out = load_image(p)
    _check_rgb(out, 4, 5)
    assert out[1, 2].tolist() == [255, 255, 255]
    assert out[0, 0].tolist() == [0, 0, 0]


def test_rgba_png_composited_over_white(tmp_path):
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[0, 0] = [10, 20, 30, 0]  # fully transparent -> white
    rgba[0, 1] = [10, 20, 30, 255]  # opaque -> unchanged
    rgba[0, 2] = [0, 0, 0, 128]  # half black over white
    rgba[1:, :] = [200, 100, 50, 255]
    p = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(p)
    out = load_image(p)
    _check_rgb(out, 3, 4)
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [10, 20, 30]
    expected = round(255 * (1 - 128 / 255))
    assert out[0, 2].tolist() == [expected] * 3
    assert (out[1:] == np.array([200, 100, 50], np.uint8)).all()


def test_la_png_composited_over_white(tmp_path):
    la = np.zeros((2, 2, 2), np.uint8)
    la[0, 0] = [40, 0]
    la[0, 1] = [40, 255]
    la[1, :] = [100, 255]
    p = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(p)
    out = load_image(p)
    _check_rgb(out, 2, 2)
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [40, 40, 40]


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (3, 2), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    img.putpixel((1, 0), 1)
    p = tmp_path / "p.png"
    img.save(p, transparency=0)
    out = load_image(p)
    _check_rgb(out, 2, 3)
    assert out[0, 0].tolist() == [255, 255, 255]  # transparent index -> white
    assert out[0, 1].tolist() == [0, 0, 255]


def test_16bit_gray_png_scaled(tmp_path):
    a16 = np.array([[0, 257, 65535, 32896], [1000, 2000, 40000, 65000]], np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(a16).save(p)
    assert Image.open(p).mode.startswith("I")
    out = load_image(p)
    _check_rgb(out, 2, 4)
    np.testing.assert_array_equal(out[..., 0], np.rint(a16 / 257.0).astype(np.uint8))
    assert out[0].tolist() == [[0] * 3, [1] * 3, [255] * 3, [128] * 3]


def test_16bit_rgb_png(tmp_path):
    cv2 = pytest.importorskip("cv2")
    bgr16 = np.zeros((3, 2, 3), np.uint16)
    bgr16[0, 0] = [65535, 32896, 0]  # B, G, R
    p = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(p), bgr16)
    out = load_image(p)
    _check_rgb(out, 3, 2)
    assert out[0, 0].tolist() == [0, 128, 255]


def test_one_pixel(tmp_path):
    p = tmp_path / "one.png"
    Image.fromarray(np.array([[[1, 2, 3]]], np.uint8)).save(p)
    out = load_image(p)
    _check_rgb(out, 1, 1)
    assert out[0, 0].tolist() == [1, 2, 3]


def test_exif_orientation_applied(tmp_path):
    # Stored 40 wide x 20 high: left half red, right half blue. Orientation 6 = rotate 90 deg
    # clockwise for display -> 20 wide x 40 high, red on top, blue at the bottom.
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = [255, 0, 0]
    stored[:, 20:] = [0, 0, 255]
    img = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif, quality=95)
    assert Image.open(p).size == (40, 20)
    out = load_image(p)
    _check_rgb(out, 40, 20)
    top = out[2:16].reshape(-1, 3).mean(0)
    bottom = out[24:38].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_large_non_square(tmp_path):
    rgb = _gradient_rgb(513, 1031)
    p = tmp_path / "big.png"
    Image.fromarray(rgb).save(p)
    np.testing.assert_array_equal(load_image(p), rgb)


# ----------------------------------------------------------------------------- load_image: bad


def _assert_load_error(path, *fragments):
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "\n" not in msg
    for frag in fragments:
        assert frag in msg.lower()
    assert isinstance(info.value, ValueError)


def test_missing_file(tmp_path):
    _assert_load_error(tmp_path / "nope.jpg", "no such file")


def test_directory(tmp_path):
    d = tmp_path / "dir.png"
    d.mkdir()
    _assert_load_error(d, "directory")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    _assert_load_error(p, "empty")


def test_text_file_named_png(tmp_path):
    p = tmp_path / "fake.png"
    p.write_text("this is not an image\nsecond line\n")
    _assert_load_error(p, "not a recognised image")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path, fmt):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # incompressible
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format=fmt)
    data = buf.getvalue()
    p = tmp_path / f"trunc.{fmt.lower()}"
    p.write_bytes(data[: len(data) // 2])
    _assert_load_error(p)


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def test_zero_size_png(tmp_path):
    ihdr = struct.pack(">IIBBBBB", 0, 5, 8, 2, 0, 0, 0)  # width 0, height 5, 8-bit RGB
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b""))
        + _png_chunk(b"IEND", b"")
    )
    p = tmp_path / "zero.png"
    p.write_bytes(data)
    _assert_load_error(p)


def test_not_a_path():
    with pytest.raises(ImageLoadError):
        load_image(12345.6)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- as_rgb_uint8


def test_as_rgb_uint8_passthrough_is_copy():
    a = _gradient_rgb(5, 7)
    out = as_rgb_uint8(a)
    _check_rgb(out, 5, 7)
    np.testing.assert_array_equal(out, a)
    assert not np.shares_memory(out, a)
    before = a.copy()
    out[0, 0] = [9, 9, 9]
    np.testing.assert_array_equal(a, before)


def test_as_rgb_uint8_non_contiguous():
    a = _gradient_rgb(10, 12)[::2, ::3]
    out = as_rgb_uint8(a)
    _check_rgb(out, 5, 4)
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 1)])
def test_as_rgb_uint8_gray(shape):
    g = np.arange(24, dtype=np.uint8).reshape(shape)
    out = as_rgb_uint8(g)
    _check_rgb(out, 4, 6)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g.reshape(4, 6))


def test_as_rgb_uint8_rgba_over_white():
    a = np.zeros((1, 3, 4), np.uint8)
    a[0, 0] = [1, 2, 3, 0]
    a[0, 1] = [1, 2, 3, 255]
    a[0, 2] = [255, 0, 0, 51]  # 20 % red over white
    out = as_rgb_uint8(a)
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [1, 2, 3]
    assert out[0, 2].tolist() == [255, 204, 204]


def test_as_rgb_uint8_float():
    f = np.array([[[0.0, 0.5, 1.0]], [[0.25, 1.0 + 1e-4, -1e-4]]], np.float32)
    out = as_rgb_uint8(f)
    _check_rgb(out, 2, 1)
    assert out[0, 0].tolist() == [0, 128, 255]
    assert out[1, 0].tolist() == [64, 255, 0]
    out64 = as_rgb_uint8(np.full((2, 2), 0.5, np.float64))
    assert (out64 == 128).all()


def test_as_rgb_uint8_uint16_and_ints():
    u16 = np.array([[0, 257, 65535]], np.uint16)
    assert as_rgb_uint8(u16)[0, :, 0].tolist() == [0, 1, 255]
    i64 = np.array([[0, 128, 255]], np.int64)
    assert as_rgb_uint8(i64)[0, :, 1].tolist() == [0, 128, 255]
    with pytest.raises(ImageLoadError, match=r"\[0, 255\]"):
        as_rgb_uint8(np.array([[0, 300]], np.int32))


def test_as_rgb_uint8_pil():
    rgb = _gradient_rgb(6, 8)
    np.testing.assert_array_equal(as_rgb_uint8(Image.fromarray(rgb)), rgb)
    gray = Image.fromarray(np.full((3, 2), 77, np.uint8), mode="L")
    assert (as_rgb_uint8(gray) == 77).all()
    rgba = Image.new("RGBA", (2, 2), (10, 20, 30, 0))
    assert (as_rgb_uint8(rgba) == 255).all()
    cmyk = Image.new("CMYK", (2, 2), (0, 0, 0, 0))
    _check_rgb(as_rgb_uint8(cmyk), 2, 2)


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (np.zeros((4,), np.uint8), "shape"),
        (np.zeros((2, 2, 2, 3), np.uint8), "shape"),
        (np.zeros((4, 4, 2), np.uint8), "channels"),
        (np.zeros((4, 4, 5), np.uint8), "channels"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.zeros((4, 0), np.uint8), "empty"),
        (np.zeros((4, 4), bool), "bool"),
        (np.array([[0.1, np.nan]], np.float32), "nan"),
        (np.array([[0.1, np.inf]], np.float64), "nan or inf"),
        (np.array([[0.0, 255.0]], np.float32), "[0, 1]"),
        (np.array([[-0.5, 0.5]], np.float32), "[0, 1]"),
        (np.zeros((2, 2), np.complex64), "dtype"),
        ([[1, 2], [3, 4]], "numpy array"),
        (None, "numpy array"),
    ],
)
def test_as_rgb_uint8_rejects(bad, fragment):
    with pytest.raises(ImageLoadError) as info:
        as_rgb_uint8(bad)
    msg = str(info.value)
    assert fragment.lower() in msg.lower()
    assert "\n" not in msg


def test_as_rgb_uint8_does_not_modify_input():
    f = np.random.default_rng(1).random((5, 5, 4)).astype(np.float32)
    before = f.copy()
    as_rgb_uint8(f)
    np.testing.assert_array_equal(f, before)


# ---- large photos: downscaled at load (instancevg.api.image_array) ----------------------------


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_large_photo_is_downscaled_at_load_with_a_warning(tmp_path, suffix):
    from instancevg.api import image_array

    y, x = np.mgrid[0:300, 0:500]
    rgb = np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)
    path = tmp_path / f"big{suffix}"
    Image.fromarray(rgb).save(path)
    with pytest.warns(UserWarning, match="image 500x300 is grounded at 100x60"):
        small = image_array(path, max_side=100)
    assert small.shape == (60, 100, 3) and small.dtype == np.uint8
    # the same pixels as downscaling the full decode (JPEG: decoded at a reduced scale, so close only)
    ref = cv2.resize(load_image(path), (100, 60), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - ref).mean() < (1.0 if suffix == ".png" else 4.0)
    with pytest.warns(UserWarning, match="grounded at 100x60"):
        assert image_array(rgb, max_side=100).shape == (60, 100, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an image that fits: untouched, no warning
        assert image_array(path, max_side=500).shape == (300, 500, 3)
        assert image_array(rgb, max_side=500) is not None


def test_grounding_result_and_overlay_are_at_the_working_size(tmp_path, tiny_model, monkeypatch, capsys):
    import torch

    import instancevg.api as api
    from instancevg.overlay import draw_overlay

    monkeypatch.setattr(api, "GROUNDING_MAX_SIDE", 64)
    monkeypatch.setattr(api.image_array, "__defaults__", (64, "bgr"))
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((100, 400, 3), 90, np.uint8)).save(path)
    model = api.InstanceVG(tiny_model, torch.device("cpu"))
    with pytest.warns(UserWarning, match="400x100 is grounded at 64x16"):
        r = model.ground(path, "the red circle")
    assert r.image_size == (16, 64) and r.union_mask.shape == (16, 64)
    assert draw_overlay(api.image_array(np.zeros((16, 64, 3), np.uint8)), r).shape == (16, 64, 3)
