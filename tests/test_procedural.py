"""Tests of the procedural benchmark generator and of make_data."""
from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from instancevg.data.readers.record_json import load_grounding_json
from instancevg.data.make_data import make_data
from instancevg.data.generators.procedural import (
    COLORS,
    EXPRESSION_KINDS,
    HELD_OUT_COMBOS,
    PLURALS,
    SHAPES,
    SIZE_RANGES,
    SIZES,
    Sample,
    render_sample,
)

N_CHECK = 200


@pytest.fixture(scope="module")
def samples() -> dict[str, list[Sample]]:
    return {
        "train": [render_sample(0, i, "train") for i in range(N_CHECK)],
        "val": [render_sample(0, i, "val") for i in range(100)],
        "test": [render_sample(0, i, "test") for i in range(N_CHECK)],
    }


def _digest(s: Sample) -> str:
    h = hashlib.sha256()
    for a in (s.image, s.boxes, s.masks):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(s.expression.encode())
    return h.hexdigest()


def test_determinism():
    for split in ("train", "test"):
        a, b = render_sample(7, 3, split), render_sample(7, 3, split)
        assert _digest(a) == _digest(b)
        assert a.sample_id == f"{split}-000003"
    assert _digest(render_sample(7, 3, "train")) != _digest(render_sample(8, 3, "train"))
    assert _digest(render_sample(7, 3, "train")) != _digest(render_sample(7, 4, "train"))
    assert _digest(render_sample(7, 3, "train")) != _digest(render_sample(7, 3, "val"))


def test_determinism_across_processes():
    """Independent of PYTHONHASHSEED (no iteration over string sets) and of process state."""
    code = (
        "import hashlib, numpy as np\n"
        "from instancevg.data.generators.procedural import render_sample\n"
        "h = hashlib.sha256()\n"
        "for i in range(8):\n"
        "    s = render_sample(5, i, 'test')\n"
        "    h.update(s.image.tobytes()); h.update(s.masks.tobytes()); h.update(s.expression.encode())\n"
        "print(h.hexdigest())\n"
    )
    outs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                           cwd=Path(__file__).parents[1])
        outs.append(r.stdout.strip())
    assert outs[0] == outs[1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown split"):
        render_sample(0, 0, "dev")
    with pytest.raises(ValueError):
        render_sample(-1, 0, "train")


def test_shapes_dtypes_and_tight_boxes(samples):
    for s in samples["train"][:100] + samples["test"][:100]:
        h, w = s.image.shape[:2]
        assert s.image.dtype == np.uint8 and s.image.shape == (h, w, 3)
        assert 256 <= h <= 448 and 256 <= w <= 448 and h % 8 == 0 and w % 8 == 0
        k = len(s.referents)
        assert s.boxes.dtype == np.float32 and s.boxes.shape == (k, 4)
        assert s.masks.dtype == bool and s.masks.shape == (k, h, w)
        assert 1 <= len(s.objects) <= 8
        assert isinstance(s.expression, str) and s.expression == s.expression.lower() and s.expression.strip()
        assert s.kind in EXPRESSION_KINDS and (s.kind == "no_target") == (k == 0)
        for box, m in zip(s.boxes, s.masks):
            ys, xs = np.nonzero(m)
            np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        # masks of different referents are disjoint, every object keeps most of its area visible
        if k > 1:
            assert s.masks.sum(axis=0).max() == 1
        for o in s.objects:
            assert o.visible_area >= 0.6 * o.full_area > 0
            lo, hi = SIZE_RANGES[o.size]
            assert lo * min(h, w) - 1e-6 <= o.radius <= hi * min(h, w) + 1e-6
            assert o.color in COLORS and o.shape in SHAPES and o.size in SIZES
        for i, m in zip(s.referents, s.masks):
            assert m.sum() == s.objects[i].visible_area
            # the referent's pixels carry its colour
            assert np.abs(s.image[m].astype(int) - np.array(s.objects[i].rgb)).max() == 0


# ----------------------------------------------------------------------------------------------
# An independent interpreter of the expression grammar: re-derive the referents from the scene.

_SIZE_WORD = {"small": "small", "little": "small", "medium": "medium", "medium-sized": "medium",
              "large": "large", "big": "large"}
_SHAPE_WORD = {**{s: (s, False) for s in SHAPES}, **{p: (s, True) for s, p in PLURALS.items()},
               "object": (None, False), "shape": (None, False), "objects": (None, True), "shapes": (None, True)}
_REL = {"left of": "left", "to the left of": "left", "on the left of": "left", "right of": "right",
        "to the right of": "right", "on the right of": "right", "above": "above", "over": "above",
        "below": "below", "under": "below", "beneath": "below"}
_SUP_PRE = {"leftmost": "left", "rightmost": "right", "topmost": "top", "highest": "top", "uppermost": "top",
            "bottommost": "bottom", "lowest": "bottom", "largest": "largest", "biggest": "largest",
            "smallest": "smallest", "tiniest": "smallest"}
_SUP_POST = {"furthest to the left": "left", "on the far left": "left", "furthest to the right": "right",
             "on the far right": "right", "closest to the top": "top", "closest to the bottom": "bottom"}
_ORD = {"first": 1, "second": 2, "third": 3, "fourth": 4}


def _parse_np(text: str):
    """'small red circles' -> ((size, color, shape), plural); raises on anything else."""
    words = text.split()
    size = _SIZE_WORD[words.pop(0)] if words[0] in _SIZE_WORD else None
    color = words.pop(0) if words[0] in COLORS else None
    assert len(words) == 1, text
    shape, plural = _SHAPE_WORD[words[0]]
    return (size, color, shape), plural


def _try_parse_np(text: str):
    try:
        return _parse_np(text)
    except (AssertionError, KeyError, IndexError):
        return None


def _matches(s: Sample, desc, ignore_size=False) -> list[int]:
    size, color, shape = desc
    return [i for i, o in enumerate(s.objects)
            if (ignore_size or size is None or o.size == size) and (color is None or o.color == color)
            and (shape is None or o.shape == shape)]


def _key(o, direction):
    return {"left": o.cx, "right": -o.cx, "top": o.cy, "bottom": -o.cy}[direction]


def _interpret(s: Sample) -> None:
    """Assert that the expression's wording is consistent with the referents of the sample."""
    e, refs, objs = s.expression, list(s.referents), s.objects
    rel = "|".join(sorted(map(re.escape, _REL), key=len, reverse=True))
    m = re.fullmatch(rf"the (.+?) (?:that is )?({rel}) the (.+)", e)
    if m:
        desc, _ = _parse_np(m[1])
        anchor_desc, _ = _parse_np(m[3])
        anchors = _matches(s, anchor_desc)
        assert len(anchors) == 1, e
        b = objs[anchors[0]]
        r = _REL[m[2]]
        cands = [i for i in _matches(s, desc) if i != anchors[0]]
        assert cands, e
        d = {"left": lambda o: b.cx - o.cx, "right": lambda o: o.cx - b.cx,
             "above": lambda o: b.cy - o.cy, "below": lambda o: o.cy - b.cy}[r]
        # referents are clearly on that side; every other candidate is not (or barely)
        clear = [i for i in cands if d(objs[i]) > max(objs[i].radius, b.radius)]
        assert sorted(clear) == refs, (e, clear, refs)
        assert len(refs) <= 1
        return
    m = re.fullmatch(r"the (first|second|third|fourth) (.+?) (?:counting )?from the (left|right|top|bottom)", e)
    if m:
        desc, plural = _parse_np(m[2])
        assert not plural and desc[0] is None
        members = sorted(_matches(s, desc), key=lambda i: _key(objs[i], m[3]))
        assert len(refs) == 1 and len(members) >= _ORD[m[1]] >= 1, e
        assert members[_ORD[m[1]] - 1] == refs[0], e
        return
    pre = "|".join(_SUP_PRE)
    post = "|".join(_SUP_POST)
    m = re.fullmatch(rf"the ({pre}) (.+)", e) or re.fullmatch(rf"the (.+?) ({post})", e)
    if m:
        if m[1] in _SUP_PRE:
            direction, np_text = _SUP_PRE[m[1]], m[2]
        else:
            direction, np_text = _SUP_POST[m[2]], m[1]
        desc, plural = _parse_np(np_text)
        assert not plural and desc[0] is None, e
        members = _matches(s, desc)
        if not refs:
            assert not members, e
            return
        assert len(refs) == 1 and len(members) >= 2, e
        if direction in ("largest", "smallest"):
            rank = {z: i for i, z in enumerate(SIZES)}
            sign = 1 if direction == "largest" else -1
            best = max(sign * rank[objs[i].size] for i in members)
            assert sign * rank[objs[refs[0]].size] == best
            assert sum(sign * rank[objs[i].size] == best for i in members) == 1, e
        else:
            assert min(members, key=lambda i: _key(objs[i], direction)) == refs[0], e
        return
    m = re.fullmatch(r"(the two|the three|the four|both of the|both|all three|all four|all the|all|every|the) (.+)", e)
    parsed = _try_parse_np(m[2]) if m else None
    if parsed and (parsed[1] or m[1] == "every"):
        desc, plural = parsed
        assert plural == (m[1] != "every"), e
        members = _matches(s, desc)
        assert members == refs, e
        if not refs:
            assert not _matches(s, desc, ignore_size=True), e
            return
        word = m[1].split()[-1]
        expected = {"two": 2, "both": 2, "three": 3, "four": 4}.get(word)
        if m[1] == "both of the":
            expected = 2
        if expected is not None:
            assert len(refs) == expected, e
        assert len(refs) >= 2, e
        return
    m = re.fullmatch(r"(?:the )?(.+?)(?: in the (?:image|picture))?", e)
    desc, plural = _parse_np(m[1])
    assert not plural, e
    members = _matches(s, desc)
    assert members == refs and len(refs) <= 1, e
    if not refs:
        assert not _matches(s, desc, ignore_size=True), e
        assert desc[1] is not None or desc[2] is not None, e


def test_expressions_consistent_with_referents(samples):
    for split in ("train", "test"):
        for s in samples[split]:
            _interpret(s)


def test_kind_mix_and_no_target_fraction():
    counts = collections.Counter(render_sample(1, i, "train").kind for i in range(400))
    assert set(counts) == set(EXPRESSION_KINDS)
    assert 0.08 <= counts["no_target"] / 400 <= 0.25
    assert 0.25 <= counts["attribute"] / 400 <= 0.45


def test_held_out_combos(samples):
    assert len(HELD_OUT_COMBOS) == len(SHAPES)
    assert {s for _, s in HELD_OUT_COMBOS} == set(SHAPES)
    mentions = [f"{c} {sh}" for c, sh in HELD_OUT_COMBOS] + [f"{c} {PLURALS[sh]}" for c, sh in HELD_OUT_COMBOS]
    for split in ("train", "val"):
        for s in samples[split]:
            assert not any((o.color, o.shape) in HELD_OUT_COMBOS for o in s.objects), s.sample_id
            assert not any(t in s.expression for t in mentions), s.expression
    targeted = held = 0
    for s in samples["test"]:
        assert any(o.held_out for o in s.objects), s.sample_id
        if s.referents:
            targeted += 1
            held += any(s.objects[i].held_out for i in s.referents)
    assert held >= 0.5 * targeted


def test_make_data_roundtrip_and_bytes(tmp_path):
    a = make_data(tmp_path / "a", seed=3, n_train=3, n_val=2, n_test=2, progress=False)
    make_data(tmp_path / "b", seed=3, n_train=3, n_val=2, n_test=2, progress=False)
    assert a == tmp_path / "a" / "dataset.json"
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 3 + 2 + 2 + 1
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    data = json.loads(a.read_text())
    assert data["info"]["generator"] == "instancevg.procedural" and data["info"]["seed"] == 3
    assert sorted(map(tuple, data["info"]["held_out_combos"])) == sorted(HELD_OUT_COMBOS)
    import cv2

    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        recs = load_grounding_json(a, split)
        assert len(recs) == n
        for i, rec in enumerate(recs):
            s = render_sample(3, i, split)
            assert rec.image_id == s.sample_id and rec.expressions == [s.expression]
            assert (rec.height, rec.width) == s.image.shape[:2]
            img = cv2.cvtColor(cv2.imread(str(rec.image_path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            np.testing.assert_array_equal(img, s.image)
            np.testing.assert_array_equal(rec.boxes, s.boxes)
            np.testing.assert_array_equal(rec.masks(), s.masks)
    c = make_data(tmp_path / "c", seed=4, n_train=3, n_val=0, n_test=0, progress=False)
    assert c.read_bytes() != a.read_bytes()


def test_placement_occlusion_and_same_colour_gap():
    """Internal placement invariant: >= 65% of each object visible, same-colour objects never touch."""
    import cv2

    from instancevg.data.generators import procedural_scene

    rng = np.random.default_rng(0)
    for trial in range(20):
        specs = [("red" if k % 2 else "blue", SHAPES[k % len(SHAPES)], SIZES[(k + trial) % 3]) for k in range(8)]
        objects, label = procedural_scene.place_objects(rng, 320, 360, specs)
        assert len(objects) >= 2
        for i, o in enumerate(objects):
            vis = label == i + 1
            assert vis.sum() == o.visible_area >= procedural_scene.MIN_VISIBLE_FRACTION * o.full_area
            dist = cv2.distanceTransform((~vis).astype(np.uint8), cv2.DIST_L2, 3)
            for j, p in enumerate(objects):
                if j != i and p.color == o.color:
                    assert dist[label == j + 1].min() >= 5


def test_render_objects_redraws_a_sample_and_moves_its_objects():
    """Sample.background + render_objects: the objects at their own centres give back the
    sample's pixels exactly; a moved object takes its pixels (and its label) with it."""
    from instancevg.data.generators.procedural_scene import render_objects

    s = render_sample(0, 7, "val")
    centres = np.array([[o.cx, o.cy] for o in s.objects])
    image, label = render_objects(s.background, s.objects, centres)
    np.testing.assert_array_equal(image, s.image)
    for k, i in enumerate(s.referents):
        np.testing.assert_array_equal(label == i + 1, s.masks[k])
    last = len(s.objects) - 1  # drawn on top: nothing hides it wherever it goes
    moved = centres.copy()
    moved[last] += (3, 2)
    _, label2 = render_objects(s.background, s.objects, moved)
    ys, xs = np.nonzero(label == last + 1)
    ys2, xs2 = np.nonzero(label2 == last + 1)
    assert len(xs2) == len(xs) and (xs2.min() - xs.min(), ys2.min() - ys.min()) == (3, 2)
    with pytest.raises(ValueError, match="centres must be"):
        render_objects(s.background, s.objects, centres[:-1])
