"""Instance consistency: box vs. its mask's box, the post-processing rules, the metric, and the
same rule on the PyTorch and runtime sides."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from instancevg.runtime.consistency import apply_consistency_rule, box_mask_iou, check_consistency_rule, mask_boxes
from instancevg.evaluation.consistency import ConsistencyEvaluator
from instancevg.runtime.decision import Decision


def _masks():
    m = np.zeros((3, 10, 12), bool)
    m[0, 2:5, 3:7] = True   # rows 2..4, cols 3..6 -> box (3, 2, 7, 5)
    m[1, 0, 11] = True      # one pixel in the top-right corner -> (11, 0, 12, 1)
    return m                # mask 2 empty


def test_mask_boxes_follow_the_pixel_convention():
    boxes, nonempty = mask_boxes(_masks())
    np.testing.assert_array_equal(boxes, [[3, 2, 7, 5], [11, 0, 12, 1], [0, 0, 0, 0]])
    assert nonempty.tolist() == [True, True, False]


def test_box_mask_iou():
    boxes = np.array([[3, 2, 7, 5], [3, 2, 5, 5], [0, 0, 4, 4]], np.float32)
    iou = box_mask_iou(boxes, _masks())
    assert iou[0] == pytest.approx(1.0)
    assert iou[1] == 0.0                      # disjoint from the corner pixel
    assert iou[2] == 0.0                      # empty mask


def test_mask_box_rule_replaces_only_disagreeing_boxes():
    boxes = np.array([[3, 2, 7, 6], [0, 0, 4, 4], [1, 1, 2, 2]], np.float32)
    before = boxes.copy()
    out, masks, kept = apply_consistency_rule(boxes, _masks(), "mask_box")
    assert kept.tolist() == [True, True, True]
    np.testing.assert_array_equal(out[0], [3, 2, 7, 6])      # IoU 12/16 = 0.75 >= 0.5: kept
    np.testing.assert_array_equal(out[1], [11, 0, 12, 1])    # disjoint: the mask's box
    np.testing.assert_array_equal(out[2], [1, 1, 2, 2])      # empty mask: box kept
    np.testing.assert_array_equal(boxes, before)             # inputs untouched
    assert masks is not None and (masks == _masks()).all()


def test_box_clip_rule_clips_masks_to_boxes():
    m = np.zeros((1, 10, 12), bool)
    m[0, 1:9, 1:11] = True                    # a mask much larger than its box
    boxes = np.array([[2.0, 3.0, 6.0, 5.0]], np.float32)
    out, clipped, kept = apply_consistency_rule(boxes, m, "box_clip")
    assert kept.tolist() == [True]
    np.testing.assert_array_equal(out, boxes)
    want = np.zeros_like(m)
    want[0, 3:5, 2:6] = True                  # pixel centres inside [2, 6] x [3, 5]
    np.testing.assert_array_equal(clipped, want)
    assert m[0].sum() == 80                   # input untouched
    assert box_mask_iou(out, clipped)[0] == pytest.approx(1.0)


def test_agree_rule_drops_boxes_whose_clipped_mask_lies_elsewhere():
    m = _masks()
    m[2, 6:10, 0:4] = True                    # mask 2: rows 6..9, cols 0..3
    boxes = np.array([[3, 2, 7, 6],           # clipped mask box (3, 2, 7, 5): IoU 0.75, stays
                      [0, 0, 4, 4],           # its mask is a far corner pixel: clipped to nothing
                      [0, 5, 8, 10]], np.float32)  # mask (0, 6, 4, 10) inside: IoU 16/40 = 0.4
    out, masks, kept = apply_consistency_rule(boxes, m, "agree")
    assert kept.tolist() == [True, False, False]
    np.testing.assert_array_equal(out, boxes[:1])
    assert masks.shape == (1, 10, 12) and (masks[0] == m[0]).all()
    assert box_mask_iou(out, masks).min() >= 0.5
    out, masks, kept = apply_consistency_rule(boxes[1:2], m[1:2], "agree")
    assert kept.tolist() == [False] and out.shape == (0, 4) and masks.shape == (0, 10, 12)


def test_off_and_unknown_rules():
    boxes = np.array([[0, 0, 4, 4]], np.float32)
    out, masks, kept = apply_consistency_rule(boxes, _masks()[:1], "off")
    np.testing.assert_array_equal(out, boxes)
    assert kept.tolist() == [True]
    with pytest.raises(ValueError, match="consistency must be one of"):
        check_consistency_rule("snap")
    from instancevg.config import ModelConfig

    with pytest.raises(ValueError, match="ModelConfig.consistency"):
        ModelConfig(consistency="snap")


def test_evaluator_counts_histogram_and_points():
    ev = ConsistencyEvaluator()
    boxes = np.array([[3, 2, 7, 5], [0, 0, 4, 4]], np.float32)
    ev.update(boxes, _masks()[:2], points=np.array([[4.5, 3.5], [2.0, 2.0]]))
    other = ConsistencyEvaluator()
    other.update(np.zeros((0, 4), np.float32), np.zeros((0, 10, 12), bool), points=np.zeros((0, 2)))
    ev.merge(other)
    c = ev.compute()
    assert c["instances"] == 2
    assert c["box/mask-box IoU>=0.5"] == 0.5 and c["mean box/mask-box IoU"] == pytest.approx(0.5)
    assert c["point in mask"] == 0.5
    assert c["IoU histogram"]["[0.0,0.1)"] == 1 and c["IoU histogram"]["[0.9,1.0]"] == 1


@pytest.mark.parametrize("rule", ["off", "mask_box", "box_clip", "agree"])
def test_torch_and_runtime_postprocessing_apply_the_same_rule(tiny_model, rule):
    from instancevg.postprocess import postprocess
    from instancevg.runtime.postprocess import postprocess_one

    torch.manual_seed(0)
    cfg = tiny_model.config
    s = cfg.image_size
    ids = torch.tensor([[101, 1996, 2417, 4418, 102]])
    with torch.no_grad():
        out = tiny_model(torch.randn(1, 3, s, s), ids, torch.ones_like(ids))
    out.scores = torch.linspace(0.99, 0.5, out.scores.shape[1])[None]  # several kept queries
    decision = Decision(0.7, 0.5, 1.0, rule)
    a = postprocess(out, 0, "x", (90, 120), decision, "reference")
    b = postprocess_one(out.scores[0].numpy(), out.pred_boxes[0].numpy(), out.pred_masks[0].numpy(),
                        out.global_mask[0].numpy(), "x", (90, 120), decision)
    assert len(a) == len(b) and (len(a) > 1 or rule == "agree")
    assert a.no_target == b.no_target == (len(a) == 0)
    if a.no_target:
        assert not a.union_mask.any() and not b.union_mask.any()
    np.testing.assert_array_equal(a.extra["kept_queries"], b.extra["kept_queries"])
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
    assert np.mean([(x == y).mean() for x, y in zip(a.masks, b.masks)]) > 0.99
    if rule == "agree":
        assert (box_mask_iou(a.boxes, a.masks) >= 0.5).all()
    if rule in ("box_clip", "agree"):  # no mask pixel centre outside its own box
        for box, mask in zip(a.boxes, a.masks):
            ys, xs = np.nonzero(mask)
            assert ((xs + 0.5 >= box[0]) & (xs + 0.5 <= box[2]) & (ys + 0.5 >= box[1]) & (ys + 0.5 <= box[3])).all()


def test_evaluate_reports_consistency(tiny_model):
    from instancevg.data.dataset import ProceduralGroundingDataset
    from instancevg.evaluation.evaluate import evaluate, format_table

    data = ProceduralGroundingDataset(tiny_model.config, 0, "val", 3, full_masks=True)
    metrics = evaluate(tiny_model, data, batch_size=3, progress=False)
    c = metrics["consistency"]
    assert sum(c["IoU histogram"].values()) == c["instances"]
    if c["instances"]:
        assert "box/mask-box IoU >= 0.5" in format_table(metrics)
