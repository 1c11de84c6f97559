"""Procedural generalized-grounding benchmark: synthetic scenes + referring expressions.

``render_sample(seed, index, split)`` draws one scene (1-8 coloured shapes on a plain or
photographic background) and one English referring expression whose referent set (zero, one or
several objects) is computed from the scene, so every sample is correct by construction.

Scenes
    * image size: W and H each drawn from {256, 264, ..., 448} pixels (multiples of 8);
    * shapes (:data:`SHAPES`): circle, square, triangle, star, hexagon, ring, cross;
    * colours (:data:`COLORS`): red, green, blue, yellow, purple, orange, white, black;
    * sizes (:data:`SIZES`): small / medium / large, nominal radius a fraction of min(H, W) in
      well-separated ranges (:data:`SIZE_RANGES`; adjacent classes differ by >= 1.3x);
    * backgrounds: a plain desaturated colour (about half the samples) or a random crop/rescale of a
      ``skimage.data`` photograph (desaturated and contrast-compressed so the saturated objects stay
      distinct), with slight colour jitter; objects get a slight colour jitter too;
    * occlusion: objects are drawn in order, later ones on top; a placement is rejected when it would
      leave less than 65% of an earlier object visible (:data:`MIN_VISIBLE_FRACTION`) or bring it
      within 5 px of an earlier object of the same colour (so objects never merge into one blob).
      The mask of an object is its *visible* part.

Expressions (lowercase English; :data:`EXPRESSION_KINDS`, target mix in :data:`KIND_WEIGHTS`)
    * ``attribute`` (~35%): "the red circle", "the small blue square", "the star";
    * ``spatial`` (~15%): "the triangle to the left of the green circle", "the circle above the square";
    * ``ordinal`` (~10%): "the second circle from the left", "the third star from the right";
    * ``superlative`` (~10%): "the largest hexagon", "the leftmost red object", "the topmost square";
    * ``plural`` (~15%): "all red objects", "the two squares", "all circles", "both stars";
    * ``no_target`` (~15%): same grammar, referring to nothing present (a colour/shape combination
      absent from the scene, or a spatial relation no candidate satisfies).

Unambiguity rules: singular phrases are used only when exactly one object matches; "the two X" /
"both X" only when exactly two match, "all X" when at least two match. Spatial relations, ordinals
and positional superlatives compare object centres with a margin of ``max(r_a, r_b) + 4 + 0.01*S``
pixels (``r`` = nominal radius, ``S`` = min(H, W)): an object clearly satisfies "left of B" when
its centre is more than the margin left of B's, clearly fails when it is less than a quarter margin
left of it (or on the right); any candidate in between makes the expression ambiguous and it is
not used. Ordinals/superlatives need every gap up to the chosen rank to exceed the margin. Size superlatives need the extreme object to be in a
strictly different size class from the other matches. No-target descriptors match nothing even
when their size adjective is ignored (sizes are never the only reason for "no target").

Held-out compositions (compositional generalisation)
    :data:`HELD_OUT_COMBOS` holds one colour per shape (7 of the 56 colour/shape pairs). ``train``
    and ``val`` scenes never contain a held-out pair, and their expressions never mention one (not
    even as a no-target). Every ``test`` scene contains at least one held-out object, and for about
    75% of the test samples with a target the referent set is chosen to contain a held-out object
    (measured ~74% of the targeted test expressions refer to a held-out object; tests check >= 50%).

Determinism: all randomness comes from ``np.random.default_rng([seed, split_code, index])`` and
shapes are drawn with OpenCV at integer pixel coordinates (no antialiasing), so the same
``(seed, index, split)`` gives the same bytes (given the same NumPy/OpenCV versions: the RNG
streams are platform independent; vertex coordinates are rounded to integers, so last-ulp
differences of ``cos``/``sin`` between CPUs could only matter on exact .5 ties). Rendering takes
~1.2 ms per sample on average (W, H in [256, 448]) on one CPU core; the photographs are loaded once
per process and cached.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = [
    "COLORS",
    "SHAPES",
    "SIZES",
    "SIZE_RANGES",
    "MIN_VISIBLE_FRACTION",
    "HELD_OUT_COMBOS",
    "EXPRESSION_KINDS",
    "KIND_WEIGHTS",
    "SPLITS",
    "SceneObject",
    "Sample",
    "render_sample",
    "sample_id_for",
]

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
"""Split name -> split code used in the RNG seed sequence."""

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "green": (35, 165, 55),
    "blue": (35, 75, 230),
    "yellow": (245, 215, 30),
    "purple": (145, 55, 190),
    "orange": (250, 135, 20),
    "white": (248, 248, 248),
    "black": (22, 22, 22),
}
"""Colour name -> nominal RGB (uint8). Objects get +-10 jitter per channel."""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "ring", "cross")
PLURALS: dict[str, str] = {s: s + ("es" if s.endswith("s") else "s") for s in SHAPES}

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

EXPRESSION_KINDS: tuple[str, ...] = ("attribute", "spatial", "ordinal", "superlative", "plural", "no_target")
KIND_WEIGHTS: dict[str, float] = {
    "attribute": 0.35,
    "spatial": 0.15,
    "ordinal": 0.10,
    "superlative": 0.10,
    "plural": 0.15,
    "no_target": 0.15,
}
"""Probability of choosing each expression kind (before fallbacks for infeasible scenes)."""

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

_SIZE_WORDS = {"small": ("small", "small", "little"), "medium": ("medium-sized", "medium"), "large": ("large", "big")}
_ORDINALS = ("first", "second", "third", "fourth")
_COUNT_WORDS = {2: "two", 3: "three", 4: "four"}
_REL_WORDS = {
    "left": ("left of", "to the left of", "on the left of"),
    "right": ("right of", "to the right of", "on the right of"),
    "above": ("above", "above", "over"),
    "below": ("below", "under", "beneath"),
}
_SUPERLATIVE_TEMPLATES = {
    "left": ("the leftmost {np}", "the leftmost {np}", "the {np} furthest to the left", "the {np} on the far left"),
    "right": ("the rightmost {np}", "the rightmost {np}", "the {np} furthest to the right", "the {np} on the far right"),
    "top": ("the topmost {np}", "the highest {np}", "the uppermost {np}", "the {np} closest to the top"),
    "bottom": ("the bottommost {np}", "the lowest {np}", "the {np} closest to the bottom"),
    "largest": ("the largest {np}", "the biggest {np}"),
    "smallest": ("the smallest {np}", "the smallest {np}", "the tiniest {np}"),
}
_ORDINAL_DIRS = {"left": "left", "right": "right", "top": "top", "bottom": "bottom"}


@dataclass
class SceneObject:
    """One drawn object of a scene.

    Attributes:
        color, shape, size: names from :data:`COLORS`, :data:`SHAPES`, :data:`SIZES`.
        cx, cy: centre of the full (unoccluded) shape, integer pixels.
        radius: nominal radius in pixels (the shape extends up to ~1.25 * radius).
        angle: rotation in degrees.
        rgb: the jittered colour actually drawn.
        full_area: pixels of the unoccluded shape; visible_area: pixels still visible.
        box: (4,) float32 xyxy of the visible part (x2/y2 exclusive, i.e. last pixel + 1).
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
    _patch: tuple[int, int, int, int] = (0, 0, 0, 0)  # y0, y1, x0, x1 of the drawing window

    @property
    def held_out(self) -> bool:
        """True when (color, shape) is in :data:`HELD_OUT_COMBOS`."""
        return (self.color, self.shape) in HELD_OUT_COMBOS


@dataclass
class Sample:
    """One rendered sample.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        expression: lowercase English referring expression.
        boxes: (K, 4) float32 xyxy pixel boxes of the referred objects, tight around the visible
            mask (x2 = last column + 1, y2 = last row + 1). K = 0 for no-target.
        masks: (K, H, W) bool visible part of each referred object (same order as boxes).
        sample_id: ``"{split}-{index:06d}"``.
        objects: every object of the scene in drawing order (later ones on top).
        referents: indices into ``objects`` of the referred objects (ascending, matches boxes).
        kind: expression kind, one of :data:`EXPRESSION_KINDS`.
    """

    image: np.ndarray
    expression: str
    boxes: np.ndarray
    masks: np.ndarray
    sample_id: str
    objects: list[SceneObject] = field(default_factory=list)
    referents: tuple[int, ...] = ()
    kind: str = "attribute"


def sample_id_for(split: str, index: int) -> str:
    """Sample id string ``"{split}-{index:06d}"`` (e.g. ``"test-000042"``)."""
    return f"{split}-{index:06d}"


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


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
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


def _place_objects(
    rng: np.random.Generator, h: int, w: int, specs: list[tuple[str, str, str]]
) -> tuple[list[SceneObject], np.ndarray]:
    """Place objects in order with occlusion checks; returns (objects, label map (H, W) uint8).

    Label value ``i + 1`` marks the visible pixels of object ``i``. Objects that cannot be placed
    in 25 tries are dropped (never the first one, which always fits).
    """
    s = min(h, w)
    label = np.zeros((h, w), np.uint8)
    objects: list[SceneObject] = []
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
                SceneObject(color, shape, size, cx, cy, r, angle, full_area=area, visible_area=area, _patch=(y0, y1, x0, x1))
            )
            break
    for i, o in enumerate(objects):
        y0, y1, x0, x1 = o._patch
        m = label[y0:y1, x0:x1] == i + 1
        rows = np.nonzero(m.any(axis=1))[0]
        cols = np.nonzero(m.any(axis=0))[0]
        o.visible_area = int(m.sum())
        o.box = np.array([x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1], np.float32)
    return objects, label


def _scene_specs(rng: np.random.Generator, split: str, kind: str) -> list[tuple[str, str, str]]:
    """(color, shape, size) of every object of a scene, respecting the held-out rules of ``split``."""
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


# --------------------------------------------------------------------------------------------
# Expressions


def _pick(rng: np.random.Generator, items, weights=None):
    """Deterministic weighted choice from a sequence (returns the item itself)."""
    if weights is None:
        return items[int(rng.integers(len(items)))]
    w = np.asarray(weights, np.float64)
    return items[int(rng.choice(len(items), p=w / w.sum()))]


class _Scene:
    """Bitmask views of a scene's attributes used to enumerate unambiguous expressions."""

    def __init__(self, objects: list[SceneObject], h: int, w: int, split: str):
        self.objects = objects
        self.n = len(objects)
        self.split = split
        self.all = (1 << self.n) - 1
        self.size_mask: dict[str, int] = {}
        self.color_mask: dict[str, int] = {}
        self.shape_mask: dict[str, int] = {}
        for i, o in enumerate(objects):
            self.size_mask[o.size] = self.size_mask.get(o.size, 0) | (1 << i)
            self.color_mask[o.color] = self.color_mask.get(o.color, 0) | (1 << i)
            self.shape_mask[o.shape] = self.shape_mask.get(o.shape, 0) | (1 << i)
        self.held_mask = sum(1 << i for i, o in enumerate(objects) if o.held_out)
        s = min(h, w)
        cx = np.array([o.cx for o in objects], np.float64)
        cy = np.array([o.cy for o in objects], np.float64)
        r = np.array([o.radius for o in objects], np.float64)
        self.key = {"left": cx, "right": -cx, "top": cy, "bottom": -cy}
        self.margin = np.maximum(r[:, None], r[None, :]) + 4.0 + 0.01 * s
        # rel[name][b] = (bitmask of objects clearly satisfying "x REL b", bitmask of ambiguous ones)
        self.rel: dict[str, list[tuple[int, int]]] = {}
        for name, d in (("left", cx[None, :] - cx[:, None]), ("right", cx[:, None] - cx[None, :]),
                        ("above", cy[None, :] - cy[:, None]), ("below", cy[:, None] - cy[None, :])):
            # d[a, b] > 0 means a is on the REL side of b
            sat = d > self.margin
            fail = d < 0.25 * self.margin
            lst = []
            for b in range(self.n):
                sm = am = 0
                for a in range(self.n):
                    if a == b:
                        continue
                    if sat[a, b]:
                        sm |= 1 << a
                    elif not fail[a, b]:
                        am |= 1 << a
                lst.append((sm, am))
            self.rel[name] = lst
        self.descs = self._descriptors()

    def mask(self, desc: tuple) -> int:
        size, color, shape = desc
        m = self.all
        if size is not None:
            m &= self.size_mask.get(size, 0)
        if color is not None:
            m &= self.color_mask.get(color, 0)
        if shape is not None:
            m &= self.shape_mask.get(shape, 0)
        return m

    def _descriptors(self) -> dict[tuple, int]:
        out = {}
        for size in [None, *[z for z in SIZES if z in self.size_mask]]:
            for color in [None, *[c for c in COLORS if c in self.color_mask]]:
                for shape in [None, *[sh for sh in SHAPES if sh in self.shape_mask]]:
                    m = self.mask((size, color, shape))
                    if m:
                        out[(size, color, shape)] = m
        return out

    def allowed(self, desc: tuple) -> bool:
        """False for descriptors naming a held-out pair outside the test split."""
        return self.split == "test" or (desc[1], desc[2]) not in HELD_OUT_COMBOS


def _n_attr(desc: tuple) -> int:
    return sum(v is not None for v in desc)


def _desc_weight(desc: tuple) -> float:
    size, color, shape = desc
    if shape is None and color is None:
        return 0.3  # "the small object"
    return {1: 4.0, 2: 3.0, 3: 1.0}[_n_attr(desc)]


def _np(rng: np.random.Generator, desc: tuple, plural: bool = False) -> str:
    size, color, shape = desc
    words = []
    if size is not None:
        words.append(_pick(rng, _SIZE_WORDS[size]))
    if color is not None:
        words.append(color)
    if shape is not None:
        words.append(PLURALS[shape] if plural else shape)
    else:
        words.append(_pick(rng, ("objects", "shapes")) if plural else _pick(rng, ("object", "shape")))
    return " ".join(words)


def _bits(m: int) -> tuple[int, ...]:
    return tuple(i for i in range(m.bit_length()) if m >> i & 1)


def _prefer_held(rng: np.random.Generator, sc: _Scene, cands: list, referent_of) -> list:
    """In the test split, restrict candidates to those referring to a held-out object (75%)."""
    if sc.split != "test" or not cands or rng.random() >= 0.75:
        return cands
    held = [c for c in cands if referent_of(c) & sc.held_mask]
    return held or cands


def _gen_attribute(rng, sc: _Scene):
    cands = [(d, m) for d, m in sc.descs.items() if m.bit_count() == 1 and _n_attr(d) > 0]
    cands = _prefer_held(rng, sc, cands, lambda c: c[1])
    if not cands:
        return None
    targets = sorted({m for _, m in cands})
    target = _pick(rng, targets)
    opts = [d for d, m in cands if m == target]
    desc = _pick(rng, opts, [_desc_weight(d) for d in opts])
    phrase = _np(rng, desc)
    tmpl = _pick(rng, ("the {np}", "{np}", "the {np} in the image", "the {np} in the picture"), (0.75, 0.1, 0.08, 0.07))
    return tmpl.format(np=phrase), target


def _anchor_descs(sc: _Scene) -> dict[int, list[tuple]]:
    """Object index -> its unique descriptors without size and with at least a shape or colour."""
    out: dict[int, list[tuple]] = {}
    for d, m in sc.descs.items():
        if m.bit_count() == 1 and d[0] is None and _n_attr(d) > 0:
            out.setdefault(m.bit_length() - 1, []).append(d)
    return out


def _gen_spatial(rng, sc: _Scene, want_target: bool = True):
    anchors = _anchor_descs(sc)
    cands = []
    # D1 descriptors: shape, colour (+"object"), colour+shape, size+shape
    d1s = [(d, m) for d, m in sc.descs.items() if _n_attr(d) > 0 and not (d[0] is not None and d[2] is None)
           and not (_n_attr(d) == 3)]
    for b in anchors:
        bbit = 1 << b
        for rel in ("left", "right", "above", "below"):
            sat, amb = sc.rel[rel][b]
            for d1, m in d1s:
                mm = m & ~bbit
                if not mm:
                    continue
                hit = mm & (sat | amb)
                if want_target:
                    if hit and hit.bit_count() == 1 and not (hit & amb):
                        cands.append((d1, rel, b, hit, mm.bit_count()))
                elif hit == 0:
                    cands.append((d1, rel, b, 0, mm.bit_count()))
    if not want_target:
        cands = [c for c in cands if sc.allowed(c[0])]
    cands = _prefer_held(rng, sc, cands, lambda c: c[3])
    if not cands:
        return None
    # prefer expressions where the relation is needed (D1 alone matches several objects)
    weights = [(3.0 if c[4] >= 2 else 1.0) * _desc_weight(c[0]) for c in cands]
    d1, rel, b, hit, _ = _pick(rng, cands, weights)
    bdescs = anchors[b]
    bdesc = _pick(rng, bdescs, [_desc_weight(d) for d in bdescs])
    tmpl = _pick(rng, ("the {a} {rel} the {b}", "the {a} that is {rel} the {b}"), (0.8, 0.2))
    text = tmpl.format(a=_np(rng, d1), rel=_pick(rng, _REL_WORDS[rel]), b=_np(rng, bdesc))
    return text, hit


def _ordered(sc: _Scene, m: int, direction: str) -> tuple[list[int], int]:
    """Members of bitmask m sorted along direction, and how many leading ranks are unambiguous."""
    idx = sorted(_bits(m), key=lambda i: (sc.key[direction][i], i))
    key = sc.key[direction]
    clear = 0  # number of leading gaps that are larger than the margin
    for j in range(len(idx) - 1):
        a, b = idx[j], idx[j + 1]
        if key[b] - key[a] > sc.margin[a, b]:
            clear += 1
        else:
            break
    # rank k (1-based) is unambiguous if gaps 1..k are clear (gap k only when k < n)
    n = len(idx)
    n_ok = n if clear >= n - 1 else clear
    return idx, n_ok


def _gen_ordinal(rng, sc: _Scene):
    cands = []
    for d, m in sc.descs.items():
        if d[0] is not None or m.bit_count() < 2:
            continue
        for direction in ("left", "right", "top", "bottom"):
            idx, n_ok = _ordered(sc, m, direction)
            for k in range(1, min(n_ok, len(_ORDINALS)) + 1):
                cands.append((d, direction, k, 1 << idx[k - 1]))
    cands = _prefer_held(rng, sc, cands, lambda c: c[3])
    if not cands:
        return None
    weights = [{1: 1.0, 2: 3.0, 3: 2.0, 4: 1.0}[c[2]] * _desc_weight(c[0]) for c in cands]
    d, direction, k, target = _pick(rng, cands, weights)
    tmpl = _pick(rng, ("the {o} {np} from the {d}", "the {o} {np} counting from the {d}"), (0.85, 0.15))
    return tmpl.format(o=_ORDINALS[k - 1], np=_np(rng, d), d=_ORDINAL_DIRS[direction]), target


def _gen_superlative(rng, sc: _Scene):
    cands = []
    size_rank = {z: i for i, z in enumerate(SIZES)}
    for d, m in sc.descs.items():
        if d[0] is not None or m.bit_count() < 2:
            continue
        for direction in ("left", "right", "top", "bottom"):
            idx, n_ok = _ordered(sc, m, direction)
            if n_ok >= 1:
                cands.append((d, direction, 1 << idx[0]))
        if d[2] is not None:  # size superlatives only within one shape
            members = _bits(m)
            ranks = sorted((size_rank[sc.objects[i].size], i) for i in members)
            if ranks[-1][0] > ranks[-2][0]:
                cands.append((d, "largest", 1 << ranks[-1][1]))
            if ranks[0][0] < ranks[1][0]:
                cands.append((d, "smallest", 1 << ranks[0][1]))
    cands = _prefer_held(rng, sc, cands, lambda c: c[2])
    if not cands:
        return None
    weights = [(1.5 if c[1] in ("largest", "smallest") else 1.0) * _desc_weight(c[0]) for c in cands]
    d, direction, target = _pick(rng, cands, weights)
    return _pick(rng, _SUPERLATIVE_TEMPLATES[direction]).format(np=_np(rng, d)), target


def _gen_plural(rng, sc: _Scene):
    cands = [(d, m) for d, m in sc.descs.items() if m.bit_count() >= 2]
    cands = _prefer_held(rng, sc, cands, lambda c: c[1])
    if not cands:
        return None
    weights = [_desc_weight(d) if _n_attr(d) else 0.4 for d, _ in cands]
    d, m = _pick(rng, cands, weights)
    count = m.bit_count()
    pl = _np(rng, d, plural=True)
    if count == 2:
        tmpl = _pick(rng, ("the two {pl}", "both {pl}", "all {pl}", "the {pl}", "both of the {pl}"), (3, 3, 2, 1, 1))
    elif count in _COUNT_WORDS:
        word = _COUNT_WORDS[count]
        tmpl = _pick(rng, (f"the {word} {{pl}}", "all {pl}", f"all {word} {{pl}}", "the {pl}", "all the {pl}"), (3, 3, 1, 1, 1))
    else:
        tmpl = _pick(rng, ("all {pl}", "all the {pl}", "the {pl}", "every {sg}"), (4, 2, 1, 1))
    return tmpl.format(pl=pl, sg=_np(rng, d)), m


def _absent_descriptor(rng, sc: _Scene, allow_generic: bool = True):
    """A descriptor matching nothing, even with its size adjective dropped; None if not found."""
    color_names = list(COLORS)
    scene_colors = [c for c in COLORS if c in sc.color_mask]
    scene_shapes = [s for s in SHAPES if s in sc.shape_mask]
    for _ in range(40):
        u = rng.random()
        if u < 0.55 and scene_colors and scene_shapes:  # near miss: both attributes exist, not together
            color, shape = _pick(rng, scene_colors + color_names), _pick(rng, scene_shapes + list(SHAPES))
        elif u < 0.8:  # absent shape, optionally with a colour
            color = _pick(rng, color_names) if rng.random() < 0.5 else None
            shape = _pick(rng, SHAPES)
        else:  # absent colour
            color = _pick(rng, color_names)
            shape = _pick(rng, SHAPES) if (rng.random() < 0.5 or not allow_generic) else None
        desc = (None, color, shape)
        if sc.mask(desc) or not sc.allowed(desc):
            continue
        if rng.random() < 0.2 and shape is not None:
            desc = (_pick(rng, SIZES), color, shape)
        return desc
    return None


def _gen_no_target(rng, sc: _Scene):
    mode = _pick(rng, ("attribute", "plural", "superlative", "spatial"), (0.5, 0.2, 0.1, 0.2))
    if mode == "spatial" and sc.n >= 2:
        out = _gen_spatial(rng, sc, want_target=False)
        if out is not None:
            return out[0], 0
        mode = "attribute"
    desc = _absent_descriptor(rng, sc, allow_generic=mode != "superlative")
    if desc is None:
        return None
    if mode == "plural":
        tmpl = _pick(rng, ("all {pl}", "the {pl}", "all the {pl}", "both {pl}", "the two {pl}"), (4, 2, 1, 1, 1))
        return tmpl.format(pl=_np(rng, desc, plural=True)), 0
    if mode == "superlative":
        direction = _pick(rng, ("left", "right", "top", "bottom", "largest", "smallest"))
        d = (None, desc[1], desc[2])
        return _pick(rng, _SUPERLATIVE_TEMPLATES[direction]).format(np=_np(rng, d)), 0
    tmpl = _pick(rng, ("the {np}", "{np}", "the {np} in the image"), (0.8, 0.1, 0.1))
    return tmpl.format(np=_np(rng, desc)), 0


_GENERATORS = {
    "attribute": _gen_attribute,
    "spatial": _gen_spatial,
    "ordinal": _gen_ordinal,
    "superlative": _gen_superlative,
    "plural": _gen_plural,
    "no_target": _gen_no_target,
}


# --------------------------------------------------------------------------------------------
# Public API


def render_sample(seed: int, index: int, split: str) -> Sample:
    """Render one deterministic sample of the procedural benchmark.

    Args:
        seed: dataset seed (non-negative int).
        index: sample index within the split (non-negative int).
        split: ``"train"``, ``"val"`` or ``"test"`` (test scenes contain held-out colour/shape pairs).

    Returns:
        :class:`Sample` with image (H, W, 3) uint8 RGB (H, W in [256, 448], multiples of 8),
        boxes (K, 4) float32 xyxy pixels, masks (K, H, W) bool, K = 0 for no-target.

    Raises:
        ValueError: unknown split, or negative seed/index.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    rng = np.random.default_rng([int(seed), SPLITS[split], int(index)])
    w, h = (int(v) * 8 for v in rng.integers(32, 57, size=2))
    kinds = list(KIND_WEIGHTS)
    kind = _pick(rng, kinds, [KIND_WEIGHTS[k] for k in kinds])

    result = None
    for attempt in range(6):
        specs = _scene_specs(rng, split, kind)
        objects, label = _place_objects(rng, h, w, specs)
        sc = _Scene(objects, h, w, split)
        result = _GENERATORS[kind](rng, sc)
        if result is not None:
            break
    if result is None:  # infeasible kind for six scenes in a row: fall back on the last scene
        for kind in ("attribute", "plural", "no_target"):
            result = _GENERATORS[kind](rng, sc)
            if result is not None:
                break
    assert result is not None  # no_target always succeeds: at most 8 objects, 56 pairs
    expression, target = result
    if target == 0:
        kind = "no_target"

    image = _background(rng, h, w)
    for i, o in enumerate(objects):
        rgb = np.clip(np.array(COLORS[o.color], np.int32) + rng.integers(-10, 11, size=3), 0, 255)
        o.rgb = tuple(int(v) for v in rgb)
        y0, y1, x0, x1 = o._patch
        sub = image[y0:y1, x0:x1]
        sub[label[y0:y1, x0:x1] == i + 1] = rgb.astype(np.uint8)

    referents = _bits(target)
    if referents:
        values = np.array(referents, np.uint8)[:, None, None] + 1
        masks = label[None, :, :] == values
        boxes = np.stack([objects[i].box for i in referents]).astype(np.float32)
    else:
        masks = np.zeros((0, h, w), bool)
        boxes = np.zeros((0, 4), np.float32)
    return Sample(
        image=image,
        expression=expression,
        boxes=boxes,
        masks=masks,
        sample_id=sample_id_for(split, index),
        objects=objects,
        referents=referents,
        kind=kind,
    )
