"""The procedural benchmark's expression grammar: for a placed scene, enumerate the referring
expressions whose referent set is unambiguous (attribute, spatial, ordinal, superlative, plural,
no-target) and draw one as an :class:`~.expression.Expression`.

:mod:`instancevg.data.generators.procedural` composes it with the scene renderer
(:mod:`instancevg.data.generators.procedural_scene`); its docstring states the unambiguity rules.
Shared words (colours, plurals, numbers, ordinals, relation phrases) come from :mod:`.vocabulary`.
"""
from __future__ import annotations

import numpy as np

from .expression import Expression
from .procedural_scene import HELD_OUT_COMBOS, PLURALS, SHAPES, SIZES, ShapeObject
from .vocabulary import COLORS, NUMBER_WORDS, ORDINAL_WORDS, RELATION_PHRASES

__all__ = ["EXPRESSION_KINDS", "KIND_WEIGHTS", "SceneMasks", "generate", "pick"]

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

_SIZE_WORDS = {"small": ("small", "small", "little"), "medium": ("medium-sized", "medium"), "large": ("large", "big")}
_COUNT_WORDS = {n: word for n, word in NUMBER_WORDS.items() if n <= 4}  # "the four stars"; five and more: "all"
_SUPERLATIVE_TEMPLATES = {
    "left": ("the leftmost {np}", "the leftmost {np}", "the {np} furthest to the left", "the {np} on the far left"),
    "right": ("the rightmost {np}", "the rightmost {np}", "the {np} furthest to the right", "the {np} on the far right"),
    "top": ("the topmost {np}", "the highest {np}", "the uppermost {np}", "the {np} closest to the top"),
    "bottom": ("the bottommost {np}", "the lowest {np}", "the {np} closest to the bottom"),
    "largest": ("the largest {np}", "the biggest {np}"),
    "smallest": ("the smallest {np}", "the smallest {np}", "the tiniest {np}"),
}
_ORDINAL_DIRS = {"left": "left", "right": "right", "top": "top", "bottom": "bottom"}


# --------------------------------------------------------------------------------------------
# Expressions


def pick(rng: np.random.Generator, items, weights=None):
    """Deterministic weighted choice from a sequence (returns the item itself).

    Args:
        rng: the sample's generator (one ``integers`` draw without weights, one ``choice`` with).
        items: a non-empty sequence.
        weights: optional non-negative weights, one per item (normalised here).
    """
    if weights is None:
        return items[int(rng.integers(len(items)))]
    w = np.asarray(weights, np.float64)
    return items[int(rng.choice(len(items), p=w / w.sum()))]


class SceneMasks:
    """Bitmask views of a placed scene's attributes, used to enumerate unambiguous expressions.

    Bit ``i`` of every mask stands for ``objects[i]``.

    Args:
        objects: the scene's :class:`~.procedural_scene.ShapeObject` s, in drawing order.
        h, w: scene size in pixels (position margins scale with min(h, w)).
        split: the sample's split (outside ``test``, descriptors naming a held-out pair are not
            allowed, not even as a no-target).
    """

    def __init__(self, objects: list[ShapeObject], h: int, w: int, split: str):
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
        words.append(pick(rng, _SIZE_WORDS[size]))
    if color is not None:
        words.append(color)
    if shape is not None:
        words.append(PLURALS[shape] if plural else shape)
    else:
        words.append(pick(rng, ("objects", "shapes")) if plural else pick(rng, ("object", "shape")))
    return " ".join(words)


def _bits(m: int) -> tuple[int, ...]:
    return tuple(i for i in range(m.bit_length()) if m >> i & 1)


def _prefer_held(rng: np.random.Generator, sc: SceneMasks, cands: list, referent_of) -> list:
    """In the test split, restrict candidates to those referring to a held-out object (75%)."""
    if sc.split != "test" or not cands or rng.random() >= 0.75:
        return cands
    held = [c for c in cands if referent_of(c) & sc.held_mask]
    return held or cands


def _gen_attribute(rng, sc: SceneMasks):
    cands = [(d, m) for d, m in sc.descs.items() if m.bit_count() == 1 and _n_attr(d) > 0]
    cands = _prefer_held(rng, sc, cands, lambda c: c[1])
    if not cands:
        return None
    targets = sorted({m for _, m in cands})
    target = pick(rng, targets)
    opts = [d for d, m in cands if m == target]
    desc = pick(rng, opts, [_desc_weight(d) for d in opts])
    phrase = _np(rng, desc)
    tmpl = pick(rng, ("the {np}", "{np}", "the {np} in the image", "the {np} in the picture"), (0.75, 0.1, 0.08, 0.07))
    return Expression(tmpl.format(np=phrase), _bits(target), "attribute")


def _anchor_descs(sc: SceneMasks) -> dict[int, list[tuple]]:
    """Object index -> its unique descriptors without size and with at least a shape or colour."""
    out: dict[int, list[tuple]] = {}
    for d, m in sc.descs.items():
        if m.bit_count() == 1 and d[0] is None and _n_attr(d) > 0:
            out.setdefault(m.bit_length() - 1, []).append(d)
    return out


def _gen_spatial(rng, sc: SceneMasks, want_target: bool = True):
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
    d1, rel, b, hit, _ = pick(rng, cands, weights)
    bdescs = anchors[b]
    bdesc = pick(rng, bdescs, [_desc_weight(d) for d in bdescs])
    tmpl = pick(rng, ("the {a} {rel} the {b}", "the {a} that is {rel} the {b}"), (0.8, 0.2))
    text = tmpl.format(a=_np(rng, d1), rel=pick(rng, RELATION_PHRASES[rel]), b=_np(rng, bdesc))
    return Expression(text, _bits(hit), "spatial" if want_target else "no_target")


def _ordered(sc: SceneMasks, m: int, direction: str) -> tuple[list[int], int]:
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


def _gen_ordinal(rng, sc: SceneMasks):
    cands = []
    for d, m in sc.descs.items():
        if d[0] is not None or m.bit_count() < 2:
            continue
        for direction in ("left", "right", "top", "bottom"):
            idx, n_ok = _ordered(sc, m, direction)
            for k in range(1, min(n_ok, len(ORDINAL_WORDS)) + 1):
                cands.append((d, direction, k, 1 << idx[k - 1]))
    cands = _prefer_held(rng, sc, cands, lambda c: c[3])
    if not cands:
        return None
    weights = [{1: 1.0, 2: 3.0, 3: 2.0, 4: 1.0}[c[2]] * _desc_weight(c[0]) for c in cands]
    d, direction, k, target = pick(rng, cands, weights)
    tmpl = pick(rng, ("the {o} {np} from the {d}", "the {o} {np} counting from the {d}"), (0.85, 0.15))
    text = tmpl.format(o=ORDINAL_WORDS[k], np=_np(rng, d), d=_ORDINAL_DIRS[direction])
    return Expression(text, _bits(target), "ordinal")


def _gen_superlative(rng, sc: SceneMasks):
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
    d, direction, target = pick(rng, cands, weights)
    text = pick(rng, _SUPERLATIVE_TEMPLATES[direction]).format(np=_np(rng, d))
    return Expression(text, _bits(target), "superlative")


def _gen_plural(rng, sc: SceneMasks):
    cands = [(d, m) for d, m in sc.descs.items() if m.bit_count() >= 2]
    cands = _prefer_held(rng, sc, cands, lambda c: c[1])
    if not cands:
        return None
    weights = [_desc_weight(d) if _n_attr(d) else 0.4 for d, _ in cands]
    d, m = pick(rng, cands, weights)
    count = m.bit_count()
    pl = _np(rng, d, plural=True)
    if count == 2:
        tmpl = pick(rng, ("the two {pl}", "both {pl}", "all {pl}", "the {pl}", "both of the {pl}"), (3, 3, 2, 1, 1))
    elif count in _COUNT_WORDS:
        word = _COUNT_WORDS[count]
        tmpl = pick(rng, (f"the {word} {{pl}}", "all {pl}", f"all {word} {{pl}}", "the {pl}", "all the {pl}"), (3, 3, 1, 1, 1))
    else:
        tmpl = pick(rng, ("all {pl}", "all the {pl}", "the {pl}", "every {sg}"), (4, 2, 1, 1))
    return Expression(tmpl.format(pl=pl, sg=_np(rng, d)), _bits(m), "plural")


def _absent_descriptor(rng, sc: SceneMasks, allow_generic: bool = True):
    """A descriptor matching nothing, even with its size adjective dropped; None if not found."""
    color_names = list(COLORS)
    scene_colors = [c for c in COLORS if c in sc.color_mask]
    scene_shapes = [s for s in SHAPES if s in sc.shape_mask]
    for _ in range(40):
        u = rng.random()
        if u < 0.55 and scene_colors and scene_shapes:  # near miss: both attributes exist, not together
            color, shape = pick(rng, scene_colors + color_names), pick(rng, scene_shapes + list(SHAPES))
        elif u < 0.8:  # absent shape, optionally with a colour
            color = pick(rng, color_names) if rng.random() < 0.5 else None
            shape = pick(rng, SHAPES)
        else:  # absent colour
            color = pick(rng, color_names)
            shape = pick(rng, SHAPES) if (rng.random() < 0.5 or not allow_generic) else None
        desc = (None, color, shape)
        if sc.mask(desc) or not sc.allowed(desc):
            continue
        if rng.random() < 0.2 and shape is not None:
            desc = (pick(rng, SIZES), color, shape)
        return desc
    return None


def _gen_no_target(rng, sc: SceneMasks):
    mode = pick(rng, ("attribute", "plural", "superlative", "spatial"), (0.5, 0.2, 0.1, 0.2))
    if mode == "spatial" and sc.n >= 2:
        out = _gen_spatial(rng, sc, want_target=False)
        if out is not None:
            return out
        mode = "attribute"
    desc = _absent_descriptor(rng, sc, allow_generic=mode != "superlative")
    if desc is None:
        return None
    if mode == "plural":
        tmpl = pick(rng, ("all {pl}", "the {pl}", "all the {pl}", "both {pl}", "the two {pl}"), (4, 2, 1, 1, 1))
        return Expression(tmpl.format(pl=_np(rng, desc, plural=True)), (), "no_target")
    if mode == "superlative":
        direction = pick(rng, ("left", "right", "top", "bottom", "largest", "smallest"))
        d = (None, desc[1], desc[2])
        return Expression(pick(rng, _SUPERLATIVE_TEMPLATES[direction]).format(np=_np(rng, d)), (), "no_target")
    tmpl = pick(rng, ("the {np}", "{np}", "the {np} in the image"), (0.8, 0.1, 0.1))
    return Expression(tmpl.format(np=_np(rng, desc)), (), "no_target")


_GENERATORS = {
    "attribute": _gen_attribute,
    "spatial": _gen_spatial,
    "ordinal": _gen_ordinal,
    "superlative": _gen_superlative,
    "plural": _gen_plural,
    "no_target": _gen_no_target,
}


def generate(kind: str, rng: np.random.Generator, scene: SceneMasks) -> Expression | None:
    """Draw one unambiguous expression of ``kind`` for a placed scene.

    Args:
        kind: one of :data:`EXPRESSION_KINDS`.
        rng: the sample's generator (the draws depend on the scene).
        scene: the scene's :class:`SceneMasks`.

    Returns:
        an :class:`~.expression.Expression` whose ``targets`` index ``scene.objects`` (``()`` and
        kind ``"no_target"`` for a no-target one), or None when the scene admits none of ``kind``
        (``no_target`` always succeeds for the benchmark's scenes: at most 8 objects, 56 pairs).

    Raises:
        KeyError: unknown ``kind``.
    """
    return _GENERATORS[kind](rng, scene)
