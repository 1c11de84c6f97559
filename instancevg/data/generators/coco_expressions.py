"""Referring expressions generated from COCO-style instance labels (category, box, mask, pixels).

Given every annotated object of an image, :func:`candidate_expressions` lists each expression
whose referent set is unambiguous, by kind:

``category``     "the laptop" (the only laptop)            ``all``       "all cups", "every cup"
``count``        "the two cups" (exactly two)              ``position``  "the leftmost chair"
``ordinal``      "the second bottle from the left"         ``size``      "the biggest dog"
``relation``     "the cup left of the laptop"              ``colour``    "the red car"
no-target kinds ``absent`` (a category not in the image), ``wrong-count`` ("the three cups" with two),
``no-relation`` (a relation no object satisfies), ``no-colour`` (a colour no object of the
category has) and ``similar-absent`` (an absent category of the same COCO supercategory as one in
the image: "the dog" beside a cat; drawn only when :class:`ExpressionMix` gives it a weight)

The rules keep each referent set well defined: an expression is made only when positions differ by
a margin (a fraction of the image side), sizes by a ratio, and colours are clear (a named colour
covers most of the object's pixels and little of every other object of its category). Crowd
regions, tiny objects and mostly hidden (pasted-over) objects count as members of their category
-- so "the cup" is refused when a second, tiny cup exists -- but are never a target.
:func:`draw_expression` picks one expression with ~15 % no-target; it is deterministic in its
``rng``, so a dataset draws sample i from (seed, i).

Follows the phrase kinds of gRefCOCO (Liu et al., CVPR 2023, Sec. 3: multi-target, no-target,
counting, relationships, attributes), with the templates of this project's procedural generator.
Plurals, colour names, number, ordinal and relation words come from :mod:`.vocabulary`; the
expressions are :class:`~.expression.Expression` s.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...runtime.consistency import mask_boxes
from .expression import Expression
from .vocabulary import NUMBER_WORDS, ORDINAL_WORDS, PHOTO_COLOURS, PHOTO_RELATION_PHRASES, plural

__all__ = ["PhotoObject", "scene_objects", "colour_fractions", "candidate_expressions", "draw_expression",
           "ExpressionMix", "KIND_WEIGHTS", "NO_TARGET_KINDS", "NO_TARGET_RATE", "MIN_TARGET_AREA", "SUPERCATEGORY"]

MIN_TARGET_AREA = 0.01      # a target covers >= 1 % of the image
MIN_VISIBLE = 0.5           # a target shows >= half of its (pre-occlusion) mask
POSITION_MARGIN = 0.05      # centres differ by >= 5 % of the image side
SIZE_RATIO = 1.5            # the biggest is >= 1.5x the next
COLOUR_MAJORITY = 0.5       # a named colour covers >= half of the object's pixels ...
COLOUR_OTHERS_MAX = 0.15    # ... and < 15 % of every other object of its category
NO_TARGET_RATE = 0.15
KIND_WEIGHTS = {"category": 3.0, "all": 2.0, "count": 1.0, "position": 2.0, "ordinal": 1.0, "size": 1.0,
                "relation": 2.0, "colour": 1.5}
NO_TARGET_KINDS = ("absent", "wrong-count", "no-relation", "no-colour", "similar-absent")

# COCO's supercategories (the ``supercategory`` field of the 2017 instances files), for
# ``similar-absent``: absent categories that look like something in the photo, as gRefCOCO's
# no-target expressions are written to be deceptive (Liu et al., CVPR 2023, Sec. 3).
SUPERCATEGORY = {name: group for group, names in {
    "vehicle": ("bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"),
    "outdoor": ("traffic light", "fire hydrant", "stop sign", "parking meter", "bench"),
    "animal": ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"),
    "accessory": ("backpack", "umbrella", "handbag", "tie", "suitcase"),
    "sports": ("frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
               "skateboard", "surfboard", "tennis racket"),
    "kitchen": ("bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl"),
    "food": ("banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake"),
    "furniture": ("chair", "couch", "potted plant", "bed", "dining table", "toilet"),
    "electronic": ("tv", "laptop", "mouse", "remote", "keyboard", "cell phone"),
    "appliance": ("microwave", "oven", "toaster", "sink", "refrigerator"),
    "indoor": ("book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"),
}.items() for name in names}  # "person" is alone in its supercategory


@dataclass(frozen=True)
class ExpressionMix:
    """How :func:`draw_expression` weighs expression kinds. The defaults draw the evaluation sets
    (and every run before these knobs); training may move them (``TrainConfig`` fields of the same names).

    Attributes:
        multi_target_weight: > 0; each positive expression with several targets weighs that many
            times more (1.0: kinds by :data:`KIND_WEIGHTS` only).
        wrong_count_weight: >= 0; weight of the ``wrong-count`` kind among the no-target kinds (the
            others weigh 1). Uniform (1.0), about half of the count phrases a photo yields refer to
            nothing (``count`` and ``wrong-count`` come out about equally often), where people who
            write "the two cups" nearly always see two.
        similar_absent_weight: >= 0; weight of the ``similar-absent`` kind (0: never drawn).

    Raises:
        ValueError: a weight out of its range.
    """

    multi_target_weight: float = 1.0
    wrong_count_weight: float = 1.0
    similar_absent_weight: float = 0.0

    def __post_init__(self):
        if not self.multi_target_weight > 0:
            raise ValueError(f"multi_target_weight must be positive, got {self.multi_target_weight}")
        for name in ("wrong_count_weight", "similar_absent_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def no_target_weight(self, kind: str) -> float:
        """The weight of a no-target kind in the choice among those a scene has."""
        return {"wrong-count": self.wrong_count_weight, "similar-absent": self.similar_absent_weight}.get(kind, 1.0)


DEFAULT_MIX = ExpressionMix()

# Safe synonyms: another name a person would use for exactly this COCO category.
_SYNONYMS = {"dining table": ("table",), "tv": ("television", "tv screen"), "motorcycle": ("motorbike",),
             "airplane": ("plane", "aeroplane"), "couch": ("sofa",), "cell phone": ("phone", "mobile phone"),
             "potted plant": ("plant", "houseplant"), "sports ball": ("ball",), "bicycle": ("bike",),
             "hair drier": ("hair dryer",), "donut": ("doughnut",), "laptop": ("laptop computer",),
             "handbag": ("bag",), "wine glass": ("glass",), "fire hydrant": ("hydrant",)}
# (word, axis 0 = x / 1 = y, sign: +1 smallest coordinate wins)
_EXTREMES = {"left": (0, 1), "right": (0, -1), "top": (1, 1), "bottom": (1, -1)}
_POSITION_TEMPLATES = {"left": ("the leftmost {n}", "the {n} on the left", "the {n} furthest to the left"),
                       "right": ("the rightmost {n}", "the {n} on the right", "the {n} furthest to the right"),
                       "top": ("the topmost {n}", "the highest {n}", "the {n} at the top"),
                       "bottom": ("the bottom {n}", "the lowest {n}", "the {n} at the bottom")}
# relation -> (axis 0 = x / 1 = y, sign: +1 holds for a smaller coordinate than the anchor's, -1 for a
# larger one); its phrases are PHOTO_RELATION_PHRASES[relation]
_RELATIONS = {"left": (0, 1), "right": (0, -1), "above": (1, 1), "below": (1, -1)}


def _names(category: str) -> tuple[str, ...]:
    return (category,) + _SYNONYMS.get(category, ())


@dataclass(frozen=True)
class PhotoObject:
    """One annotated object of a photo (or a copy-paste scene) as the expression generator sees it
    (a procedural scene's shape is a :class:`~.procedural_scene.ShapeObject`).

    Attributes:
        category: category name.
        box: (4,) float xyxy pixels of the visible object.
        area: visible mask area in pixels.
        can_be_target: False for crowd regions, tiny (< 1 % of the image) or mostly hidden objects.
        colours: fraction of the object's pixels in each of :data:`~.vocabulary.PHOTO_COLOURS`, or
            None.
    """

    category: str
    box: np.ndarray
    area: float
    can_be_target: bool
    colours: tuple[float, ...] | None = None

    @property
    def centre(self) -> np.ndarray:
        """(2,) box centre (x, y) in pixels."""
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])


def colour_fractions(image: np.ndarray, masks: np.ndarray) -> list[tuple[float, ...] | None]:
    """Per object, the fraction of its pixels in each named colour of :data:`~.vocabulary.PHOTO_COLOURS`.

    Pixels are named in HSV: dark (V < 0.2) black; unsaturated (S < 0.15) white (V > 0.65) or gray;
    saturated (S >= 0.4) by hue, with dark oranges and reds (V < 0.55) called brown; pixels in
    between (0.15 <= S < 0.4, e.g. beige) have no name but count in the total, so a pale object
    gets no colour word.

    Args:
        image: (H, W, 3) uint8 RGB.
        masks: (K, H, W) bool.

    Returns:
        K tuples of len(PHOTO_COLOURS) fractions (summing to at most 1: pale pixels have no name), or
        None for an empty mask.
    """
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    h, s, v = hsv[..., 0] * (360.0 / 256.0), hsv[..., 1] / 255.0, hsv[..., 2] / 255.0
    hue_bins = np.array([15, 40, 70, 170, 260, 300, 340, 360])   # red, orange, yellow, green, blue, purple, pink, red
    hue_names = np.array([0, 1, 2, 3, 4, 5, 6, 0])
    name = hue_names[np.minimum(np.searchsorted(hue_bins, h, side="right"), 7)]
    name = np.where((name <= 1) & (v < 0.55), 7, name)                  # brown
    name = np.where(s < 0.4, len(PHOTO_COLOURS), name)                  # unnamed (pale)
    name = np.where(s < 0.15, np.where(v > 0.65, 8, 9), name)           # white / gray
    name = np.where(v < 0.2, 10, name)                                  # black
    out = []
    for m in masks:
        counts = np.bincount(name[m], minlength=len(PHOTO_COLOURS) + 1).astype(np.float64)
        total = counts.sum()
        out.append(tuple(float(c) for c in counts[:-1] / total) if total else None)
    return out


def scene_objects(image: np.ndarray, masks: np.ndarray, categories: list[str], crowd: list[bool],
                  visible_fraction: list[float] | None = None) -> list[PhotoObject]:
    """The :class:`PhotoObject` s of an image from its masks.

    Args:
        image: (H, W, 3) uint8 RGB.
        masks: (K, H, W) bool visible masks.
        categories: K category names.
        crowd: K crowd flags.
        visible_fraction: K fractions of each object left visible after occlusion (copy-paste);
            default all 1.

    Returns:
        K objects; boxes are the tight boxes of the masks (a fully hidden object keeps area 0).
    """
    hgt, wid = image.shape[:2]
    colours = colour_fractions(image, masks)
    vis = visible_fraction or [1.0] * len(categories)
    boxes, _ = mask_boxes(masks)
    out = []
    for k, (m, box) in enumerate(zip(masks, boxes)):
        area = float(m.sum())
        ok = not crowd[k] and area >= MIN_TARGET_AREA * hgt * wid and vis[k] >= MIN_VISIBLE
        out.append(PhotoObject(categories[k], box, area, ok, colours[k]))
    return out


def _groups(objects: list[PhotoObject]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, o in enumerate(objects):
        groups.setdefault(o.category, []).append(i)
    return groups


def _ordered(objects, idx: list[int], axis: int, sign: int, margin: float) -> list[int] | None:
    """idx sorted along axis (sign +1: smallest first), or None when two neighbours are closer than margin."""
    order = sorted(idx, key=lambda i: sign * objects[i].centre[axis])
    gaps = [abs(objects[b].centre[axis] - objects[a].centre[axis]) for a, b in zip(order, order[1:])]
    return order if all(g >= margin for g in gaps) else None


def candidate_expressions(objects: list[PhotoObject], width: int, height: int,
                          vocabulary: list[str]) -> dict[str, list[Expression]]:
    """Every unambiguous expression for the scene, by kind (see the module docstring).

    Args:
        objects: every annotated object of the image.
        width, height: image size in pixels (margins are fractions of it).
        vocabulary: all category names of the dataset (absent ones give no-target expressions).

    Returns:
        ``{kind: [Expression, ...]}`` with kinds of :data:`KIND_WEIGHTS` (targets) and
        :data:`NO_TARGET_KINDS` (no targets); a kind with no valid expression is absent.
    """
    groups = _groups(objects)
    side = (width, height)
    out: dict[str, list[Expression]] = {}

    def add(kind: str, text: str, targets) -> None:
        out.setdefault(kind, []).append(Expression(text, tuple(sorted(targets)), kind))

    def targetable(idx) -> bool:
        return all(objects[i].can_be_target for i in idx)

    for cat, idx in groups.items():
        pl = plural(cat)
        if len(idx) == 1 and targetable(idx):
            for n in _names(cat):
                add("category", f"the {n}", idx)
        if len(idx) >= 2 and targetable(idx):
            for n in _names(cat):
                add("all", f"all {plural(n)}", idx)
                add("all", f"every {n}", idx)
                add("all", f"all the {plural(n)}", idx)
            if len(idx) in NUMBER_WORDS:
                add("count", f"the {NUMBER_WORDS[len(idx)]} {pl}", idx)
                if len(idx) == 2:
                    add("count", f"both {pl}", idx)
        if targetable(idx):
            for k in (len(idx) - 1, len(idx) + 1):  # one off the true count refers to nothing
                if k in NUMBER_WORDS:
                    add("wrong-count", f"the {NUMBER_WORDS[k]} {pl}", ())
        if len(idx) >= 2:
            for where, (axis, sign) in _EXTREMES.items():
                order = sorted(idx, key=lambda i: sign * objects[i].centre[axis])
                gap = abs(objects[order[1]].centre[axis] - objects[order[0]].centre[axis])
                if gap >= POSITION_MARGIN * side[axis] and objects[order[0]].can_be_target:
                    for t in _POSITION_TEMPLATES[where]:
                        add("position", t.format(n=cat), [order[0]])
                    if len(idx) == 2:
                        add("position", f"the {where} {cat}", [order[0]])
            by_area = sorted(idx, key=lambda i: -objects[i].area)
            if objects[by_area[0]].area >= SIZE_RATIO * objects[by_area[1]].area and objects[by_area[0]].can_be_target:
                for word in ("biggest", "largest"):
                    add("size", f"the {word} {cat}", [by_area[0]])
            if objects[by_area[-2]].area >= SIZE_RATIO * objects[by_area[-1]].area and objects[by_area[-1]].can_be_target:
                add("size", f"the smallest {cat}", [by_area[-1]])
        if len(idx) >= 3:
            for start in ("left", "right"):
                axis, sign = _EXTREMES[start]
                order = _ordered(objects, idx, axis, sign, POSITION_MARGIN * side[axis])
                if order is None:
                    continue
                for k in range(2, min(len(order), len(ORDINAL_WORDS)) + 1):
                    if objects[order[k - 1]].can_be_target:
                        add("ordinal", f"the {ORDINAL_WORDS[k]} {cat} from the {start}", [order[k - 1]])
        _colour_expressions(objects, cat, idx, add)
    _relation_expressions(objects, groups, side, add)
    present = set(groups)
    look_alike = {SUPERCATEGORY[c] for c in present if c in SUPERCATEGORY}
    for cat in vocabulary:
        if cat not in present and not any(s in present for s in _SYNONYMS.get(cat, ())):
            add("absent", f"the {cat}", ())
            add("absent", f"all {plural(cat)}", ())
            if SUPERCATEGORY.get(cat) in look_alike:
                add("similar-absent", f"the {cat}", ())
    return out


def _colour_expressions(objects, cat: str, idx: list[int], add) -> None:
    cols = [objects[i].colours for i in idx]
    for c, colour in enumerate(PHOTO_COLOURS):
        holders = [i for i, f in zip(idx, cols) if f is not None and f[c] >= COLOUR_MAJORITY]
        others_clear = all(f is not None and f[c] < COLOUR_OTHERS_MAX for i, f in zip(idx, cols) if i not in holders)
        if len(holders) == 1 and others_clear and objects[holders[0]].can_be_target:
            add("colour", f"the {colour} {cat}", holders)
        if not holders and all(f is not None and max(f) >= COLOUR_MAJORITY and f[c] < 0.05 for f in cols):
            add("no-colour", f"the {colour} {cat}", ())


def _relation_expressions(objects, groups: dict[str, list[int]], side, add) -> None:
    for anchor_cat, anchor_idx in groups.items():
        if len(anchor_idx) != 1 or not objects[anchor_idx[0]].can_be_target:
            continue  # the anchor is the only one of its category and clearly visible
        anchor = objects[anchor_idx[0]].centre
        for cat, idx in groups.items():
            if cat == anchor_cat:
                continue
            for rel, (axis, sign) in _RELATIONS.items():
                margin = POSITION_MARGIN * side[axis]
                d = [sign * (anchor[axis] - objects[i].centre[axis]) for i in idx]  # > 0: satisfies
                if any(abs(x) < margin for x in d):
                    continue  # an object too close to the anchor's line: ambiguous
                hits = [i for i, x in zip(idx, d) if x > 0]
                name = cat if len(hits) <= 1 else plural(cat)
                for w in PHOTO_RELATION_PHRASES[rel]:
                    text = f"the {name} {w} the {anchor_cat}"
                    if not hits:
                        add("no-relation", text, ())
                    elif all(objects[i].can_be_target for i in hits):
                        add("relation", text, hits)


def draw_expression(candidates: dict[str, list[Expression]], rng: np.random.Generator,
                    no_target_rate: float = NO_TARGET_RATE, mix: ExpressionMix = DEFAULT_MIX) -> Expression | None:
    """One expression: with probability ``no_target_rate`` (when the scene has one) a no-target kind
    among those present, chosen by :meth:`ExpressionMix.no_target_weight` (uniformly at the
    defaults), else a kind by :data:`KIND_WEIGHTS` among those present; then an expression of the
    kind uniformly.

    ``mix.multi_target_weight`` > 1 makes expressions that refer to two or more objects that many
    times likelier: each positive expression weighs its kind's weight shared among the kind's
    expressions, times ``multi_target_weight`` when it has several targets. The default
    :class:`ExpressionMix` draws exactly as before the mix existed (same ``rng`` calls).

    Returns None when the scene has no candidate at all.
    """
    positive = [k for k in KIND_WEIGHTS if candidates.get(k)]
    empty = [k for k in NO_TARGET_KINDS if candidates.get(k) and mix.no_target_weight(k) > 0]
    if empty and (not positive or rng.random() < no_target_rate):
        w = np.array([mix.no_target_weight(k) for k in empty])
        if (w == 1.0).all():
            pool = candidates[empty[int(rng.integers(len(empty)))]]
        else:
            pool = candidates[empty[int(rng.choice(len(empty), p=w / w.sum()))]]
    elif positive and mix.multi_target_weight != 1.0:
        pool = [e for k in positive for e in candidates[k]]
        w = np.array([KIND_WEIGHTS[k] / len(candidates[k]) * (mix.multi_target_weight if len(e.targets) > 1 else 1.0)
                      for k in positive for e in candidates[k]])
        return pool[int(rng.choice(len(pool), p=w / w.sum()))]
    elif positive:
        w = np.array([KIND_WEIGHTS[k] for k in positive])
        pool = candidates[positive[int(rng.choice(len(positive), p=w / w.sum()))]]
    else:
        return None
    return pool[int(rng.integers(len(pool)))]
