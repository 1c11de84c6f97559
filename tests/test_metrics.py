"""Hand-worked tests for instancevg.evaluation (GREC, GRES, REC, RES).

Every expected number below is worked out by hand in the comments, not taken from the
code's output.
"""

import math

import numpy as np
import pytest

from instancevg.evaluation.grec import (
    GRECEvaluator,
    box_iou_xyxy,
    generalized_box_iou_xyxy,
    greedy_giou_match,
    sort_predictions_by_score,
)
from instancevg.evaluation.gres import GRESEvaluator, gres_pred_no_target, mask_intersection_union
from instancevg.evaluation.rec_res import RECEvaluator, RESEvaluator

B = np.array  # shorthand


# Pred [0,0,50,50] vs GT [9,9,59,59]: intersection 41*41 = 1681, union 2500+2500-1681 = 3319,
# IoU = 1681/3319 = 0.5065 (>= 0.5); enclosing box 59*59 = 3481, GIoU = IoU - (3481-3319)/3481
# = 0.5065 - 0.0465 = 0.4599 (< 0.5).  GIoU <= IoU always, so "IoU >= 0.5 but GIoU < 0.5" is
# the only way the two can disagree at the same threshold.
IOU_OK_GIOU_BAD_PRED = [0.0, 0.0, 50.0, 50.0]
IOU_OK_GIOU_BAD_GT = [9.0, 9.0, 59.0, 59.0]


# --------------------------------------------------------------------------- box functions


def test_box_iou_and_giou_hand_values():
    iou = box_iou_xyxy([IOU_OK_GIOU_BAD_PRED], [IOU_OK_GIOU_BAD_GT])
    giou = generalized_box_iou_xyxy([IOU_OK_GIOU_BAD_PRED], [IOU_OK_GIOU_BAD_GT])
    assert iou.shape == (1, 1) and giou.shape == (1, 1)
    assert iou[0, 0] == pytest.approx(1681 / 3319)
    assert giou[0, 0] == pytest.approx(1681 / 3319 - 162 / 3481)
    assert iou[0, 0] >= 0.5 > giou[0, 0]


def test_giou_disjoint_and_pairwise_shape():
    # [0,0,10,10] vs [20,0,30,10]: IoU 0, union 200, hull 30*10 = 300 -> GIoU = -(100/300).
    # [0,0,10,10] vs itself: 1.
    g = generalized_box_iou_xyxy([[0, 0, 10, 10]], [[20, 0, 30, 10], [0, 0, 10, 10]])
    assert g.shape == (1, 2)
    assert g[0, 0] == pytest.approx(-1 / 3)
    assert g[0, 1] == pytest.approx(1.0)
    assert box_iou_xyxy(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_zero_area_pair_is_zero_not_nan():
    g = generalized_box_iou_xyxy([[5, 5, 5, 5]], [[5, 5, 5, 5]])
    i = box_iou_xyxy([[5, 5, 5, 5]], [[5, 5, 5, 5]])
    assert g[0, 0] == 0.0 and i[0, 0] == 0.0


@pytest.mark.parametrize(
    "bad, match",
    [
        ([[0, 0, 1]], r"shape \(N, 4\)"),
        ([0, 0, 1, 1], r"shape \(N, 4\)"),
        ([[0, 0, np.nan, 1]], "NaN"),
        ([[0, 0, np.inf, 1]], "NaN or infinite"),
        ([[5, 0, 1, 1]], "x2 < x1"),
        ([["a", 0, 1, 1]], "numeric"),
    ],
)
def test_box_functions_validate(bad, match):
    with pytest.raises(ValueError, match=match):
        box_iou_xyxy(bad, [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match=match):
        generalized_box_iou_xyxy([[0, 0, 1, 1]], bad)


def test_sort_predictions_by_score_ties_by_box_descending():
    # Python's sorted(zip(scores, boxes), reverse=True): equal scores -> larger box first.
    boxes, scores = sort_predictions_by_score(
        B([[0, 0, 10, 10], [20, 20, 30, 30], [5, 5, 6, 6]], float), B([0.9, 0.9, 0.95])
    )
    np.testing.assert_array_equal(scores, [0.95, 0.9, 0.9])
    np.testing.assert_array_equal(boxes, [[5, 5, 6, 6], [20, 20, 30, 30], [0, 0, 10, 10]])


def test_greedy_giou_match_threshold_is_inclusive():
    assert greedy_giou_match([[0.5]]) == 1
    assert greedy_giou_match([[0.4999]]) == 0
    assert greedy_giou_match(np.zeros((0, 3))) == 0
    # One row cannot match two columns.
    assert greedy_giou_match([[0.9, 0.8]]) == 1
    with pytest.raises(ValueError, match="2-D"):
        greedy_giou_match([0.9])
    with pytest.raises(ValueError, match="NaN"):
        greedy_giou_match([[np.nan]])


# --------------------------------------------------------------------------- GREC


GT_A = [0, 0, 10, 10]
GT_B = [20, 20, 30, 30]


def test_grec_single_exact_match_correct():
    ev = GRECEvaluator()
    assert ev.update(B([GT_A], float), B([0.9]), B([GT_A], float)) is True
    r = ev.compute()
    assert r["precision"] == 1.0 and r["n_samples"] == 1 and r["n_correct"] == 1
    assert math.isnan(r["n_acc"])  # no no-target sample -> nan (documented)
    assert r["t_acc"] == 1.0


def test_grec_partial_match_is_incorrect():
    # 2 GT, 1 correct prediction: TP=1, FP=0, FN=1, F1 = 2/(2+0+1) = 2/3 < 1.
    ev = GRECEvaluator()
    assert ev.update([GT_A], [0.9], [GT_A, GT_B]) is False
    assert ev.compute()["precision"] == 0.0
    assert ev.compute()["t_acc"] == 1.0  # something was kept on a targeted sample


def test_grec_two_preds_two_gts_correct():
    ev = GRECEvaluator()
    assert ev.update([GT_B, GT_A], [0.8, 0.95], [GT_A, GT_B]) is True


def test_grec_duplicate_prediction_is_false_positive():
    # Two kept preds on the same GT: [0,0,10,9] has IoU = GIoU = 90/100 = 0.9 with GT_A, but
    # GT_A is taken by the exact box -> TP=1, FP=1, FN=0, F1 = 2/3 -> incorrect.
    ev = GRECEvaluator()
    assert ev.update([GT_A, [0, 0, 10, 9]], [0.9, 0.8], [GT_A]) is False


def test_grec_low_score_predictions_are_dropped():
    # The far box has score 0.5 < 0.7: not kept, so it is not a FP.
    ev = GRECEvaluator()
    assert ev.update([GT_A, GT_B], [0.9, 0.5], [GT_A]) is True


def test_grec_no_target_samples_and_n_acc():
    ev = GRECEvaluator()
    empty_gt = np.zeros((0, 4))
    assert ev.update([GT_A], [0.6], empty_gt) is True  # nothing kept (0.6 < 0.7)
    assert ev.update([GT_A], [0.8], empty_gt) is False  # something kept
    assert ev.update(np.zeros((0, 4)), np.zeros((0,)), empty_gt) is True  # N = 0
    assert ev.update(None, None, []) is True  # no prediction at all; K = 0 as shape (0,)
    r = ev.compute()
    assert r["n_no_target"] == 4 and r["n_no_target_correct"] == 3
    assert r["n_acc"] == pytest.approx(3 / 4)
    assert r["precision"] == pytest.approx(3 / 4)
    assert math.isnan(r["t_acc"])  # no targeted sample


def test_grec_empty_prediction_on_targeted_sample():
    ev = GRECEvaluator()
    assert ev.update(None, None, [GT_A]) is False  # official code would crash here
    assert ev.update(np.zeros((0, 4)), [], [GT_A]) is False
    r = ev.compute()
    assert r["t_acc"] == 0.0 and r["n_targeted"] == 2 and r["precision"] == 0.0


def test_grec_score_exactly_threshold_is_kept():
    ev = GRECEvaluator()
    # >= 0.7 keeps it: on a no-target sample that makes it wrong ...
    assert ev.update([GT_A], [0.7], np.zeros((0, 4))) is False
    # ... and on a targeted sample it is a match.
    assert ev.update([GT_A], [0.7], [GT_A]) is True
    # Just below is dropped.
    assert ev.update([GT_A], [0.6999999], np.zeros((0, 4))) is True


def test_grec_giou_not_iou_decides():
    # IoU 0.5065 >= 0.5 but GIoU 0.4599 < 0.5 (see IOU_OK_GIOU_BAD_*): GREC says no match.
    ev = GRECEvaluator()
    assert ev.update([IOU_OK_GIOU_BAD_PRED], [0.9], [IOU_OK_GIOU_BAD_GT]) is False
    # The same pair is a hit for REC, which uses plain IoU.
    rec = RECEvaluator()
    assert rec.update([IOU_OK_GIOU_BAD_PRED], [0.9], IOU_OK_GIOU_BAD_GT) >= 0.5


def test_grec_matching_is_highest_giou_first_not_highest_score_first():
    # All boxes span y in [0, 10], so GIoU reduces to 1-D intervals (hull = union when they
    # overlap, penalty 0).  GT g1 = [0,10], g2 = [4,14]; A = [1,12] (score 0.9), B = [0,9] (0.8).
    #   GIoU(A,g1) = 9/12 = 0.75   GIoU(A,g2) = 8/13 = 0.615
    #   GIoU(B,g1) = 9/10 = 0.90   GIoU(B,g2) = 5/14 = 0.357
    # Highest GIoU first: B-g1 (0.9), then A-g2 (0.615) -> TP = 2, correct.
    # (Highest score first would give A-g1, then B-g2 fails -> TP = 1, incorrect.)
    g1, g2 = [0, 0, 10, 10], [4, 0, 14, 10]
    a, b = [1, 0, 12, 10], [0, 0, 9, 10]
    giou = generalized_box_iou_xyxy([a, b], [g1, g2])
    np.testing.assert_allclose(giou, [[9 / 12, 8 / 13], [9 / 10, 5 / 14]])
    ev = GRECEvaluator()
    assert ev.update([a, b], [0.9, 0.8], [g1, g2]) is True


def test_grec_aggregate_precision_nacc_tacc():
    ev = GRECEvaluator()
    results = [
        ev.update([GT_A], [0.9], [GT_A]),  # targeted, correct
        ev.update([GT_A], [0.9], [GT_A, GT_B]),  # targeted, detected, incorrect
        ev.update([GT_A], [0.1], [GT_A]),  # targeted, nothing kept, incorrect
        ev.update([GT_A], [0.1], np.zeros((0, 4))),  # no-target, correct
        ev.update([GT_A], [0.9], np.zeros((0, 4))),  # no-target, incorrect
    ]
    assert results == [True, False, False, True, False]
    r = ev.compute()
    assert r["precision"] == pytest.approx(2 / 5)
    assert r["n_acc"] == pytest.approx(1 / 2)
    assert r["t_acc"] == pytest.approx(2 / 3)
    assert (r["n_samples"], r["n_no_target"], r["n_targeted"]) == (5, 2, 3)


def test_grec_merge_and_empty_compute():
    ev = GRECEvaluator()
    r = ev.compute()
    assert math.isnan(r["precision"]) and math.isnan(r["n_acc"]) and r["n_samples"] == 0
    a, b = GRECEvaluator(), GRECEvaluator()
    a.update([GT_A], [0.9], [GT_A])
    b.update([GT_A], [0.9], np.zeros((0, 4)))
    a.merge(b)
    assert a.compute()["precision"] == pytest.approx(1 / 2)
    assert a.compute()["n_acc"] == 0.0


@pytest.mark.parametrize(
    "pred_boxes, pred_scores, gt_boxes, match",
    [
        ([[0, 0, 1]], [0.9], [GT_A], r"pred_boxes must have shape \(N, 4\)"),
        ([GT_A], [0.9], GT_A, r"gt_boxes must have shape \(N, 4\)"),
        ([GT_A], [0.9, 0.8], [GT_A], r"pred_scores must have shape \(1,\)"),
        ([GT_A], [np.nan], [GT_A], "pred_scores contains NaN"),
        ([[0, 0, np.nan, 1]], [0.9], [GT_A], "pred_boxes contains NaN"),
        ([GT_A], [0.9], [[0, np.nan, 1, 1]], "gt_boxes contains NaN"),
        ([GT_A], None, [GT_A], "pred_scores is None"),
        (None, [0.9], [GT_A], "pred_boxes is None"),
        ([[5, 0, 1, 1]], [0.9], [GT_A], "x2 < x1"),  # kept degenerate box (official asserts)
        ([GT_A], [0.9], [[0, 5, 1, 1]], "x2 < x1 or y2 < y1"),
    ],
)
def test_grec_validation_errors(pred_boxes, pred_scores, gt_boxes, match):
    ev = GRECEvaluator()
    with pytest.raises(ValueError, match=match):
        ev.update(pred_boxes, pred_scores, gt_boxes)
    assert ev.compute()["n_samples"] == 0  # nothing counted


def test_grec_degenerate_dropped_prediction_is_ignored():
    ev = GRECEvaluator()
    assert ev.update([GT_A, [5, 0, 1, 1]], [0.9, 0.1], [GT_A]) is True


def test_grec_threshold_validation():
    with pytest.raises(ValueError, match="score_threshold"):
        GRECEvaluator(score_threshold=float("nan"))


# --------------------------------------------------------------------------- GRES


def _mask(h, w, pixels):
    m = np.zeros((h, w), dtype=bool)
    for y, x in pixels:
        m[y, x] = True
    return m


def test_gres_hand_worked_cIoU_gIoU_with_no_target_quirks():
    ev = GRESEvaluator()
    # A: targeted GT, predicted targeted.  GT = top-left 2x2 (4 px), pred = row 0 (4 px).
    #    I = 2, U = 4 + 4 - 2 = 6, IoU = 1/3.
    gt_a = _mask(4, 4, [(0, 0), (0, 1), (1, 0), (1, 1)])
    pred_a = _mask(4, 4, [(0, 0), (0, 1), (0, 2), (0, 3)])
    assert ev.update(pred_a, False, gt_a, False) == pytest.approx(1 / 3)
    # B: targeted GT, predicted no-target, pred mask still non-empty.  GT = column 0 (4 px),
    #    pred = (0,0),(0,1),(0,2) (3 px); true I = 1, U = 4 + 3 - 1 = 6.  Quirk: I forced to
    #    0, U stays 6 (the predicted mask still counts), IoU 0.
    gt_b = _mask(4, 4, [(0, 0), (1, 0), (2, 0), (3, 0)])
    pred_b = _mask(4, 4, [(0, 0), (0, 1), (0, 2)])
    assert ev.update(pred_b, True, gt_b, False) == 0.0
    # C: no-target GT, predicted no-target, with a leftover 2-px pred mask: IoU 1, adds
    #    nothing to I or U.
    pred_c = _mask(4, 4, [(3, 3), (3, 2)])
    assert ev.update(pred_c, True, np.zeros((4, 4), bool), True) == 1.0
    # D: no-target GT, predicted targeted, 5-px pred mask: IoU 0, U += 5.
    pred_d = _mask(4, 4, [(2, 0), (2, 1), (2, 2), (2, 3), (3, 3)])
    assert ev.update(pred_d, False, np.zeros((4, 4), bool), True) == 0.0

    r = ev.compute()
    assert (r["I"], r["U"]) == (2, 6 + 6 + 5)
    assert r["cIoU"] == pytest.approx(2 / 17)
    assert r["gIoU"] == pytest.approx((1 / 3 + 0 + 1 + 0) / 4)
    assert r["N-acc"] == pytest.approx(1 / 2)  # C right, D wrong
    assert r["T-acc"] == pytest.approx(1 / 2)  # A right, B wrong
    assert r["Pr@0.7"] == 0.0 and r["Pr@0.8"] == 0.0 and r["Pr@0.9"] == 0.0
    assert (r["n_samples"], r["n_no_target"], r["n_targeted"]) == (4, 2, 2)
    assert (r["nt_TP"], r["nt_FN"], r["nt_FP"], r["nt_TN"]) == (1, 1, 1, 1)


def test_gres_pr_threshold_is_inclusive():
    ev = GRESEvaluator()
    gt = np.zeros((1, 10), bool)
    gt[0, :8] = True  # 8 px
    pred07 = np.zeros((1, 10), bool)
    pred07[0, 1:] = True  # 9 px; I = 7 (cols 1..7), U = 10 -> IoU 0.7 exactly
    pred08 = np.zeros((1, 10), bool)
    pred08[0, :] = True  # I = 8, U = 10 -> IoU 0.8 exactly
    assert ev.update(pred07, False, gt, False) == pytest.approx(0.7)
    assert ev.update(pred08, False, gt, False) == pytest.approx(0.8)
    r = ev.compute()
    # IoU >= t: 0.7 counts for Pr@0.7; 0.8 counts for Pr@0.7 and Pr@0.8.
    assert r["Pr@0.7"] == 1.0
    assert r["Pr@0.8"] == 0.5
    assert r["Pr@0.9"] == 0.0
    assert r["cIoU"] == pytest.approx(15 / 20)
    assert math.isnan(r["N-acc"])  # no no-target sample (documented nan)


def test_gres_pred_no_target_uses_strict_greater():
    assert gres_pred_no_target([0.7]) is True  # exactly 0.7 is NOT > 0.7 -> no-target
    assert gres_pred_no_target([0.1, 0.70001]) is False
    assert gres_pred_no_target([]) is True
    assert gres_pred_no_target(None) is True
    with pytest.raises(ValueError, match="NaN"):
        gres_pred_no_target([np.nan])


def test_score_boundary_grec_keeps_gres_does_not():
    # Same prediction (one box/mask with score exactly 0.7) on a no-target sample.
    grec = GRECEvaluator()
    assert grec.update([GT_A], [0.7], np.zeros((0, 4))) is False  # >= keeps it
    gres = GRESEvaluator()
    pred_mask = _mask(3, 3, [(0, 0)])
    iou = gres.update(pred_mask, gres_pred_no_target([0.7]), np.zeros((3, 3), bool), True)
    assert iou == 1.0 and gres.compute()["N-acc"] == 1.0


def test_gres_targeted_empty_union_is_zero():
    ev = GRESEvaluator()
    z = np.zeros((2, 2), np.uint8)
    assert ev.update(z, False, z, False) == 0.0
    assert math.isnan(ev.compute()["cIoU"])  # sum U == 0


def test_gres_accepts_uint8_255_and_float01_masks():
    ev = GRESEvaluator()
    pred = np.array([[255, 0], [0, 0]], np.uint8)
    gt = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert ev.update(pred, False, gt, False) == pytest.approx(1 / 2)
    assert mask_intersection_union(pred, gt) == (1, 2)


def test_gres_empty_compute_and_merge():
    r = GRESEvaluator().compute()
    assert all(math.isnan(r[k]) for k in ("cIoU", "gIoU", "N-acc", "T-acc", "Pr@0.7"))
    a, b = GRESEvaluator(), GRESEvaluator()
    m = _mask(2, 2, [(0, 0)])
    a.update(m, False, m, False)  # IoU 1, I=U=1
    b.update(m, False, np.zeros((2, 2), bool), True)  # IoU 0, U += 1
    a.merge(b)
    r = a.compute()
    assert r["cIoU"] == pytest.approx(1 / 2) and r["gIoU"] == pytest.approx(1 / 2)
    assert r["N-acc"] == 0.0 and r["T-acc"] == 1.0 and r["Pr@0.9"] == 1.0


@pytest.mark.parametrize(
    "pred, gt, pred_nt, gt_nt, match",
    [
        (np.zeros((2, 2)), np.zeros((2, 3)), False, False, "does not match"),
        (np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), False, False, r"2-D \(H, W\)"),
        (np.array([[np.nan, 0.0]]), np.zeros((1, 2)), False, False, "NaN"),
        (np.array([[0.5, 0.0]]), np.zeros((1, 2)), False, False, "values other than 0 and 1"),
        (np.array([["a", "b"]]), np.array([["a", "b"]]), False, False, "dtype"),
        (np.zeros((2, 2)), np.zeros((2, 2)), 2, False, "pred_no_target must be a single bool"),
        (np.zeros((2, 2)), np.zeros((2, 2)), False, [True, False], "gt_no_target must be a single bool"),
    ],
)
def test_gres_validation_errors(pred, gt, pred_nt, gt_nt, match):
    ev = GRESEvaluator()
    with pytest.raises(ValueError, match=match):
        ev.update(pred, pred_nt, gt, gt_nt)
    assert ev.compute()["n_samples"] == 0


# --------------------------------------------------------------------------- REC / RES


def test_rec_top1_by_score_and_inclusive_threshold():
    ev = RECEvaluator()
    # 1) Top-1 is the 0.9 box far away (IoU 0) even though the 0.6 box is exact -> miss.
    assert ev.update([GT_A, [50, 50, 60, 60]], [0.6, 0.9], GT_A) == 0.0
    # 2) [0,0,10,10] vs [0,0,10,20]: I = 100, U = 100 + 200 - 100 = 200, IoU = 0.5 -> hit.
    assert ev.update([GT_A], [0.3], [[0, 0, 10, 20]]) == pytest.approx(0.5)
    # 3) IoU 1681/3319 = 0.5065 -> hit (plain IoU, not GIoU).
    assert ev.update([IOU_OK_GIOU_BAD_PRED], [0.9], IOU_OK_GIOU_BAD_GT) == pytest.approx(1681 / 3319)
    # 4) No prediction -> miss.
    assert ev.update(None, None, GT_A) == 0.0
    # 5) Exact -> hit at every threshold.
    assert ev.update([GT_A], [0.9], GT_A) == 1.0
    r = ev.compute()
    assert r["Acc@0.5"] == pytest.approx(3 / 5)
    assert r["Acc@0.9"] == pytest.approx(1 / 5)
    assert r["mean_iou"] == pytest.approx((0 + 0.5 + 1681 / 3319 + 0 + 1) / 5)
    assert r["n_samples"] == 5


def test_rec_equal_scores_tie_break_follows_official_sort():
    # Equal scores: sorted(..., reverse=True) puts the lexicographically larger box first,
    # so [20,20,30,30] is top-1 and the exact box is ignored.
    ev = RECEvaluator()
    assert ev.update([GT_A, GT_B], [0.9, 0.9], GT_A) == 0.0


@pytest.mark.parametrize(
    "pred_boxes, pred_scores, gt_box, match",
    [
        ([GT_A], [0.9], [GT_A, GT_B], "gt_box must be one box"),
        ([GT_A], [0.9], [0, 0, 1], "gt_box must be one box"),
        ([GT_A], [0.9], [0, 0, np.nan, 1], "NaN"),
        ([[0, 0, 1]], [0.9], GT_A, r"shape \(N, 4\)"),
        ([GT_A], [0.9, 0.1], GT_A, r"pred_scores must have shape \(1,\)"),
        ([GT_A], None, GT_A, "pred_scores is None"),
        ([[9, 0, 1, 1]], [0.9], GT_A, "top-1"),
    ],
)
def test_rec_validation_errors(pred_boxes, pred_scores, gt_box, match):
    ev = RECEvaluator()
    with pytest.raises(ValueError, match=match):
        ev.update(pred_boxes, pred_scores, gt_box)
    assert ev.compute()["n_samples"] == 0


def test_res_mIoU_oIoU_hand_worked():
    ev = RESEvaluator()
    # 1) pred 2 px, gt 1 px inside: I = 1, U = 2, IoU 0.5.
    assert ev.update([[1, 1], [0, 0]], [[1, 0], [0, 0]]) == pytest.approx(0.5)
    # 2) both empty: U = 0 -> IoU 0 (official `i / u if u >= 1 else 0`), adds nothing.
    assert ev.update(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 0.0
    # 3) pred 4 px, gt 3 px: I = 3, U = 4, IoU 0.75.
    assert ev.update(np.ones((2, 2), np.uint8), [[1, 1], [1, 0]]) == pytest.approx(0.75)
    r = ev.compute()
    assert r["mIoU"] == pytest.approx((0.5 + 0 + 0.75) / 3)
    assert r["oIoU"] == pytest.approx((1 + 0 + 3) / (2 + 0 + 4))
    assert (r["I"], r["U"], r["n_samples"]) == (4, 6, 3)
    assert r["Pr@0.5"] == pytest.approx(2 / 3) and r["Pr@0.8"] == 0.0


def test_res_validation_and_empty():
    ev = RESEvaluator()
    with pytest.raises(ValueError, match="does not match"):
        ev.update(np.zeros((2, 2)), np.zeros((3, 2)))
    r = ev.compute()
    assert math.isnan(r["mIoU"]) and math.isnan(r["oIoU"]) and r["n_samples"] == 0

