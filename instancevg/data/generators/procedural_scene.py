"""The procedural benchmark's scene renderer: shapes, sizes, held-out colour x shape pairs (the
colours are :data:`~.vocabulary.COLORS`), backgrounds, shape drawing and occlusion-aware placement.

:mod:`instancevg.data.generators.procedural` composes it with the expression grammar
(:mod:`instancevg.data.generators.procedural_expressions`); its docstring states the scene rules.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .vocabulary import COLORS, plural

__all__ = ["SPLITS", "check_sample_address", "SHAPES", "PLURALS", "SIZES", "SIZE_RANGES", "HELD_OUT_COMBOS",
           "MIN_VISIBLE_FRACTION", "ShapeObject", "draw_background", "place_objects", "object_extent",
           "render_objects", "scene_specs"]

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
"""Split name -> split code used in the RNG seed sequence."""


def check_sample_address(seed: int, index: int, split: str) -> None:
    """Raise ValueError for an unknown split or a negative seed/index (one rendered sample's address)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "ring", "cross")
PLURALS: dict[str, str] = {s: plural(s) for s in SHAPES}
"""Shape -> its plural (:func:`~.vocabulary.plural`: ``"cross"`` -> ``"crosses"``)."""

SIZES: tuple[str, ...] = ("small", "medium", "large")
SIZE_RANGES: dict[str, tuple[float, float]] = {
    "small": (0.045, 0.055),
    "medium": (0.075, 0.090),
    "large": (0.120, 0.145),
}
"""Size class -> range of the nominal radius as a fraction of min(H, W)."""

HELD_OUT_COMBOS: frozenset[tuple[str, str]] = frozenset(
    {
        ("white", "circle"),
        ("purple", "square"),
        ("green", "triangle"),
        ("red", "star"),
        ("blue", "hexagon"),
        ("yellow", "ring"),
        ("orange", "cross"),
    }
)
"""(colour, shape) pairs absent from train/val and present in every test scene."""

# Shape geometry, in units of the nominal radius r: extent = max distance of a drawn pixel from the
# centre (used to keep shapes inside the image); rotation = max |angle| in degrees.
_EXTENT = {"circle": 1.0, "square": 1.25, "triangle": 1.25, "star": 1.25, "hexagon": 1.05, "ring": 1.0, "cross": 1.12}
_ROTATION = {"circle": 0.0, "square": 15.0, "triangle": 20.0, "star": 36.0, "hexagon": 30.0, "ring": 0.0, "cross": 20.0}

MIN_VISIBLE_FRACTION = 0.65
"""A placement is rejected if it would leave an earlier object with less than this visible."""

_PLAIN_BACKGROUNDS = (
    (150, 150, 150),
    (172, 162, 140),
    (122, 136, 152),
    (140, 152, 126),
    (132, 122, 110),
    (108, 108, 114),
    (186, 180, 170),
)
_TEXTURE_NAMES = ("coffee", "astronaut", "chelsea", "rocket", "coins", "brick", "grass", "gravel", "camera")



@dataclass
class ShapeObject:
    """One drawn shape of a procedural scene (a labelled photo's object is a
    :class:`~.coco_expressions.PhotoObject`, a part-level scene's a
    :class:`~.procedural_parts.PartObject`).

    Attributes:
        color, shape, size: names from :data:`~.vocabulary.COLORS`, :data:`SHAPES`, :data:`SIZES`.
        cx, cy: centre of the full (unoccluded) shape, integer pixels.
        radius: nominal radius in pixels (the shape extends up to ~1.25 * radius).
        angle: rotation in degrees.
        rgb: the jittered colour actually drawn.
        full_area: pixels of the unoccluded shape; visible_area: pixels still visible.
        box: (4,) float32 xyxy of the visible part (x2/y2 exclusive, i.e. last pixel + 1).
        window: ``(y0, y1, x0, x1)`` pixel window the shape was drawn in (its full extent plus
            a 6 px margin; rows y0..y1-1, columns x0..x1-1).
    """

    color: str
    shape: str
    size: str
    cx: int
    cy: int
    radius: float
    angle: float
    rgb: tuple[int, int, int] = (0, 0, 0)
    full_area: int = 0
    visible_area: int = 0
    box: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    window: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def held_out(self) -> bool:
        """True when (color, shape) is in :data:`HELD_OUT_COMBOS`."""
        return (self.color, self.shape) in HELD_OUT_COMBOS


# --------------------------------------------------------------------------------------------
# Backgrounds


@functools.lru_cache(maxsize=1)
def _textures() -> tuple[np.ndarray, ...]:
    """Photographs from skimage.data, RGB uint8, desaturated and compressed to [85, 180]; cached."""
    import skimage.data

    out = []
    for name in _TEXTURE_NAMES:
        try:
            img = getattr(skimage.data, name)()
        except Exception:  # pragma: no cover - missing optional image
            continue
        img = np.asarray(img)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        img = img[:, :, :3].astype(np.float32)
        gray = img.mean(axis=2, keepdims=True)
        img = gray + 0.45 * (img - gray)
        lo, hi = np.percentile(img, 1), np.percentile(img, 99)
        img = 85.0 + np.clip((img - lo) / max(hi - lo, 1.0), 0.0, 1.0) * 95.0
        out.append(np.ascontiguousarray(np.rint(img).astype(np.uint8)))
    if not out:  # pragma: no cover
        out.append(np.full((256, 256, 3), 128, np.uint8))
    return tuple(out)


def draw_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A scene background drawn from ``rng``: a plain jittered colour (half the time) or a random
    crop of a desaturated ``skimage.data`` photograph, rescaled, maybe mirrored and tinted.

    Args:
        rng: the sample's generator (this consumes a fixed pattern of draws per branch).
        h, w: size in pixels.

    Returns:
        (h, w, 3) uint8 RGB, values in [45, 215] for photographs.
    """
    if rng.random() < 0.5:
        base = np.array(_PLAIN_BACKGROUNDS[int(rng.integers(len(_PLAIN_BACKGROUNDS)))], np.int32)
        color = np.clip(base + rng.integers(-12, 13, size=3), 0, 255).astype(np.uint8)
        return np.broadcast_to(color, (h, w, 3)).copy()
    textures = _textures()
    tex = textures[int(rng.integers(len(textures)))]
    th, tw = tex.shape[:2]
    zoom = float(rng.uniform(0.45, 1.3))  # crop size relative to the output size
    cw = int(min(tw, max(16, round(w * zoom))))
    ch = int(min(th, max(16, round(cw * h / w))))
    cw = int(min(tw, max(16, round(ch * w / h))))
    x0 = int(rng.integers(0, tw - cw + 1))
    y0 = int(rng.integers(0, th - ch + 1))
    crop = tex[y0 : y0 + ch, x0 : x0 + cw]
    flip = bool(rng.random() < 0.5)
    out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    if flip:
        out = cv2.flip(out, 1)
    # colour jitter: per-channel tint + contrast, applied through a LUT (fast, exact)
    contrast = float(rng.uniform(0.8, 1.1))
    tint = rng.uniform(-14.0, 14.0, size=3)
    v = np.arange(256, dtype=np.float64)[:, None]
    lut = np.clip(np.rint(130.0 + (v - 130.0) * contrast + tint[None, :]), 45, 215).astype(np.uint8)
    return cv2.LUT(out, lut.reshape(256, 1, 3))


# --------------------------------------------------------------------------------------------
# Shapes


def _polygon(shape: str, r: float, angle: float) -> np.ndarray:
    """Vertices (N, 2) float64 of a polygonal shape centred at 0, before rotation by ``angle``."""
    if shape == "square":
        h = 0.88 * r
        pts = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    elif shape == "triangle":
        a = np.deg2rad(np.array([-90.0, 30.0, 150.0]))
        pts = 1.25 * r * np.stack([np.cos(a), np.sin(a)], axis=1)
    elif shape == "hexagon":
        a = np.deg2rad(np.arange(6) * 60.0)
        pts = 1.05 * r * np.stack([np.cos(a), np.sin(a)], axis=1)
    elif shape == "star":
        a = np.deg2rad(-90.0 + np.arange(10) * 36.0)
        rad = np.where(np.arange(10) % 2 == 0, 1.25 * r, 0.5 * r)
        pts = np.stack([rad * np.cos(a), rad * np.sin(a)], axis=1)
    elif shape == "cross":
        L, t = 1.05 * r, 0.36 * r
        pts = np.array(
            [[-t, -L], [t, -L], [t, -t], [L, -t], [L, t], [t, t], [t, L], [-t, L], [-t, t], [-L, t], [-L, -t], [-t, -t]]
        )
    else:  # pragma: no cover
        raise ValueError(f"not a polygon shape: {shape}")
    th = math.radians(angle)
    c, s = math.cos(th), math.sin(th)
    rot = np.array([[c, -s], [s, c]])
    return pts @ rot.T


def _draw_shape(canvas: np.ndarray, shape: str, cx: int, cy: int, r: float, angle: float, value: int) -> None:
    """Draw a filled shape with pixel value ``value`` into a 2-D uint8 canvas (integer coordinates)."""
    if shape == "circle":
        cv2.circle(canvas, (cx, cy), max(1, int(round(r))), value, thickness=-1, lineType=cv2.LINE_8)
    elif shape == "ring":
        outer, inner = r, 0.55 * r
        mid = int(round(0.5 * (outer + inner)))
        cv2.circle(canvas, (cx, cy), mid, value, thickness=max(2, int(round(outer - inner))), lineType=cv2.LINE_8)
    else:
        pts = np.rint(_polygon(shape, r, angle) + np.array([cx, cy])).astype(np.int32)
        cv2.fillPoly(canvas, [pts], value, lineType=cv2.LINE_8)


_DILATE_KERNEL = np.ones((11, 11), np.uint8)  # same-colour objects stay >= 5 px apart


def place_objects(
    rng: np.random.Generator, h: int, w: int, specs: list[tuple[str, str, str]]
) -> tuple[list[ShapeObject], np.ndarray]:
    """Place objects in order with occlusion checks (see :data:`MIN_VISIBLE_FRACTION`).

    Args:
        rng: the sample's generator.
        h, w: scene size in pixels.
        specs: ``(color, shape, size)`` of each object, in drawing order (:func:`scene_specs`).

    Returns:
        ``(objects, label)``: the placed :class:`ShapeObject` s (``rgb`` not yet set) and the label
        map (H, W) uint8 where value ``i + 1`` marks the visible pixels of object ``i``. Objects
        that cannot be placed in 25 tries are dropped (never the first one, which always fits).
    """
    s = min(h, w)
    label = np.zeros((h, w), np.uint8)
    objects: list[ShapeObject] = []
    for color, shape, size in specs:
        lo, hi = SIZE_RANGES[size]
        r = float(rng.uniform(lo, hi)) * s
        ext = int(math.ceil(_EXTENT[shape] * r)) + 1
        max_rot = _ROTATION[shape]
        angle = float(rng.uniform(-max_rot, max_rot)) if max_rot > 0 else 0.0
        value = len(objects) + 1
        for _ in range(25):
            cx = int(rng.integers(ext + 6, w - ext - 6))
            cy = int(rng.integers(ext + 6, h - ext - 6))
            pad = ext + 6
            y0, y1, x0, x1 = cy - pad, cy + pad + 1, cx - pad, cx + pad + 1
            patch = np.zeros((y1 - y0, x1 - x0), np.uint8)
            _draw_shape(patch, shape, pad, pad, r, angle, 1)
            inside = patch.astype(bool)
            under = label[y0:y1, x0:x1]
            ok = True
            if objects:
                near = np.unique(under[cv2.dilate(patch, _DILATE_KERNEL).astype(bool)])
                for j in near[near > 0]:
                    if objects[j - 1].color == color:
                        ok = False
                        break
                if ok:
                    lost = np.bincount(under[inside], minlength=value)
                    for j in np.nonzero(lost[1:])[0]:
                        o = objects[j]
                        if o.visible_area - lost[j + 1] < MIN_VISIBLE_FRACTION * o.full_area:
                            ok = False
                            break
                    if ok:
                        for j in np.nonzero(lost[1:])[0]:
                            objects[j].visible_area -= int(lost[j + 1])
            if not ok:
                continue
            under[inside] = value
            area = int(inside.sum())
            objects.append(
                ShapeObject(color, shape, size, cx, cy, r, angle, full_area=area, visible_area=area,
                            window=(y0, y1, x0, x1))
            )
            break
    for i, o in enumerate(objects):
        y0, y1, x0, x1 = o.window
        m = label[y0:y1, x0:x1] == i + 1
        rows = np.nonzero(m.any(axis=1))[0]
        cols = np.nonzero(m.any(axis=0))[0]
        o.visible_area = int(m.sum())
        o.box = np.array([x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1], np.float32)
    return objects, label


def object_extent(o: ShapeObject) -> int:
    """Half-size in pixels of the square that holds ``o``'s full shape (its centre +- this)."""
    return int(math.ceil(_EXTENT[o.shape] * o.radius)) + 1


def render_objects(background: np.ndarray, objects: list[ShapeObject],
                   centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``objects`` (in order, later ones on top) on a copy of ``background`` at new centres.

    Moves a rendered scene (``benchmarks/tracking_videos.py`` animates the objects of a procedural
    sample); with each object's own ``(cx, cy)`` it redraws the sample's image.

    Args:
        background: (H, W, 3) uint8 RGB, the scene without objects (``Sample.background``).
        objects: the scene's objects; each is drawn in its own ``rgb``, ``shape``, ``radius``
            and ``angle``.
        centres: (N, 2) integer (x, y) pixel centres, one per object.

    Returns:
        ``(image (H, W, 3) uint8 RGB, label (H, W) uint8)``, label ``i + 1`` on the visible pixels
        of object ``i``.

    Raises:
        ValueError: ``centres`` is not (len(objects), 2).
    """
    centres = np.asarray(centres)
    if centres.shape != (len(objects), 2):
        raise ValueError(f"centres must be ({len(objects)}, 2), got {centres.shape}")
    h, w = background.shape[:2]
    label = np.zeros((h, w), np.uint8)
    for i, (o, (cx, cy)) in enumerate(zip(objects, centres.astype(int))):
        _draw_shape(label, o.shape, int(cx), int(cy), o.radius, o.angle, i + 1)
    image = background.copy()
    for i, o in enumerate(objects):
        image[label == i + 1] = np.array(o.rgb, np.uint8)
    return image, label


def scene_specs(rng: np.random.Generator, split: str, kind: str) -> list[tuple[str, str, str]]:
    """``(color, shape, size)`` of every object of a scene, respecting the held-out rules of ``split``.

    Args:
        rng: the sample's generator.
        split: ``"train"``, ``"val"`` or ``"test"`` (test scenes hold a held-out pair, drawn first).
        kind: the expression kind the scene is for (ordinal, superlative and plural scenes hold 3-8
            objects, spatial ones 2-8, others 1-8).

    Returns:
        the specs in drawing order, for :func:`place_objects`.
    """
    if kind in ("ordinal", "superlative", "plural"):
        n = int(rng.integers(3, 9))
        k_shape, k_color = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    elif kind == "spatial":
        n = int(rng.integers(2, 9))
        k_shape, k_color = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    else:
        n = int(rng.integers(1, 9))
        k_shape, k_color = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    color_names = list(COLORS)
    while True:
        shapes = [SHAPES[i] for i in sorted(rng.choice(len(SHAPES), size=k_shape, replace=False))]
        colors = [color_names[i] for i in sorted(rng.choice(len(color_names), size=k_color, replace=False))]
        pairs = [(c, sh) for c in colors for sh in shapes]
        if split != "test":
            pairs = [p for p in pairs if p not in HELD_OUT_COMBOS]
        if pairs:
            break
    k_size = int(rng.integers(1, 4))
    sizes = [SIZES[i] for i in sorted(rng.choice(len(SIZES), size=k_size, replace=False))]
    specs = []
    for _ in range(n):
        c, sh = pairs[int(rng.integers(len(pairs)))]
        specs.append((c, sh, sizes[int(rng.integers(len(sizes)))]))
    if split == "test":
        held = sorted(HELD_OUT_COMBOS)
        if not any(p[:2] in HELD_OUT_COMBOS for p in specs):
            # force one held-out object, drawn first so it is always placed
            c, sh = held[int(rng.integers(len(held)))]
            specs[0] = (c, sh, specs[0][2])
        else:
            i = next(i for i, p in enumerate(specs) if p[:2] in HELD_OUT_COMBOS)
            specs.insert(0, specs.pop(i))
    return specs
