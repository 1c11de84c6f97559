"""Duplicate suppression (instancevg.runtime.nms) and its use in both post-processings (PyTorch package
and the torch-free runtime). Expected IoUs are worked out by hand in the comments."""

import numpy as np
import pytest
import torch

from instancevg.config import ModelConfig
from instancevg.evaluation.grec import box_iou_xyxy
from instancevg.runtime.nms import check_nms_iou, suppress_duplicates
from instancevg.runtime.decision import Decision
from instancevg.postprocess import postprocess
from instancevg.runtime.postprocess import postprocess_one
from fake_outputs import make_outputs


def test_box_iou_by_hand():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [3, 3, 3, 3]], np.float32)
    # identical -> 1; half-shifted: inter 50, union 150 -> 1/3; disjoint -> 0; empty box -> 0
    np.testing.assert_allclose(box_iou_xyxy(a, b), [[1.0, 1 / 3, 0.0, 0.0]], atol=1e-12)
    # two empty boxes: union 0 -> 0, not NaN
    assert box_iou_xyxy(b[3:], b[3:])[0, 0] == 0.0


BOXES = np.array([
    [0, 0, 10, 10],     # 0
    [0, 0, 10, 9],      # 1: IoU with 0 = 90 / 100 = 0.9
    [0, 0, 10, 6],      # 2: IoU with 0 = 0.6, with 1 = 60 / 90 = 0.667
    [50, 50, 60, 60],   # 3: disjoint from all
], np.float32)


def test_drops_box_overlapping_a_better_one_and_keeps_order():
    # order by score: 1, 0, 3, 2.  0 overlaps 1 at 0.9 > 0.7 -> dropped; 2 overlaps 1 at 0.667 <= 0.7.
    np.testing.assert_array_equal(suppress_duplicates(BOXES, np.array([1, 0, 3, 2]), 0.7), [1, 3, 2])
    # at 0.5, query 2 (0.667 with 1) also goes
    np.testing.assert_array_equal(suppress_duplicates(BOXES, np.array([1, 0, 3, 2]), 0.5), [1, 3])


def test_suppression_is_greedy_against_accepted_boxes_only():
    # 0 is accepted; 1 is dropped by 0 (0.9); 2 overlaps 1 at 0.667 > 0.65 but 1 was dropped, and
    # overlaps 0 at 0.6 <= 0.65 -> 2 stays.
    np.testing.assert_array_equal(suppress_duplicates(BOXES, np.array([0, 1, 2]), 0.65), [0, 2])


def test_threshold_one_keeps_everything_and_small_inputs_pass_through():
    np.testing.assert_array_equal(suppress_duplicates(BOXES, np.array([0, 1, 2, 3]), 1.0), [0, 1, 2, 3])
    assert suppress_duplicates(BOXES, np.array([], np.int64), 0.7).shape == (0,)
    np.testing.assert_array_equal(suppress_duplicates(BOXES, np.array([2]), 0.7), [2])


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan"), "0.7", None, True])
def test_bad_threshold_raises(bad):
    with pytest.raises(ValueError, match="nms_iou|iou_threshold"):
        check_nms_iou(bad)
    with pytest.raises(ValueError):
        suppress_duplicates(BOXES, np.array([0]), bad)


def test_numpy_scalars_are_accepted():
    assert check_nms_iou(np.float32(0.5)) == 0.5 and check_nms_iou(np.float64(1.0)) == 1.0


def test_model_config_validates_nms_iou():
    assert ModelConfig().nms_iou == 0.7
    with pytest.raises(ValueError, match="ModelConfig.nms_iou"):
        ModelConfig(nms_iou=0.0)
    # a config saved before the field existed loads with the default
    data = ModelConfig().to_dict()
    data.pop("nms_iou")
    assert ModelConfig.from_dict(data).nms_iou == 0.7


def _duplicate_outputs():
    """Nq = 3, 4x4 masks: queries 0 and 1 near-identical boxes (IoU 0.9), query 2 elsewhere.

    cxcywh: q0 [0.25, 0.25, 0.5, 0.5] -> xyxy [0, 0, 0.5, 0.5]; q1 [0.25, 0.225, 0.5, 0.45] ->
    [0, 0, 0.5, 0.45]: IoU 0.45 / 0.5 = 0.9. q2 [0.75, 0.75, 0.5, 0.5] -> [0.5, 0.5, 1, 1].
    q0 mask: everywhere (so the union shows whether q0 was dropped); q1 mask: top-left quadrant;
    q2 mask: bottom-right quadrant.
    """
    masks = torch.full((1, 3, 4, 4), -10.0)
    masks[0, 0] = 10.0
    masks[0, 1, :2, :2] = 10.0
    masks[0, 2, 2:, 2:] = 10.0
    return make_outputs(
        scores=torch.tensor([[0.8, 0.9, 0.75]]),
        pred_boxes=torch.tensor([[[0.25, 0.25, 0.5, 0.5], [0.25, 0.225, 0.5, 0.45], [0.75, 0.75, 0.5, 0.5]]]),
        pred_masks=masks,
        mask_embed=torch.eye(3)[None],
        pixel_embed=masks,
        global_mask=torch.full((1, 1, 4, 4), -10.0),
    )


def _both(out, nms_iou):
    decision = Decision(nms_iou=nms_iou, consistency="off")  # NMS alone, masks as predicted
    torch_res = postprocess(out, 0, "x", (8, 8), decision, kernels="reference")
    np_res = postprocess_one(out.scores[0].numpy(), out.pred_boxes[0].numpy(), out.pred_masks[0].numpy(),
                             out.global_mask[0].numpy(), "x", (8, 8), decision)
    return torch_res, np_res


def test_both_postprocessings_drop_the_duplicate_and_its_mask():
    for res in _both(_duplicate_outputs(), 0.7):
        # q1 (0.9) kept, q0 (0.8) dropped as its duplicate, q2 (0.75) kept
        np.testing.assert_allclose(res.scores, [0.9, 0.75], atol=1e-6)
        np.testing.assert_allclose(res.boxes, [[0, 0, 4, 3.6], [4, 4, 8, 8]], atol=1e-5)
        assert res.masks.shape == (2, 8, 8) and not res.no_target
        # union = q1's top-left + q2's bottom-right quadrant (4 -> 8 bilinear: the step at src 1.5
        # lands between output rows/cols 3 and 4); q0's all-positive mask is gone with it
        quadrants = np.zeros((8, 8), bool)
        quadrants[:4, :4] = quadrants[4:, 4:] = True
        np.testing.assert_array_equal(res.union_mask, quadrants)
        # every query's raw score stays available
        np.testing.assert_allclose(res.extra["all_scores"], [0.8, 0.9, 0.75], atol=1e-6)


def test_both_postprocessings_keep_all_with_nms_off():
    for res in _both(_duplicate_outputs(), 1.0):
        np.testing.assert_allclose(res.scores, [0.9, 0.8, 0.75], atol=1e-6)
        assert res.masks.shape == (3, 8, 8) and res.union_mask.all()


def test_suppression_never_turns_a_target_into_no_target():
    out = _duplicate_outputs()
    out.scores = torch.tensor([[0.8, 0.9, 0.1]])
    for res in _both(out, 0.05):
        assert not res.no_target and len(res) == 1


def test_api_and_evaluate_pass_the_configured_nms_iou(tmp_path, monkeypatch):
    """``InstanceVG.ground`` and ``evaluate`` must post-process with the model's own ``nms_iou``."""
    import instancevg.api as api_module
    import instancevg.evaluation.evaluate as evaluate_module
    from instancevg.checkpoint import save_model
    from instancevg.config import get_preset
    from instancevg.data.dataset import JsonGroundingDataset
    from instancevg.data.make_data import make_data
    from instancevg.modeling.model import InstanceVGModel

    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.safetensors"
    save_model(InstanceVGModel(get_preset("edge-tiny", nms_iou=0.42)), ckpt)
    seen = []

    def spy(*args, **kwargs):
        seen.append((args[4] if len(args) > 4 else kwargs["decision"]).nms_iou)
        return postprocess(*args, **kwargs)

    monkeypatch.setattr(api_module, "postprocess", spy)
    monkeypatch.setattr(evaluate_module, "postprocess", spy)
    model = api_module.InstanceVG.from_pretrained(ckpt, device="cpu")
    model.ground(np.zeros((40, 60, 3), np.uint8), "the red circle")
    make_data(tmp_path / "data", seed=3, n_train=0, n_val=0, n_test=2, progress=False)
    data = JsonGroundingDataset(model.config, tmp_path / "data" / "dataset.json", "test", full_masks=True)
    evaluate_module.evaluate(model.model, data, progress=False)
    assert seen == [0.42] * 3
