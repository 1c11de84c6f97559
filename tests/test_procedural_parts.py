"""Part-level procedural scenes (MRES): determinism, what each expression refers to, the held-out
(object, colour) pairs, the ``parts:SEED`` data source and the per-granularity mIoU / oIoU."""
import re

import numpy as np
import pytest

from instancevg.data.generators.procedural_parts import (HELD_OUT_PART_COMBOS, PART_KINDS, PART_OBJECTS,
                                              render_part_sample)
from instancevg.data.sources import DataSpec, eval_dataset
from instancevg.evaluation.scorer import GroundingScorer
from instancevg.runtime.result import GroundingResult

N = 150


@pytest.fixture(scope="module")
def samples():
    return {split: [render_part_sample(0, i, split) for i in range(N)] for split in ("train", "val", "test")}


def test_deterministic_and_distinct():
    a, b = render_part_sample(3, 7, "val"), render_part_sample(3, 7, "val")
    assert a.expression == b.expression and np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    c = render_part_sample(3, 8, "val")
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)
    with pytest.raises(ValueError, match="unknown split"):
        render_part_sample(0, 0, "dev")


def test_every_kind_occurs_and_boxes_are_tight(samples):
    kinds = {s.kind for s in samples["train"]}
    assert kinds == set(PART_KINDS)
    for s in samples["train"][:60]:
        assert len(s.boxes) == len(s.masks) == len(s.referents)
        for box, mask in zip(s.boxes, s.masks):
            ys, xs = np.nonzero(mask)
            assert mask.any() and tuple(box) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_parts_of_an_object_are_disjoint_and_make_the_object(samples):
    for s in samples["train"][:40]:
        for o in s.objects:
            first, second = PART_OBJECTS[o.kind]
            assert o.parts[first].any() and o.parts[second].any()
            assert not (o.parts[first] & o.parts[second]).any()
            assert np.array_equal(o.mask(), o.parts[first] | o.parts[second])


_PART = re.compile(r"^the (\w+) of the (\w+) (\w+)$|^the (\w+) (\w+)'s (\w+)$")


def test_part_and_object_expressions_name_their_target(samples):
    seen = 0
    for s in samples["train"]:
        if s.kind == "part":
            m = _PART.match(s.expression)
            part, color, kind = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(6), m.group(4), m.group(5))
            named = [o for o in s.objects if (o.kind, o.color) == (kind, color)]
            assert len(named) == 1 and part in PART_OBJECTS[kind]
            assert np.array_equal(s.masks[0], named[0].parts[part])
            seen += 1
        elif s.kind == "object":
            color, kind = s.expression.split()[1:3]
            named = [o for o in s.objects if (o.kind, o.color) == (kind, color)]
            assert len(named) == 1 and len(s.masks) == 1 and np.array_equal(s.masks[0], named[0].mask())
        elif s.kind == "all_parts":
            part = s.expression.split()[-1]
            owners = [o for o in s.objects if any(p == part or p + "s" == part or (p == "body" and part == "bodies")
                                                  for p in o.parts)]
            assert len(s.masks) == len(owners) >= 1
        elif s.kind == "no_target":
            color, kind = s.expression.split()[-2:]
            assert len(s.masks) == 0 and not any((o.kind, o.color) == (kind, color) for o in s.objects)
    assert seen > 20


def test_held_out_pairs_only_in_test(samples):
    for split in ("train", "val"):
        for s in samples[split]:
            assert not any(o.held_out for o in s.objects)
            assert not any(f"{c} {k}" in s.expression for k, c in HELD_OUT_PART_COMBOS)
    tests = samples["test"]
    assert all(any(o.held_out for o in s.objects) for s in tests)
    targeted = [s for s in tests if s.kind in ("part", "object")]
    held = sum(any(s.objects[i].held_out for i in s.referents) for s in targeted)
    assert held >= 0.5 * len(targeted)


def test_parts_data_source(tiny_config):
    spec = DataSpec.parse("parts:0")
    assert spec.kind == "parts" and spec.annotation_files() == []
    for bad in ("parts:x", "parts:0:extra"):
        with pytest.raises(ValueError, match="parts takes one non-negative integer seed"):
            DataSpec.parse(bad)
    data = eval_dataset(spec, tiny_config, "val", limit=6)
    assert len(data) == 6
    grans = {data[i]["target"].get("granularity") for i in range(6)}
    assert grans <= {"part", "object", None} and grans & {"part", "object"}
    with pytest.raises(ValueError, match="unknown split"):
        eval_dataset(spec, tiny_config, "testA")


def _result(mask: np.ndarray) -> GroundingResult:
    empty = not mask.any()
    boxes = np.zeros((0, 4), np.float32) if empty else np.array([[0, 0, 2, 2]], np.float32)
    return GroundingResult(text="x", boxes=boxes, scores=np.ones(len(boxes), np.float32),
                           masks=mask[None] if not empty else np.zeros((0, *mask.shape), bool), union_mask=mask,
                           no_target=empty, image_size=mask.shape, extra={"all_boxes": boxes, "all_scores": np.ones(len(boxes), np.float32)})


def test_per_granularity_miou_and_oiou_by_hand():
    scorer = GroundingScorer()
    gt = np.zeros((4, 4), bool)
    gt[:2, :2] = True                 # 4 pixels
    half = np.zeros((4, 4), bool)
    half[:2, :1] = True               # 2 of them: IoU 0.5
    scorer.update(_result(gt), [[0, 0, 2, 2]], gt, granularity="part")        # IoU 1, I 4, U 4
    scorer.update(_result(half), [[0, 0, 2, 2]], gt, granularity="part")      # IoU 0.5, I 2, U 4
    scorer.update(_result(np.zeros((4, 4), bool)), [[0, 0, 2, 2]], gt, granularity="object")  # IoU 0
    scorer.update(_result(np.zeros((4, 4), bool)), [], np.zeros((4, 4), bool), granularity=None)
    per = scorer.compute()["RES per granularity"]
    assert set(per) == {"part", "object"}
    assert per["part"]["mIoU"] == pytest.approx(0.75) and per["part"]["oIoU"] == pytest.approx(6 / 8)
    assert per["object"]["mIoU"] == 0.0 and per["part"]["n_samples"] == 2
