"""Image loading and validation: everything the model sees enters as (H, W, 3) uint8 RGB.

Two entry points:

* :func:`load_image` decodes a file (JPEG, PNG, BMP, WebP, GIF, TIFF, ... whatever Pillow reads)
  and normalises it: EXIF orientation applied, gray replicated to three channels, alpha
  composited over white, 16-bit samples scaled to 8 bits.
* :func:`as_rgb_uint8` applies the same normalisation to an image already in memory (numpy array
  or ``PIL.Image.Image``).

Both raise :class:`ImageLoadError` (a ``ValueError``) with a one-line message saying what was
wrong, so callers (CLI, batch scripts) can report a bad input and carry on with the next one.
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .runtime.errors import InstanceVGError

__all__ = ["ImageLoadError", "load_image", "as_rgb_uint8", "fit_within", "GROUNDING_MAX_SIDE"]

# Longer side (pixels) the grounding API and CLI work at: the model sees 320x320, so a larger photo
# only costs memory (masks and overlays are at the working size).
GROUNDING_MAX_SIDE = 4096

PathLike = Union[str, "os.PathLike[str]"]

# Background that transparent pixels are composited over (RGB, uint8).
_BACKGROUND = 255.0

# Float inputs may overshoot [0, 1] by this much (resampling / normalisation noise) before being
# rejected; values within the tolerance are clipped.
_FLOAT_TOLERANCE = 1e-3


class ImageLoadError(InstanceVGError, ValueError):
    """An image file or array could not be turned into (H, W, 3) uint8 RGB.

    The message is a single line naming the file (when there is one) and the reason.
    """


def _one_line(text: object) -> str:
    """Collapse whitespace/newlines so an error message stays on one line."""
    return " ".join(str(text).split())


def _fail(path: object, reason: object) -> ImageLoadError:
    return ImageLoadError(_one_line(f"cannot load image '{path}': {reason}"))


def _fitted_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer side is ``max_side`` (aspect ratio kept)."""
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` (H, W, C) downscaled (``cv2.INTER_AREA``) so that max(H, W) <= ``max_side``; the
    array itself when it already fits.

    Raises:
        ValueError: ``max_side`` < 1.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    return cv2.resize(image, _fitted_size(w, h, max_side), interpolation=cv2.INTER_AREA)


def load_image(path: PathLike, max_side: int | None = None) -> np.ndarray:
    """Read an image file as an (H, W, 3) uint8 RGB array.

    Decoding is done by Pillow, so every format Pillow reads works (JPEG, PNG, BMP, WebP, GIF,
    TIFF, ...); for multi-frame files (animated GIF/WebP, multi-page TIFF) the first frame is
    used. The decoded image is normalised as follows:

    * EXIF orientation is applied (``PIL.ImageOps.exif_transpose``), so H and W are those of the
      image as a viewer displays it (orientation 6/8 swaps them). A malformed EXIF block is
      ignored (the pixels are used as stored) rather than failing the load.
    * Gray images (``L``, ``1``, ``I;16``, ...) are replicated to three equal channels.
    * Images with transparency (``RGBA``, ``LA``, ``PA``, palette images with a transparent
      index) are alpha-composited over a white background:
      ``out = round(rgb * a + 255 * (1 - a))`` with ``a = alpha / 255``.
    * 16-bit samples are scaled to 8 bits: ``round(v / 257)`` (65535 -> 255) for 16-bit gray;
      16-bit RGB(A) is reduced by Pillow's decoder (high byte). 32-bit integer gray (``I``) is
      treated as 16-bit data (clipped to [0, 65535]). Float gray (``F``) is taken as [0, 1] when
      its maximum is <= 1, else as [0, 255]; it is clipped and NaN/inf become 0.
    * Other colour spaces (``CMYK``, ``YCbCr``, ...) are converted with ``Image.convert("RGB")``.
      Embedded ICC profiles are not applied.

    Pillow's decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``, about 179 megapixels by
    default) is left in force: larger images raise :class:`ImageLoadError`. With ``max_side``, an
    image whose longer side exceeds it is returned downscaled (:func:`fit_within`; JPEGs are
    decoded at a reduced scale by Pillow's ``draft``, so the full-size pixels never exist), and
    Pillow's warning for images between 89 and 179 megapixels is not raised.

    Args:
        path: file path (``str`` or ``os.PathLike``).
        max_side: if given, the longest side of the returned image in pixels (None: full size).

    Returns:
        (H, W, 3) uint8 array, RGB channel order, C-contiguous, H, W >= 1.

    Raises:
        ImageLoadError: the path does not exist or is not a regular file, the file is empty, is
            not an image Pillow recognises, is truncated or corrupt, has a zero width or height,
            exceeds the decompression-bomb limit, or has a mode that cannot be converted to RGB.
            The message is one line naming ``path`` and the reason.
    """
    try:
        p = Path(os.fspath(path))
    except TypeError as exc:
        raise ImageLoadError(_one_line(f"cannot load image {path!r}: not a path ({exc})")) from None
    if not p.exists():
        raise _fail(p, "no such file")
    if p.is_dir():
        raise _fail(p, "is a directory, not an image file")
    if not p.is_file():
        raise _fail(p, "not a regular file")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise _fail(p, f"cannot stat file ({exc.strerror or exc})") from None
    if size == 0:
        raise _fail(p, "file is empty (0 bytes)")

    try:
        with warnings.catch_warnings():
            if max_side:  # the image is downscaled below, so the bomb warning's concern does not apply
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(p)
        with img:
            if img.width <= 0 or img.height <= 0:
                raise _fail(p, f"image has zero size ({img.width}x{img.height})")
            if max_side and max(img.size) > max_side:
                img.draft("RGB", _fitted_size(img.width, img.height, max_side))  # JPEG: scaled decode
            img.load()  # force the full decode now so truncation/corruption surfaces here
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception:  # malformed EXIF: keep the stored orientation
                oriented = img
            if oriented is None:  # very old Pillow with in_place semantics
                oriented = img
            if max_side and max(oriented.size) > max_side and oriented.mode in ("RGB", "RGBA", "L", "LA"):
                # box-filter by the largest integer factor that keeps the longer side >= max_side, in
                # Pillow, before the full-size pixels are copied into numpy
                oriented = oriented.reduce(max(1, max(oriented.size) // max_side))
            rgb = _pil_to_rgb(oriented, lambda reason: _fail(p, reason))
        return fit_within(rgb, max_side) if max_side else rgb
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise _fail(p, "not a recognised image format (corrupt or not an image)") from None
    except Image.DecompressionBombError as exc:
        raise _fail(p, f"image too large ({exc})") from None
    except PermissionError as exc:
        raise _fail(p, f"permission denied ({exc.strerror or exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        # Pillow reports truncated/corrupt data as OSError ("image file is truncated"),
        # SyntaxError ("broken PNG file"), ValueError or EOFError depending on the plugin.
        reason = _one_line(exc) or type(exc).__name__
        raise _fail(p, f"corrupt or truncated image data ({reason})") from None


def _pil_to_rgb(img: Image.Image, fail) -> np.ndarray:
    """Convert any Pillow image to (H, W, 3) uint8 RGB (alpha over white). ``fail(reason)``
    builds the exception to raise."""
    if img.width <= 0 or img.height <= 0:
        raise fail(f"image has zero size ({img.width}x{img.height})")
    mode = img.mode
    try:
        if mode == "RGB":
            return _from_array(np.asarray(img), fail)
        if mode == "1":
            return _from_array(np.asarray(img.convert("L")), fail)
        if mode == "P":
            has_alpha = "transparency" in img.info or (
                img.palette is not None and img.palette.mode == "RGBA"
            )
            return _from_array(np.asarray(img.convert("RGBA" if has_alpha else "RGB")), fail)
        if mode in ("L", "LA", "RGBA"):
            return _from_array(np.asarray(img), fail)
        if mode in ("PA", "RGBa", "La", "RGBX"):
            return _from_array(np.asarray(img.convert("RGBA" if mode != "RGBX" else "RGB")), fail)
        if mode.startswith("I;16"):
            arr = np.asarray(img).astype(np.uint16, copy=False)
            return _from_array(arr, fail)
        if mode == "I":
            arr = np.clip(np.asarray(img, dtype=np.int64), 0, 65535).astype(np.uint16)
            return _from_array(arr, fail)
        if mode == "F":
            arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            scale = 255.0 if arr.size and arr.max() <= 1.0 else 1.0
            return _gray_or_rgb_to_uint8(np.clip(arr * scale, 0.0, 255.0))
        return _from_array(np.asarray(img.convert("RGB")), fail)
    except ImageLoadError:
        raise
    except (ValueError, OSError) as exc:
        raise fail(f"cannot convert mode {mode!r} to RGB ({_one_line(exc)})") from None


def _gray_or_rgb_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Round a float array already in [0, 255] to uint8 and expand gray to 3 channels."""
    out = np.rint(arr).astype(np.uint8)
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    return np.ascontiguousarray(out)


def _composite_over_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) float in [0, 255] -> (H, W, 3) uint8 composited over white."""
    alpha = rgba[..., 3:4] / 255.0
    out = rgba[..., :3] * alpha + _BACKGROUND * (1.0 - alpha)
    return np.ascontiguousarray(np.rint(np.clip(out, 0.0, 255.0)).astype(np.uint8))


def _from_array(arr: np.ndarray, fail) -> np.ndarray:
    """Core conversion of a validated-ndim numpy array to (H, W, 3) uint8 RGB."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3):
        raise fail(f"expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] not in (2, 3, 4):
        raise fail(f"expected 1, 3 or 4 channels, got {arr.shape[2]} (shape {arr.shape})")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise fail(f"image is empty (shape {arr.shape})")

    if arr.dtype.byteorder not in ("=", "|"):  # e.g. big-endian 16-bit from some decoders
        arr = arr.astype(arr.dtype.newbyteorder("="))
    dt = arr.dtype
    if dt == np.bool_:
        raise fail("bool arrays are not images; convert masks with mask.astype(np.uint8) * 255")
    if dt == np.uint8:
        vals = arr.astype(np.float32) if arr.ndim == 3 and arr.shape[2] in (2, 4) else arr
    elif dt == np.uint16:
        vals = arr.astype(np.float64) / 257.0
    elif np.issubdtype(dt, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise fail(
                f"integer image of dtype {dt} must hold values in [0, 255], got range [{lo}, {hi}]"
            )
        vals = arr.astype(np.float64)
    elif np.issubdtype(dt, np.floating):
        f = arr.astype(np.float64)
        if not np.isfinite(f).all():
            raise fail(f"float image contains NaN or inf ({int((~np.isfinite(f)).sum())} values)")
        lo, hi = float(f.min()), float(f.max())
        if lo < -_FLOAT_TOLERANCE or hi > 1.0 + _FLOAT_TOLERANCE:
            raise fail(
                f"float image must be in [0, 1], got range [{lo:.4g}, {hi:.4g}] "
                "(divide 0..255 data by 255)"
            )
        vals = np.clip(f, 0.0, 1.0) * 255.0
    else:
        raise fail(f"unsupported dtype {dt}; expected uint8, uint16, another integer type or float")

    if vals.ndim == 3 and vals.shape[2] == 2:  # gray + alpha
        g = vals[:, :, 0:1].astype(np.float64)
        vals = np.concatenate([g, g, g, vals[:, :, 1:2].astype(np.float64)], axis=2)
    if vals.ndim == 3 and vals.shape[2] == 4:
        return _composite_over_white(vals.astype(np.float64))
    if vals.dtype == np.uint8:
        if vals.ndim == 2:
            return np.ascontiguousarray(np.repeat(vals[:, :, None], 3, axis=2))
        return np.array(vals, dtype=np.uint8, order="C", copy=True)
    return _gray_or_rgb_to_uint8(np.clip(vals, 0.0, 255.0))


def as_rgb_uint8(image: np.ndarray | Image.Image) -> np.ndarray:
    """Validate and convert an in-memory image to (H, W, 3) uint8 RGB.

    Accepted inputs:

    * ``numpy.ndarray`` of shape (H, W) or (H, W, 1) (gray, replicated to 3 channels),
      (H, W, 3) (RGB, channel order assumed RGB, not reordered) or (H, W, 4) (RGBA, alpha
      composited over white as in :func:`load_image`), with dtype

      - ``uint8``: used as is;
      - ``float16/32/64``: values in [0, 1] (overshoot up to 1e-3 is clipped), scaled by 255 and
        rounded;
      - ``uint16``: 16-bit data, scaled with ``round(v / 257)``;
      - other integer dtypes: values must lie in [0, 255].

      ``bool`` arrays are rejected (they are masks, not images).
    * ``PIL.Image.Image`` in any mode, converted like :func:`load_image` converts a decoded file
      (EXIF orientation is *not* applied here: the pixels are taken as stored).

    Args:
        image: the image, see above.

    Returns:
        A new (H, W, 3) uint8 C-contiguous array (always a copy; the input is never modified
        and never aliased).

    Raises:
        ImageLoadError: (a ``ValueError``) for an unsupported type, wrong number of dimensions or
            channels, a zero-size image, a bool dtype, NaN/inf or out-of-range floats, or
            out-of-range integers; the message says what was wrong.
    """

    def fail(reason: str) -> ImageLoadError:
        return ImageLoadError(_one_line(f"invalid image: {reason}"))

    if isinstance(image, Image.Image):
        return _pil_to_rgb(image, fail)
    if not isinstance(image, np.ndarray):
        raise fail(f"expected a numpy array or PIL.Image.Image, got {type(image).__name__}")
    if image.size == 0:
        raise fail(f"image is empty (shape {image.shape})")
    if image.ndim == 3 and image.shape[2] == 2:
        raise fail(f"expected 1, 3 or 4 channels, got 2 (shape {image.shape})")
    return _from_array(image, fail)
