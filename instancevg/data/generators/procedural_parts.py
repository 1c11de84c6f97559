"""Part-level procedural scenes (multi-granularity grounding, MRES): objects made of named parts
and expressions that refer to objects or to their parts.

UniRES++ (Liu et al., "Towards Unified Referring Expression Segmentation Across Omni-Level Visual
Target Granularities", 2025) and its RefCOCOm benchmark ground part-level phrases ("the handle of
the mug") beside object-level ones, and report mIoU / oIoU on each granularity. For a robot the
part is often what it grasps. This generator gives the same task with exact part masks:

Objects (one colour each from :data:`~.vocabulary.PART_COLORS`; the second part is drawn darker):
    mug = body + handle, flag = pole + cloth, house = walls + roof, lamp = shade + base.
Expression kinds (:data:`PART_KINDS`):
    ``part``: "the handle of the red mug" / "the red mug's handle": one part of one object;
    ``all_parts``: "all roofs": that part of every object of that kind, one instance each;
    ``object``: "the blue lamp": the whole object (union of its parts) as one instance;
    ``no_target``: a part of a coloured object the scene does not hold.
Held-out combinations: the (object, colour) pairs of :data:`HELD_OUT_PART_COMBOS` (so every
(object, part, colour) triple of them) never appear in ``train`` / ``val`` scenes; every ``test``
scene holds at least one, and ``part`` / ``object`` expressions there refer to one when they can.

Samples are :class:`~.procedural.Sample` s (``objects`` holds :class:`PartObject` s), deterministic in
(seed, split, index) as the object benchmark (``np.random.default_rng``); the grammar returns an
:class:`~.expression.Expression` whose ``parts`` name the referred part of each target.
"""
from __future__ import annotations

import cv2
import numpy as np

from .expression import Expression
from .procedural import Sample
from .procedural_scene import SPLITS, check_sample_address, draw_background
from .vocabulary import COLORS, PART_COLORS, plural

__all__ = ["PART_OBJECTS", "PART_PLURALS", "OBJECT_PLURALS", "HELD_OUT_PART_COMBOS", "PART_KINDS", "PART_GRANULARITY",
           "PartObject", "render_part_sample"]

PART_OBJECTS: dict[str, tuple[str, str]] = {
    "mug": ("body", "handle"),
    "flag": ("cloth", "pole"),
    "house": ("walls", "roof"),
    "lamp": ("shade", "base"),
}
"""Object kind -> its two part names (the first is drawn in the object's colour, the second darker)."""

PART_PLURALS: dict[str, str] = {part: plural(part) for parts in PART_OBJECTS.values() for part in parts}
"""Part name -> its plural (:func:`~.vocabulary.plural`: ``"body"`` -> ``"bodies"``, ``"walls"`` -> ``"walls"``)."""
OBJECT_PLURALS: dict[str, str] = {k: plural(k) for k in PART_OBJECTS}
"""Object kind -> its plural."""
HELD_OUT_PART_COMBOS: frozenset[tuple[str, str]] = frozenset(
    {("mug", "green"), ("flag", "blue"), ("house", "yellow"), ("lamp", "red")})
"""(object, colour) pairs absent from train/val scenes and present in every test scene."""

PART_KINDS: dict[str, float] = {"part": 0.4, "all_parts": 0.2, "object": 0.25, "no_target": 0.15}
"""Expression kind -> sampling weight."""
PART_GRANULARITY: dict[str, str | None] = {"part": "part", "all_parts": "part", "object": "object", "no_target": None}
"""Expression kind -> the granularity its targets count in (RefCOCOm's part / object split)."""

# Part outlines in the object's unit box ((0, 0) top-left, (1, 1) bottom-right).
_OUTLINES: dict[str, dict[str, list[tuple[float, float]]]] = {
    "mug": {"body": [(0.08, 0.15), (0.68, 0.15), (0.68, 1.0), (0.08, 1.0)]},
    "flag": {"pole": [(0.05, 0.0), (0.13, 0.0), (0.13, 1.0), (0.05, 1.0)],
             "cloth": [(0.13, 0.04), (0.95, 0.04), (0.95, 0.5), (0.13, 0.5)]},
    "house": {"walls": [(0.12, 0.45), (0.88, 0.45), (0.88, 1.0), (0.12, 1.0)],
              "roof": [(0.0, 0.47), (0.5, 0.0), (1.0, 0.47)]},
    "lamp": {"shade": [(0.3, 0.0), (0.7, 0.0), (0.88, 0.4), (0.12, 0.4)],
             "base": [(0.45, 0.4), (0.55, 0.4), (0.55, 0.9), (0.8, 0.9), (0.8, 1.0), (0.2, 1.0), (0.2, 0.9),
                      (0.45, 0.9)]},
}


def _part_masks(kind: str, size: int) -> dict[str, np.ndarray]:
    """The masks (size, size) bool of an object's parts, drawn in its own box; parts do not overlap."""
    masks = {}
    for part, outline in _OUTLINES[kind].items():
        canvas = np.zeros((size, size), np.uint8)
        pts = np.round(np.array(outline) * (size - 1)).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 1)
        masks[part] = canvas.astype(bool)
    if kind == "mug":  # the handle: a thick ring on the body's right side, outside the body
        canvas = np.zeros((size, size), np.uint8)
        centre = (int(round(0.68 * (size - 1))), int(round(0.55 * (size - 1))))
        axes = (max(2, int(round(0.22 * size))), max(2, int(round(0.25 * size))))
        cv2.ellipse(canvas, centre, axes, 0, -90, 90, 1, thickness=max(2, int(round(0.09 * size))))
        masks["handle"] = canvas.astype(bool) & ~masks["body"]
    first, second = PART_OBJECTS[kind]
    masks[first] &= ~masks[second]  # the second part is drawn on top where the outlines touch
    return masks


class PartObject:
    """One drawn object: kind, colour, its top-left corner and side (pixels), and the full-image
    part masks (H, W) bool keyed by part name."""

    def __init__(self, kind: str, color: str, x: int, y: int, size: int, parts: dict[str, np.ndarray]):
        self.kind, self.color, self.x, self.y, self.size, self.parts = kind, color, x, y, size, parts

    @property
    def held_out(self) -> bool:
        """True when (kind, colour) is in :data:`HELD_OUT_PART_COMBOS`."""
        return (self.kind, self.color) in HELD_OUT_PART_COMBOS

    def mask(self, part: str | None = None) -> np.ndarray:
        """(H, W) bool mask of one part, or of the whole object when ``part`` is None."""
        if part is None:
            return np.logical_or.reduce(list(self.parts.values()))
        return self.parts[part]


def _scene(rng: np.random.Generator, split: str, h: int, w: int) -> list[PartObject]:
    """2..5 non-overlapping objects; train/val never hold a held-out pair, test holds at least one."""
    combos = [(k, c) for k in PART_OBJECTS for c in PART_COLORS]
    allowed = combos if split == "test" else [kc for kc in combos if kc not in HELD_OUT_PART_COMBOS]
    n = int(rng.integers(2, 6))
    chosen = [allowed[int(i)] for i in rng.choice(len(allowed), size=n, replace=False)]
    if split == "test" and not any(kc in HELD_OUT_PART_COMBOS for kc in chosen):
        held = sorted(HELD_OUT_PART_COMBOS)
        chosen[0] = held[int(rng.integers(len(held)))]
    objects: list[PartObject] = []
    taken = np.zeros((h, w), bool)
    for kind, color in chosen:
        for _ in range(30):
            size = int(rng.uniform(0.2, 0.34) * min(h, w))
            x, y = int(rng.integers(0, w - size)), int(rng.integers(0, h - size))
            margin = max(2, size // 12)
            if taken[max(0, y - margin):y + size + margin, max(0, x - margin):x + size + margin].any():
                continue
            parts = {}
            for part, local in _part_masks(kind, size).items():
                full = np.zeros((h, w), bool)
                full[y:y + size, x:x + size] = local
                parts[part] = full
            objects.append(PartObject(kind, color, x, y, size, parts))
            taken[y:y + size, x:x + size] = True
            break
    return objects


def _unique(objects: list[PartObject]) -> list[int]:
    """Indices of the objects whose (kind, colour) occurs once in the scene."""
    keys = [(o.kind, o.color) for o in objects]
    return [i for i, k in enumerate(keys) if keys.count(k) == 1]


def _prefer_held_out(objects: list[PartObject], idx: list[int], split: str) -> list[int]:
    held = [i for i in idx if objects[i].held_out]
    return held if split == "test" and held else idx


def _expression(rng: np.random.Generator, kind: str, objects: list[PartObject], split: str) -> Expression | None:
    """An :class:`~.expression.Expression` of ``kind`` (``parts``: the referred part per target, None
    for a whole object), or None when the scene cannot give one."""
    unique = _prefer_held_out(objects, _unique(objects), split)
    if kind == "part" and unique:
        i = unique[int(rng.integers(len(unique)))]
        o = objects[i]
        part = PART_OBJECTS[o.kind][int(rng.integers(2))]
        text = (f"the {part} of the {o.color} {o.kind}" if rng.random() < 0.6 else f"the {o.color} {o.kind}'s {part}")
        return Expression(text, (i,), kind, (part,))
    if kind == "object" and unique:
        i = unique[int(rng.integers(len(unique)))]
        return Expression(f"the {objects[i].color} {objects[i].kind}", (i,), kind, (None,))
    if kind == "all_parts":
        kinds = sorted({o.kind for o in objects})
        obj_kind = kinds[int(rng.integers(len(kinds)))]
        part = PART_OBJECTS[obj_kind][int(rng.integers(2))]
        word = "every" if rng.random() < 0.3 else "all"
        text = f"every {part}" if word == "every" else f"all {PART_PLURALS[part]}"
        targets = tuple(i for i, o in enumerate(objects) if o.kind == obj_kind)
        return Expression(text, targets, kind, (part,) * len(targets))
    if kind == "no_target":
        present = {(o.kind, o.color) for o in objects}
        absent = [(k, c) for k in PART_OBJECTS for c in PART_COLORS
                  if (k, c) not in present and (split == "test" or (k, c) not in HELD_OUT_PART_COMBOS)]
        obj_kind, color = absent[int(rng.integers(len(absent)))]
        part = PART_OBJECTS[obj_kind][int(rng.integers(2))]
        return Expression(f"the {part} of the {color} {obj_kind}", (), kind)
    return None


def render_part_sample(seed: int, index: int, split: str) -> Sample:
    """Render one deterministic part-level sample: the same address ``(seed, index, split)`` as
    :func:`~.procedural.render_sample` (checked by ``check_sample_address``; ``test`` scenes hold
    the held-out object/colour pairs), another scene grammar.

    Returns:
        a :class:`Sample`: image (H, W, 3) uint8 RGB (H, W in [256, 448], multiples of 8),
        boxes (K, 4) float32 xyxy pixels (x2/y2 exclusive), masks (K, H, W) bool, K = 0 for
        no-target; ``kind`` one of :data:`PART_KINDS`; ``sample_id`` ``"parts-{split}-{index:06d}"``.

    Raises:
        ValueError: unknown split, or negative seed/index.
    """
    check_sample_address(seed, index, split)
    rng = np.random.default_rng([int(seed), SPLITS[split], int(index), 7])  # 7: not the object benchmark's stream
    w, h = (int(v) * 8 for v in rng.integers(32, 57, size=2))
    kinds = list(PART_KINDS)
    kind = kinds[int(rng.choice(len(kinds), p=np.array(list(PART_KINDS.values())) / sum(PART_KINDS.values())))]
    objects = _scene(rng, split, h, w)
    found = _expression(rng, kind, objects, split)
    if found is None:  # no object is unique in this scene: name a part of every object of a kind
        kind = "all_parts"
        found = _expression(rng, kind, objects, split)
    image = draw_background(rng, h, w)
    for o in objects:
        rgb = np.clip(np.array(COLORS[o.color], np.int32) + rng.integers(-10, 11, size=3), 0, 255)
        first, second = PART_OBJECTS[o.kind]
        image[o.parts[first]] = rgb.astype(np.uint8)
        image[o.parts[second]] = (rgb * 0.55).astype(np.uint8)
    masks = (np.stack([objects[i].mask(p) for i, p in zip(found.targets, found.parts)]) if found.targets
             else np.zeros((0, h, w), bool))
    boxes = np.zeros((len(masks), 4), np.float32)
    for k, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return Sample(image=image, expression=found.text, boxes=boxes, masks=masks, sample_id=f"parts-{split}-{index:06d}",
                  objects=objects, referents=found.targets, kind=found.kind if found.targets else "no_target")
