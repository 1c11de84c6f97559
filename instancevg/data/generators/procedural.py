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
    (tests check that at least half of the targeted test expressions refer to one).

Determinism: all randomness comes from ``np.random.default_rng([seed, split_code, index])`` and
shapes are drawn with OpenCV at integer pixel coordinates (no antialiasing), so the same
``(seed, index, split)`` gives the same bytes (given the same NumPy/OpenCV versions: the RNG
streams are platform independent; vertex coordinates are rounded to integers, so last-ulp
differences of ``cos``/``sin`` between CPUs could only matter on exact .5 ties). The photographs
are loaded once per process and cached.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .procedural_expressions import EXPRESSION_KINDS, KIND_WEIGHTS, SceneMasks, generate, pick
from .procedural_scene import (
    HELD_OUT_COMBOS,
    MIN_VISIBLE_FRACTION,
    PLURALS,
    SHAPES,
    SIZE_RANGES,
    SIZES,
    SPLITS,
    ShapeObject,
    check_sample_address,
    draw_background,
    place_objects,
    scene_specs,
)
from .vocabulary import COLORS

__all__ = [
    "COLORS",
    "SHAPES",
    "PLURALS",
    "SIZES",
    "SIZE_RANGES",
    "MIN_VISIBLE_FRACTION",
    "HELD_OUT_COMBOS",
    "EXPRESSION_KINDS",
    "KIND_WEIGHTS",
    "SPLITS",
    "ShapeObject",
    "Sample",
    "render_sample",
    "sample_id_for",
]


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
        objects: every object of the scene in drawing order (later ones on top):
            :class:`ShapeObject` s here, :class:`~.procedural_parts.PartObject` s in part-level
            scenes.
        referents: indices into ``objects`` of the referred objects (ascending, matches boxes).
        kind: expression kind, one of :data:`EXPRESSION_KINDS`.
        background: (H, W, 3) uint8 RGB, the scene before its objects were drawn (to redraw them
            elsewhere: :func:`~.procedural_scene.render_objects`); None for
            part-level scenes.
    """

    image: np.ndarray
    expression: str
    boxes: np.ndarray
    masks: np.ndarray
    sample_id: str
    objects: list[ShapeObject] = field(default_factory=list)
    referents: tuple[int, ...] = ()
    kind: str = "attribute"
    background: np.ndarray | None = None


def sample_id_for(split: str, index: int) -> str:
    """Sample id string ``"{split}-{index:06d}"`` (e.g. ``"test-000042"``)."""
    return f"{split}-{index:06d}"


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
    check_sample_address(seed, index, split)
    rng = np.random.default_rng([int(seed), SPLITS[split], int(index)])
    w, h = (int(v) * 8 for v in rng.integers(32, 57, size=2))
    kinds = list(KIND_WEIGHTS)
    kind = pick(rng, kinds, [KIND_WEIGHTS[k] for k in kinds])

    expr = None
    for attempt in range(6):
        specs = scene_specs(rng, split, kind)
        objects, label = place_objects(rng, h, w, specs)
        sc = SceneMasks(objects, h, w, split)
        expr = generate(kind, rng, sc)
        if expr is not None:
            break
    if expr is None:  # infeasible kind for six scenes in a row: fall back on the last scene
        for fallback in ("attribute", "plural", "no_target"):
            expr = generate(fallback, rng, sc)
            if expr is not None:
                break
    assert expr is not None  # no_target always succeeds: at most 8 objects, 56 pairs

    image = draw_background(rng, h, w)
    background = image.copy()
    for i, o in enumerate(objects):
        rgb = np.clip(np.array(COLORS[o.color], np.int32) + rng.integers(-10, 11, size=3), 0, 255)
        o.rgb = tuple(int(v) for v in rgb)
        y0, y1, x0, x1 = o.window
        sub = image[y0:y1, x0:x1]
        sub[label[y0:y1, x0:x1] == i + 1] = rgb.astype(np.uint8)

    referents = expr.targets
    if referents:
        values = np.array(referents, np.uint8)[:, None, None] + 1
        masks = label[None, :, :] == values
        boxes = np.stack([objects[i].box for i in referents]).astype(np.float32)
    else:
        masks = np.zeros((0, h, w), bool)
        boxes = np.zeros((0, 4), np.float32)
    return Sample(
        image=image,
        expression=expr.text,
        boxes=boxes,
        masks=masks,
        sample_id=sample_id_for(split, index),
        objects=objects,
        referents=referents,
        kind=expr.kind,
        background=background,
    )
