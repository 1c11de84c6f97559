"""Expression generation from COCO-style labels: every kind, and the ambiguity refusals."""
from __future__ import annotations

import numpy as np
import pytest

from instancevg.data.generators.coco_expressions import (NO_TARGET_KINDS, ExpressionMix, PhotoObject, candidate_expressions,
                                                         colour_fractions, draw_expression, scene_objects)
from instancevg.data.generators.vocabulary import PHOTO_COLOURS, plural

W, H = 400, 300
VOCAB = ["person", "cup", "laptop", "dog", "dining table", "bus", "giraffe"]


def obj(cat, x0, y0, x1, y1, ok=True, colour=None):
    colours = None
    if colour is not None:
        colours = tuple(1.0 if c == colour else 0.0 for c in PHOTO_COLOURS)
    return PhotoObject(cat, np.array([x0, y0, x1, y1], np.float32), float((x1 - x0) * (y1 - y0)), ok, colours)


def texts(cands, kind):
    return {e.text: e.targets for e in cands.get(kind, [])}


def test_plurals():
    assert [plural(c) for c in ("cup", "person", "bus", "dining table", "knife", "skis", "teddy bear", "mouse")] == [
        "cups", "people", "buses", "dining tables", "knives", "skis", "teddy bears", "mice"]


def test_category_all_count_and_absent():
    objs = [obj("cup", 10, 100, 60, 160), obj("cup", 300, 100, 350, 160), obj("laptop", 120, 50, 260, 200)]
    c = candidate_expressions(objs, W, H, VOCAB)
    assert texts(c, "category") == {"the laptop": (2,), "the laptop computer": (2,)}
    assert texts(c, "all")["all cups"] == (0, 1) and texts(c, "all")["every cup"] == (0, 1)
    assert texts(c, "count") == {"the two cups": (0, 1), "both cups": (0, 1)}
    assert texts(c, "wrong-count") == {"the three cups": (), "the two laptops": ()}  # one off the true count
    absent = texts(c, "absent")
    assert "the dog" in absent and "all giraffes" in absent and "the cup" not in absent and "the laptop" not in absent
    table = candidate_expressions([obj("dining table", 0, 0, 300, 200)], W, H, VOCAB)
    assert texts(table, "category") == {"the dining table": (0,), "the table": (0,)}  # a safe synonym


def test_a_tiny_or_crowd_member_blocks_the_category():
    objs = [obj("cup", 10, 100, 60, 160), obj("cup", 300, 100, 303, 103, ok=False)]  # second cup is tiny
    c = candidate_expressions(objs, W, H, VOCAB)
    assert "the cup" not in texts(c, "category")            # two cups exist: "the cup" is ambiguous
    assert not c.get("all") and not c.get("count")           # the tiny one would have to be found
    assert texts(c, "position")["the leftmost cup"] == (0,)  # but position still singles out the big one
    assert "the rightmost cup" not in texts(c, "position")   # the tiny one is never a target
    crowd = candidate_expressions([obj("person", 0, 0, 200, 300, ok=False)], W, H, VOCAB)
    assert not crowd.get("category") and "the person" not in texts(crowd, "absent")


def test_position_and_ordinal_need_margins():
    cups = [obj("cup", x, 100, x + 30, 140) for x in (10, 100, 190, 280)]
    c = candidate_expressions(cups, W, H, VOCAB)
    assert texts(c, "position")["the leftmost cup"] == (0,)
    assert texts(c, "position")["the rightmost cup"] == (3,)
    assert texts(c, "ordinal")["the second cup from the left"] == (1,)
    assert texts(c, "ordinal")["the second cup from the right"] == (2,)
    assert texts(c, "ordinal")["the fourth cup from the left"] == (3,)
    assert "the top cup" not in texts(c, "position")  # same height: no top cup
    close = [obj("cup", 10, 100, 40, 140), obj("cup", 20, 150, 50, 190), obj("cup", 300, 100, 330, 140)]
    c = candidate_expressions(close, W, H, VOCAB)  # the two left cups are 10 px apart (< 5 % of 400)
    assert "the leftmost cup" not in texts(c, "position") and not c.get("ordinal")
    assert texts(c, "position")["the rightmost cup"] == (2,)


def test_size_needs_a_ratio():
    dogs = [obj("dog", 0, 0, 200, 200), obj("dog", 250, 0, 350, 100), obj("dog", 250, 150, 340, 240)]
    c = candidate_expressions(dogs, W, H, VOCAB)
    assert texts(c, "size")["the biggest dog"] == (0,)
    assert "the smallest dog" not in texts(c, "size")  # 100x100 vs 90x90: too close to call


def test_relations_with_a_unique_anchor_and_no_target_relations():
    objs = [obj("cup", 10, 100, 60, 160), obj("cup", 320, 100, 370, 160), obj("laptop", 150, 80, 250, 200)]
    c = candidate_expressions(objs, W, H, VOCAB)
    rel = texts(c, "relation")
    assert rel["the cup left of the laptop"] == (0,) and rel["the cup to the right of the laptop"] == (1,)
    assert "the cup above the laptop" not in rel               # both cups level with the laptop: ambiguous
    assert "the laptop left of the cup" not in rel             # two cups: no unique anchor
    cups = [obj("cup", 10, 100, 60, 160), obj("cup", 60, 30, 100, 70), obj("laptop", 200, 80, 300, 200)]
    rel = texts(candidate_expressions(cups, W, H, VOCAB), "relation")
    assert rel["the cups left of the laptop"] == (0, 1)        # plural referent set
    assert "the cup right of the laptop" in texts(candidate_expressions(cups, W, H, VOCAB), "no-relation")


def test_colour_only_when_clear():
    objs = [obj("bus", 0, 0, 150, 150, colour="red"), obj("bus", 200, 0, 350, 150, colour="blue")]
    c = candidate_expressions(objs, W, H, VOCAB)
    assert texts(c, "colour") == {"the red bus": (0,), "the blue bus": (1,)}
    assert "the green bus" in texts(c, "no-colour")
    pale = [obj("bus", 0, 0, 150, 150, colour="red"), obj("bus", 200, 0, 350, 150)]  # second: colour unknown
    c = candidate_expressions(pale, W, H, VOCAB)
    assert not c.get("colour") and not c.get("no-colour")


def test_colour_fractions_name_pixels():
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :10] = (220, 30, 30)    # red
    img[:, 10:20] = (40, 60, 220)  # blue
    img[:, 20:30] = (245, 245, 245)  # white
    img[:, 30:] = (200, 180, 160)  # beige: pale, no name
    masks = np.zeros((4, 20, 40), bool)
    for k in range(4):
        masks[k, :, 10 * k:10 * (k + 1)] = True
    f = colour_fractions(img, masks)
    assert f[0][PHOTO_COLOURS.index("red")] == 1 and f[1][PHOTO_COLOURS.index("blue")] == 1
    assert f[2][PHOTO_COLOURS.index("white")] == 1 and sum(f[3]) == 0


def test_scene_objects_flags_tiny_crowd_and_hidden():
    img = np.zeros((100, 100, 3), np.uint8)
    masks = np.zeros((4, 100, 100), bool)
    masks[0, 10:40, 10:40] = True
    masks[1, 50:52, 50:52] = True      # 4 px: tiny
    masks[2, 60:90, 60:90] = True      # crowd
    masks[3, 0:30, 60:90] = True       # 30 % visible
    objs = scene_objects(img, masks, ["cup"] * 4, [False, False, True, False], [1.0, 1.0, 1.0, 0.3])
    assert [o.can_be_target for o in objs] == [True, False, False, False]
    np.testing.assert_array_equal(objs[0].box, [10, 10, 40, 40])


def test_draw_is_deterministic_and_no_target_rate():
    objs = [obj("cup", 10, 100, 60, 160), obj("cup", 300, 100, 350, 160), obj("laptop", 120, 50, 260, 200)]
    c = candidate_expressions(objs, W, H, VOCAB)
    a = [draw_expression(c, np.random.default_rng([0, i])) for i in range(2000)]
    b = [draw_expression(c, np.random.default_rng([0, i])) for i in range(2000)]
    assert a == b
    empty = np.mean([not e.targets for e in a])
    assert 0.12 < empty < 0.18
    assert {e.kind for e in a if not e.targets} == {k for k in NO_TARGET_KINDS if c.get(k)} == {"absent", "wrong-count"}
    assert draw_expression({}, np.random.default_rng(0)) is None


@pytest.mark.parametrize("kind", ["category", "all", "count", "position", "ordinal", "size", "relation", "colour"])
def test_every_positive_kind_reachable(kind):
    objs = [obj("cup", x, 100, x + 30 + 10 * i, 140 + 10 * i, colour="red" if i == 0 else "blue")
            for i, x in enumerate((10, 100, 190))] + [obj("laptop", 250, 200, 390, 290)]
    c = candidate_expressions(objs, W, H, VOCAB)
    seen = {draw_expression(c, np.random.default_rng([1, i])).kind for i in range(400)}
    assert kind in seen


def test_multi_target_weight_raises_the_share_of_group_expressions():
    objs = [obj("cup", 10, 100, 60, 160), obj("cup", 300, 100, 350, 160), obj("laptop", 120, 50, 260, 200)]
    c = candidate_expressions(objs, W, H, VOCAB)

    def share(weight):
        drawn = [draw_expression(c, np.random.default_rng([1, i]), mix=ExpressionMix(multi_target_weight=weight))
                 for i in range(3000)]
        positive = [e for e in drawn if e.targets]
        return np.mean([len(e.targets) > 1 for e in positive]), np.mean([not e.targets for e in drawn])

    base, empty1 = share(1.0)
    more, empty4 = share(4.0)
    assert more > base + 0.15
    assert abs(empty4 - empty1) < 0.03  # the no-target rate does not move
    with pytest.raises(ValueError, match="multi_target_weight"):
        ExpressionMix(multi_target_weight=0)


def test_wrong_count_weight_sets_how_often_count_phrases_refer_to_nothing():
    objs = [obj("cup", 10, 100, 60, 160), obj("cup", 300, 100, 350, 160), obj("laptop", 120, 50, 260, 200)]
    c = candidate_expressions(objs, W, H, VOCAB)
    assert c["wrong-count"] and c["count"] and len([k for k in NO_TARGET_KINDS if c.get(k)]) > 1

    def kinds(weight):
        drawn = [draw_expression(c, np.random.default_rng([2, i]), mix=ExpressionMix(wrong_count_weight=weight)).kind
                 for i in range(4000)]
        empty = [k for k in drawn if k in NO_TARGET_KINDS]
        return np.mean([k == "wrong-count" for k in empty]), len(empty) / len(drawn)

    uniform, rate1 = kinds(1.0)
    quarter, rate_q = kinds(0.25)
    never, rate0 = kinds(0.0)
    present = len([k for k in NO_TARGET_KINDS if c.get(k)])
    assert abs(uniform - 1 / present) < 0.05  # 1.0: one no-target kind among `present`, uniformly
    assert abs(quarter - 0.25 / (0.25 + present - 1)) < 0.05
    assert never == 0.0
    assert max(rate1, rate_q, rate0) - min(rate1, rate_q, rate0) < 0.03  # the no-target rate does not move
    same = [draw_expression(c, np.random.default_rng([2, i])) for i in range(50)]  # 1.0 is the default draw
    assert same == [draw_expression(c, np.random.default_rng([2, i]), mix=ExpressionMix(wrong_count_weight=1.0))
                    for i in range(50)]
    with pytest.raises(ValueError, match="wrong_count_weight"):
        ExpressionMix(wrong_count_weight=-1)


def test_similar_absent_names_look_alike_categories_only_when_weighted():
    objs = [obj("cat", 10, 100, 160, 260), obj("laptop", 200, 50, 360, 200)]
    vocab = ["cat", "laptop", "dog", "giraffe", "keyboard", "pizza", "person"]
    c = candidate_expressions(objs, W, H, vocab)
    # same COCO supercategory as a present category (animal: cat; electronic: laptop), and absent
    assert {e.text for e in c["similar-absent"]} == {"the dog", "the giraffe", "the keyboard"}
    assert all(not e.targets for e in c["similar-absent"])
    never = [draw_expression(c, np.random.default_rng([3, i])).kind for i in range(2000)]
    assert "similar-absent" not in never
    weighted = [draw_expression(c, np.random.default_rng([3, i]), mix=ExpressionMix(similar_absent_weight=2.0)).kind
                for i in range(2000)]
    empty = [k for k in weighted if k in NO_TARGET_KINDS]
    present = [k for k in NO_TARGET_KINDS if c.get(k)]  # absent and similar-absent here
    share = np.mean([k == "similar-absent" for k in empty])
    assert abs(share - 2.0 / (2.0 + len(present) - 1)) < 0.06
    with pytest.raises(ValueError, match="similar_absent_weight"):
        ExpressionMix(similar_absent_weight=-0.1)
