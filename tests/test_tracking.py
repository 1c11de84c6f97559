"""Referring-object tracker (instancevg.runtime.tracking): identities, existence hysteresis,
ByteTrack's low-score association, optical-flow carrying between grounded frames, resets."""
import numpy as np
import pytest

from instancevg.runtime.result import GroundingResult
from instancevg.runtime.tracking import ReferringTracker, TrackedResult, TrackerSettings

H, W = 120, 160


def _result(text, boxes, scores, low=(), hw=(H, W)):
    """A GroundingResult with box-shaped masks; ``low`` adds (box, score) queries under the threshold."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    masks = np.zeros((len(boxes), *hw), bool)
    for m, (x1, y1, x2, y2) in zip(masks, boxes.astype(int)):
        m[y1:y2, x1:x2] = True
    all_boxes = np.concatenate([boxes, np.asarray([b for b, _ in low], np.float32).reshape(-1, 4)])
    all_scores = np.concatenate([np.asarray(scores, np.float32), np.asarray([s for _, s in low], np.float32)])
    return GroundingResult(text, boxes, np.asarray(scores, np.float32), masks, masks.any(0) if len(boxes) else
                           np.zeros(hw, bool), not len(boxes), hw,
                           extra={"all_boxes": all_boxes, "all_scores": all_scores})


class Script:
    """A grounding function that answers frame i with ``answers[i]`` (one list of results)."""

    def __init__(self, answers):
        self.answers, self.calls = answers, 0

    def __call__(self, frame, texts):
        out = self.answers[self.calls]
        self.calls += 1
        return [out] if isinstance(out, GroundingResult) else out


FRAME = np.full((H, W, 3), 90, np.uint8)


def _box(x, y=40, w=30, h=30):
    return [x, y, x + w, y + h]


def test_settings_are_checked():
    for bad in ({"every": 0}, {"lost_after": 0}, {"confirm": 0}, {"match_iou": 1.5}, {"low_score": -0.1}):
        with pytest.raises(ValueError):
            TrackerSettings(**bad)


def test_per_frame_settings_reproduce_per_frame_grounding():
    answers = [_result("cup", [_box(10 + 3 * i)], [0.9]) if i % 3 else _result("cup", [], []) for i in range(9)]
    tracker = ReferringTracker(Script(answers), "cup", TrackerSettings(confirm=1, lost_after=1, low_score=1.0))
    for i, expected in enumerate(answers):
        (r,) = tracker.update(FRAME)
        assert isinstance(r, TrackedResult) and r.grounded
        assert r.no_target == expected.no_target
        np.testing.assert_allclose(r.boxes, expected.boxes)
        np.testing.assert_array_equal(r.masks, expected.masks)


def test_hysteresis_and_stable_identity():
    # frames 0-9: the object moves right 2 px per frame and is missed on frame 5; gone from frame 10
    answers = [_result("cup", [] if i == 5 else [_box(20 + 2 * i)], [] if i == 5 else [0.9]) for i in range(10)]
    answers += [_result("cup", [], []) for _ in range(6)]
    tracker = ReferringTracker(Script(answers), "cup", TrackerSettings(confirm=2, lost_after=4))
    out = [tracker.update(FRAME)[0] for _ in answers]
    found = [not r.no_target for r in out]
    # confirmed on its second match, kept through the missed frame, dropped on the 4th miss in a row
    assert found == [False] + [True] * 12 + [False] * 3
    ids = {int(r.track_ids[0]) for r in out if not r.no_target}
    assert len(ids) == 1
    coasting = out[5]
    assert coasting.ages.tolist() == [1] and coasting.boxes[0, 0] == pytest.approx(30, abs=2.5)  # predicted motion


def test_an_isolated_false_positive_is_never_reported():
    answers = [_result("dog", [_box(60)] if i == 3 else [], [0.8] if i == 3 else []) for i in range(8)]
    tracker = ReferringTracker(Script(answers), "dog")
    assert all(tracker.update(FRAME)[0].no_target for _ in answers)


def test_two_objects_keep_their_ids_and_a_low_score_query_guides_the_box():
    answers = []
    for i in range(8):
        a, b = _box(10 + 4 * i), _box(120 - 4 * i, y=60)
        if i == 5:  # object b dips under the threshold: only a low-score query remains for it
            answers.append(_result("mugs", [a], [0.9], low=[([b[0] + 3, 60, b[2] + 3, 90], 0.6)]))
        else:
            answers.append(_result("mugs", [a, b], [0.9, 0.8]))
    tracker = ReferringTracker(Script(answers), "mugs", TrackerSettings(lost_after=2, confirm=2, low_score=0.5))
    out = [tracker.update(FRAME)[0] for _ in answers]
    first = set(out[1].track_ids.tolist())
    assert len(first) == 2
    for r in out[1:]:
        assert len(r) == 2 and set(r.track_ids.tolist()) == first
    left = [int(r.track_ids[np.argmin(r.boxes[:, 0])]) for r in out[1:4]]
    assert len(set(left)) == 1
    b5 = out[5].boxes[np.argmax(out[5].boxes[:, 0])]
    np.testing.assert_allclose(b5, [120 - 20 + 3, 60, 150 - 20 + 3, 90])  # the low-score query's box
    assert sorted(out[5].scores.tolist()) == pytest.approx([0.6, 0.9])
    assert out[5].ages.tolist() in ([0, 1], [1, 0])  # the low-score frame still counts as a miss


def test_low_score_queries_alone_do_not_keep_an_object():
    answers = [_result("cup", [_box(40)], [0.9])] * 3
    answers += [_result("cup", [], [], low=[(_box(40), 0.65)])] * 6  # the object left; a weak look-alike stays
    tracker = ReferringTracker(Script(answers), "cup", TrackerSettings(confirm=2, lost_after=3, low_score=0.5))
    found = [not tracker.update(FRAME)[0].no_target for _ in answers]
    assert found == [False, True, True, True, True, False, False, False, False]


def test_every_n_carries_boxes_by_optical_flow():
    rng = np.random.default_rng(0)
    texture = (rng.random((H, W * 2)) * 255).astype(np.uint8)
    texture = np.repeat(texture[:, :, None], 3, axis=2)
    frames = [np.ascontiguousarray(texture[:, 40 - 2 * i: 40 - 2 * i + W]) for i in range(7)]  # scene moves +2 px
    answers = [_result("patch", [_box(50 + 2 * i)], [0.9]) for i in range(7)]
    script = Script(answers[::3])
    tracker = ReferringTracker(script, "patch", TrackerSettings(every=3, confirm=1))
    out = [tracker.update(f)[0] for f in frames]
    assert [r.grounded for r in out] == [True, False, False, True, False, False, True]
    assert script.calls == 3
    for i in (1, 2, 4, 5):  # carried frames follow the scene's motion
        assert out[i].boxes[0, 0] == pytest.approx(50 + 2 * i, abs=1.0)
        assert out[i].masks[0, 50, int(out[i].boxes[0, 0]) + 1]


def test_a_new_resolution_drops_every_track():
    def ground(frame, texts):
        return [_result("cup", [_box(20)], [0.9], hw=frame.shape[:2])]

    tracker = ReferringTracker(ground, "cup", TrackerSettings(confirm=1))
    a, b = (tracker.update(FRAME)[0].track_ids.tolist() for _ in range(2))
    big = tracker.update(np.full((2 * H, 2 * W, 3), 90, np.uint8))[0]
    assert a == b and big.track_ids.tolist() not in (a, []) and big.image_size == (2 * H, 2 * W)
    assert big.masks.shape == (1, 2 * H, 2 * W)


def test_an_object_flickering_around_the_threshold_is_confirmed():
    # kept on even frames, only a low-score query on odd ones: four kept matches confirm it
    answers = [_result("flag", [_box(40)], [0.75]) if i % 2 == 0 else _result("flag", [], [], low=[(_box(40), 0.6)])
               for i in range(10)]
    tracker = ReferringTracker(Script(answers), "flag", TrackerSettings(confirm=4, lost_after=4, low_score=0.5))
    found = [not tracker.update(FRAME)[0].no_target for _ in answers]
    assert found == [False] * 6 + [True] * 4
