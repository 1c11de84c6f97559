"""Draw grounding results on a frame with OpenCV alone (torch-free; ``instancevg ground --out``,
the ``instancevg-runtime loop`` camera loop and ``instancevg.overlay`` all use it).

:func:`draw_results` paints, on a copy of the frame:

* each kept instance's mask as a translucent colour (alpha 0.45) with a thin outline, one
  distinct colour per instance (the highest-scoring instance is drawn on top);
* pixels of ``result.union_mask`` that no instance mask covers (the global-mask-only area) in
  yellow at alpha 0.3;
* each instance's box in its colour, with its score as a label on a filled tag (``#ID score``
  when the result carries ``track_ids``, as the tracker's results do);
* a dark banner across the top with the referring expression, followed by ``[no target]`` when
  ``result.no_target``.

Several results (one per expression, as ``Grounder.ground`` returns them) share one frame:
instance colours continue from one to the next. Line widths and font sizes scale with the image
so the drawing is legible from 64 px thumbnails to 4000 px photographs. OpenCV's Hershey fonts
only cover ASCII: accented letters lose their accents and other non-ASCII characters are drawn
as ``?``. Colours are given in RGB; a BGR frame (``channel_order="bgr"``, OpenCV's and the
runtime's order) is drawn with the same colours.
"""
from __future__ import annotations

import colorsys
import unicodedata

import cv2
import numpy as np


from .predictor import CHANNEL_ORDERS, check_channel_order

__all__ = ["draw_results", "instance_color", "MASK_ALPHA", "CHANNEL_ORDERS"]


#: Opacity of instance masks.
MASK_ALPHA = 0.45
#: Opacity and colour (RGB) of union-mask pixels not covered by any instance mask.
UNION_ALPHA = 0.30
UNION_COLOR = (255, 255, 0)
#: Opacity of the black banner behind the expression.
BANNER_ALPHA = 0.65

_FONT = cv2.FONT_HERSHEY_SIMPLEX

# Distinct, saturated RGB colours (after Sasha Trubetskoy's list), pure yellow left out because
# it marks union-only pixels.
_PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
    (170, 110, 40),
    (128, 0, 0),
    (0, 0, 128),
    (128, 128, 0),
    (250, 190, 212),
    (170, 255, 195),
    (220, 190, 255),
)


def instance_color(index: int) -> tuple[int, int, int]:
    """RGB colour (0..255 ints) used for instance ``index`` (0-based, in score order).

    The first 16 come from a fixed palette of distinct colours; later ones step the hue by the
    golden ratio so neighbours stay distinguishable.
    """
    if index < 0:
        raise ValueError(f"instance index must be >= 0, got {index}")
    if index < len(_PALETTE):
        return _PALETTE[index]
    hue = (0.61803398875 * index) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return (int(r * 255), int(g * 255), int(b * 255))


def _ascii(text: str) -> str:
    """Make ``text`` drawable with Hershey fonts: strip accents, '?' for other non-ASCII or
    control characters, whitespace runs collapsed to one space."""
    t = unicodedata.normalize("NFKD", str(text))
    t = "".join(c for c in t if not unicodedata.combining(c))
    t = " ".join(t.split())
    t = "".join(c if (c.isascii() and c.isprintable()) else "?" for c in t)
    return t


def _font_scale(height: int, width: int) -> float:
    """Hershey font scale for the banner: ~1/1000 of the width, limited by the height, >= 0.3."""
    return max(0.3, min(width / 1000.0, height / 400.0))


def _text_thickness(scale: float) -> int:
    return max(1, int(round(scale * 1.6)))


def _text_width(text: str, scale: float, thickness: int) -> int:
    return cv2.getTextSize(text, _FONT, scale, thickness)[0][0]


def _fit_with_ellipsis(text: str, suffix: str, avail: int, scale: float, thickness: int) -> str:
    """Longest prefix of ``text`` such that ``prefix + '...' + suffix`` fits in ``avail`` px."""
    tail = "..." + suffix
    for n in range(len(text), -1, -1):
        cand = text[:n].rstrip() + tail
        if _text_width(cand, scale, thickness) <= avail:
            return cand
    return tail.strip() if _text_width(tail.strip(), scale, thickness) <= avail else suffix.strip()


def _wrap(text: str, suffix: str, avail: int, max_lines: int, scale: float, thickness: int) -> list[str]:
    """Greedy word wrap of ``text + suffix`` into at most ``max_lines`` lines of ``avail`` px.

    When it does not fit, the last line is cut and ends with ``'...' + suffix`` so the suffix
    (e.g. ``[no target]``) is always shown.
    """
    words = text.split() + ([suffix.strip()] if suffix.strip() else [])
    if not words:
        return [""]
    lines: list[str] = []
    current = ""
    for word in words:
        cand = f"{current} {word}" if current else word
        if _text_width(cand, scale, thickness) <= avail:
            current = cand
            continue
        if current:
            lines.append(current)
            current = ""
        # hard-split a word that is longer than the line on its own
        while _text_width(word, scale, thickness) > avail and len(word) > 1:
            n = len(word) - 1
            while n > 1 and _text_width(word[:n], scale, thickness) > avail:
                n -= 1
            lines.append(word[:n])
            word = word[n:]
        current = word
    if current:
        lines.append(current)
    if len(lines) <= max_lines:
        return lines
    kept = lines[: max_lines - 1]
    # Rebuild the remaining text (without the suffix) for the last line and cut it.
    rest = " ".join(lines[max_lines - 1 :])
    suffix_word = suffix.strip()
    if suffix_word and rest.endswith(suffix_word):
        rest = rest[: -len(suffix_word)].rstrip()
    kept.append(_fit_with_ellipsis(rest, (" " + suffix_word) if suffix_word else "", avail, scale, thickness))
    return kept


def _blend(canvas: np.ndarray, mask: np.ndarray, color: tuple[int, int, int], alpha: float) -> None:
    """In place: canvas[mask] = (1 - alpha) * canvas[mask] + alpha * color (rounded)."""
    if not mask.any():
        return
    px = canvas[mask].astype(np.float32)
    px = px * (1.0 - alpha) + np.asarray(color, np.float32) * alpha
    canvas[mask] = np.clip(np.rint(px), 0, 255).astype(np.uint8)


def _as_bool_mask(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m)
    return m if m.dtype == np.bool_ else (m > 0.5)


def _check_result(result, height: int, width: int):
    """Return (boxes (K,4) float64, scores (K,) float64, masks (K,H,W) bool or None, union or None)."""
    if tuple(int(v) for v in result.image_size) != (height, width):
        raise ValueError(
            f"image is {height}x{width} (HxW) but result.image_size is {tuple(result.image_size)}"
        )
    boxes = np.asarray(result.boxes, dtype=np.float64)
    boxes = boxes.reshape(-1, 4) if boxes.size else np.zeros((0, 4))
    k = boxes.shape[0]
    scores = np.asarray(result.scores, dtype=np.float64).reshape(-1)
    if scores.shape[0] != k:
        raise ValueError(f"result has {k} boxes but {scores.shape[0]} scores")
    masks = None
    if result.masks is not None and np.asarray(result.masks).size:
        masks = np.asarray(result.masks)
        if masks.ndim != 3 or masks.shape[0] != k or masks.shape[1:] != (height, width):
            raise ValueError(f"result.masks must be ({k}, {height}, {width}), got {masks.shape}")
    union = None
    if result.union_mask is not None and np.asarray(result.union_mask).size:
        union = np.asarray(result.union_mask)
        if union.shape != (height, width):
            raise ValueError(f"result.union_mask must be ({height}, {width}), got {union.shape}")
    return boxes, scores, masks, union


def _draw_label(canvas, text, x0, y0, y1, color, scale, thickness, top_limit):
    """Score tag at the box's top-left corner: above the box if there is room below
    ``top_limit`` (the banner), otherwise just inside it."""
    h, w = canvas.shape[:2]
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    pad = max(1, int(round(th * 0.25)))
    box_h = th + base + 2 * pad
    box_w = tw + 2 * pad
    top = y0 - box_h
    if top < top_limit:
        top = min(max(y0, top_limit), max(h - box_h, 0))
    left = min(max(x0, 0), max(w - box_w, 0))
    cv2.rectangle(canvas, (left, top), (left + box_w - 1, top + box_h - 1), color, thickness=-1)
    luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    fg = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(canvas, text, (left + pad, top + pad + th), _FONT, scale, fg, thickness, cv2.LINE_AA)


def draw_results(image: np.ndarray, result, channel_order: str = "bgr") -> np.ndarray:
    """Draw masks, boxes, scores (and track ids) and the expression of ``result`` over ``image``.

    Args:
        image: (H, W, 3) uint8 frame in ``channel_order``. It is never modified.
        result: a :class:`~.result.GroundingResult` (or a tracker's ``TrackedResult``, whose
            ``track_ids`` label the boxes), or a sequence of them (several expressions grounded
            in one frame): instance colours then continue from one result to the next and each
            expression gets its own banner line(s). Each ``result.image_size`` must equal (H, W),
            ``boxes`` are xyxy in pixels, ``masks`` (K, H, W) (bool, or numeric thresholded at
            0.5; may be empty for box-only results), ``union_mask`` (H, W).
        channel_order: ``"bgr"`` (OpenCV, the runtime's frames; default) or ``"rgb"``.

    Returns:
        A new (H, W, 3) uint8 array in the same channel order. Pixels that no mask, box outline,
        score tag or the top banner touches keep their original values.

    Raises:
        ValueError: an image that is not (H, W, 3) uint8, an unknown channel order, an empty
            sequence of results, or a result that does not match the image size or whose
            boxes/scores/masks/track ids disagree in count or shape.
    """
    check_channel_order(channel_order)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or not image.size:
        raise ValueError(f"draw_results needs an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    canvas = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if channel_order == "bgr" else image.copy()
    h, w = canvas.shape[:2]
    results = [result] if hasattr(result, "boxes") else list(result)
    if not results:
        raise ValueError("draw_results needs a result (got an empty sequence)")
    checked = [_check_result(r, h, w) for r in results]
    firsts = np.cumsum([0] + [c[0].shape[0] for c in checked])  # colour index of each result's first instance

    # --- masks (lowest score first so the best instance ends up on top) ---
    line_t = max(1, int(round(0.0025 * max(h, w))))
    for (boxes, _, masks, union), first in zip(checked, firsts):
        _draw_masks(canvas, boxes.shape[0], masks, union, int(first), line_t)

    # --- banner layout (computed first: score tags avoid it) ---
    scale = _font_scale(h, w)
    thick = _text_thickness(scale)
    (_, th), base = cv2.getTextSize("Ag", _FONT, scale, thick)
    pad = max(2, int(round(th * 0.4)))
    line_h = th + base + pad
    max_lines = max(1, min(4, int((h / 3 - pad) // line_h)))
    per_result = max(1, max_lines // len(results))
    lines = []
    for r in results:
        suffix = " [no target]" if r.no_target else ""
        lines += _wrap(_ascii(r.text) or "(empty expression)", suffix, max(1, w - 2 * pad), per_result, scale, thick)
    banner_h = min(h, pad + len(lines) * line_h)

    # --- boxes and score tags ---
    label_scale = max(0.3, scale * 0.8)
    label_thick = _text_thickness(label_scale)
    for r, (boxes, scores, _, _), first in zip(results, checked, firsts):
        ids = _track_ids(r, boxes.shape[0])
        for i in reversed(range(boxes.shape[0])):
            x0, y0, x1, y1 = boxes[i]
            if not np.all(np.isfinite(boxes[i])):
                continue
            color = instance_color(int(first) + i)
            ix0 = int(np.clip(np.floor(x0), 0, w - 1))
            iy0 = int(np.clip(np.floor(y0), 0, h - 1))
            ix1 = int(np.clip(np.ceil(x1) - 1, 0, w - 1))
            iy1 = int(np.clip(np.ceil(y1) - 1, 0, h - 1))
            if ix1 < ix0 or iy1 < iy0:
                continue
            cv2.rectangle(canvas, (ix0, iy0), (ix1, iy1), color, line_t, cv2.LINE_AA)
            label = f"{scores[i]:.2f}" if ids is None else f"#{ids[i]} {scores[i]:.2f}"
            _draw_label(canvas, label, ix0, iy0, iy1, color, label_scale, label_thick, banner_h)

    # --- banner ---
    band = canvas[:banner_h].astype(np.float32) * (1.0 - BANNER_ALPHA)
    canvas[:banner_h] = np.rint(band).astype(np.uint8)
    for j, line in enumerate(lines):
        baseline_y = pad + j * line_h + th
        cv2.putText(canvas, line, (pad, baseline_y), _FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR) if channel_order == "bgr" else canvas


def _track_ids(result, k: int):
    """A tracker result's (K,) track ids as ints, or None for a plain result.

    Raises:
        ValueError: a count that differs from the boxes'.
    """
    ids = getattr(result, "track_ids", None)
    if ids is None:
        return None
    ids = [int(v) for v in np.asarray(ids).reshape(-1)]
    if len(ids) != k:
        raise ValueError(f"result has {k} boxes but {len(ids)} track ids")
    return ids


def _draw_masks(canvas: np.ndarray, k: int, masks, union, first: int, line_t: int) -> None:
    """In place: the union-only area in yellow, then instance masks (colours ``first``, ``first``
    + 1, ...; lowest score first) with their outlines."""
    h, w = canvas.shape[:2]
    if masks is None:
        if union is not None:
            _blend(canvas, _as_bool_mask(union), UNION_COLOR, UNION_ALPHA)
        return
    bool_masks = [_as_bool_mask(masks[i]) for i in range(k)]
    covered = np.zeros((h, w), dtype=bool)
    for m in bool_masks:
        covered |= m
    if union is not None:
        _blend(canvas, _as_bool_mask(union) & ~covered, UNION_COLOR, UNION_ALPHA)
    for i in reversed(range(k)):
        _blend(canvas, bool_masks[i], instance_color(first + i), MASK_ALPHA)
    contour_t = max(1, line_t // 2)
    for i in reversed(range(k)):
        if not bool_masks[i].any():
            continue
        contours, _ = cv2.findContours(bool_masks[i].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, instance_color(first + i), contour_t, cv2.LINE_AA)


