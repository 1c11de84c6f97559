"""Post-processing (outputs -> GroundingResult) and the pre-processing side
(instancevg.data.transforms: preprocess_image, prepare_targets).

All outputs dicts are built by hand; expected boxes and masks are worked out in the comments.
"""

import dataclasses

import numpy as np
import pytest
import torch

from instancevg.data.transforms import preprocess_image, prepare_targets
from fake_outputs import make_outputs
from instancevg.postprocess import postprocess
from instancevg.runtime.decision import Decision

AS_PREDICTED = Decision(consistency="off")  # these tests check query selection, not the box/mask rule

H, W = 8, 12  # non-square original image
HI, LO = 10.0, -10.0  # mask logits


def _fake_outputs(scores, global_mask=None):
    """B = 1, Nq = 3, masks 4x4 (logits).

    query 0: left half positive (src cols 0-1).   box cxcywh [0.5, 0.5, 0.5, 0.25]
    query 1: everywhere positive.                  box [0.5, 0.5, 1.0, 1.0]
    query 2: top half positive (src rows 0-1).     box [0.1, 0.9, 0.4, 0.4] (crosses the border)
    """
    masks = torch.full((1, 3, 4, 4), LO)
    masks[0, 0, :, :2] = HI
    masks[0, 1] = HI
    masks[0, 2, :2, :] = HI
    if global_mask is None:
        global_mask = torch.full((1, 1, 4, 4), LO)
    return make_outputs(
        scores=torch.tensor([scores], dtype=torch.float32),
        pred_boxes=torch.tensor([[[0.5, 0.5, 0.5, 0.25], [0.5, 0.5, 1.0, 1.0], [0.1, 0.9, 0.4, 0.4]]]),
        pred_masks=masks,
        # mask_embed . pixel_embed = pred_masks: one-hot embeddings over d = Nq channels.
        mask_embed=torch.eye(3)[None],
        pixel_embed=masks,
        global_mask=global_mask,
    )


# Bilinear upsampling (align_corners=False) of a half-plane 4 -> 12 columns: output column j
# samples src x = (j + 0.5) / 3 - 0.5; the +10/-10 step between src cols 1 and 2 crosses 0 at
# src x = 1.5, i.e. j = 5.5 -> columns 0..5 positive (exactly the left half). Rows, 4 -> 8:
# src y = (i + 0.5) / 2 - 0.5 crosses 1.5 at i = 3.5 -> rows 0..3 (the top half).
LEFT = np.zeros((H, W), bool)
LEFT[:, :6] = True
TOP = np.zeros((H, W), bool)
TOP[:4, :] = True
RIGHT = ~LEFT


def test_keeps_scores_strictly_above_threshold_sorted():
    res = postprocess(_fake_outputs([0.9, 0.7, 0.71]), 0, "the things", (H, W), AS_PREDICTED)
    assert res.text == "the things"
    assert res.image_size == (H, W)
    assert not res.no_target
    assert len(res) == 2
    # 0.7 is not > 0.7: only queries 0 (0.9) and 2 (0.71), in descending order.
    np.testing.assert_allclose(res.scores, [0.9, 0.71], rtol=0, atol=1e-6)
    assert res.scores.dtype == np.float32 and res.boxes.dtype == np.float32
    np.testing.assert_allclose(res.extra["all_scores"], [0.9, 0.7, 0.71], atol=1e-6)
    assert res.extra["all_boxes"].shape == (3, 4)


def test_boxes_to_xyxy_pixels_clipped():
    res = postprocess(_fake_outputs([0.9, 0.7, 0.71]), 0, "x", (H, W), AS_PREDICTED)
    # query 0: [0.5,0.5,0.5,0.25] -> xyxy [0.25, 0.375, 0.75, 0.625] * (W,H,W,H) = [3, 3, 9, 5]
    # query 2: [0.1,0.9,0.4,0.4] -> [-0.1, 0.7, 0.3, 1.1] * (12,8,12,8) = [-1.2, 5.6, 3.6, 8.8]
    #          clipped to the image -> [0, 5.6, 3.6, 8]
    np.testing.assert_allclose(res.boxes, [[3, 3, 9, 5], [0, 5.6, 3.6, 8]], atol=1e-5)


def test_masks_upsampled_and_union_with_global_excludes_dropped_query(kernel_backend):
    res = postprocess(_fake_outputs([0.9, 0.7, 0.71]), 0, "x", (H, W), AS_PREDICTED, kernels=kernel_backend)
    assert res.masks.shape == (2, H, W) and res.masks.dtype == bool
    np.testing.assert_array_equal(res.masks[0], LEFT)
    np.testing.assert_array_equal(res.masks[1], TOP)
    assert res.union_mask.shape == (H, W) and res.union_mask.dtype == bool
    # Global mask all negative; query 1 (everywhere positive) is not kept -> bottom-right empty.
    np.testing.assert_array_equal(res.union_mask, LEFT | TOP)
    d = res.to_dict()
    assert d["no_target"] is False and d["image_size"] == [H, W]
    assert [i["mask_area"] for i in d["instances"]] == [48, 48]  # 8 rows x 6 cols, 4 rows x 12 cols
    assert [i["box_xyxy"] for i in d["instances"]] == [[3.0, 3.0, 9.0, 5.0], [0.0, 5.6, 3.6, 8.0]]
    assert d["union_mask_area"] == H * W - 4 * 6  # all but the bottom-right 4 x 6 block


def test_union_includes_global_mask(kernel_backend):
    glob = torch.full((1, 1, 4, 4), LO)
    glob[0, 0, :, 2:] = HI  # right half
    res = postprocess(_fake_outputs([0.9, 0.7, 0.71], glob), 0, "x", (H, W), AS_PREDICTED, kernels=kernel_backend)
    np.testing.assert_array_equal(res.union_mask, LEFT | TOP | RIGHT)  # everything
    glob_only = postprocess(_fake_outputs([0.9, 0.1, 0.1], glob), 0, "x", (H, W), AS_PREDICTED, kernels=kernel_backend)
    np.testing.assert_array_equal(glob_only.union_mask, LEFT | RIGHT)


def test_no_target_when_nothing_above_threshold(kernel_backend):
    glob = torch.full((1, 1, 4, 4), HI)  # a confident global mask must still be dropped
    res = postprocess(_fake_outputs([0.7, 0.3, 0.1], glob), 0, "nothing", (H, W), AS_PREDICTED, kernels=kernel_backend)
    assert res.no_target
    assert len(res) == 0
    assert res.boxes.shape == (0, 4) and res.scores.shape == (0,)
    assert res.masks.shape == (0, H, W)
    assert res.union_mask.shape == (H, W) and not res.union_mask.any()
    d = res.to_dict()
    assert d["no_target"] is True and d["instances"] == [] and d["union_mask_area"] == 0


def test_kept_instances_sorted_by_score_not_index():
    res = postprocess(_fake_outputs([0.75, 0.2, 0.95]), 0, "x", (H, W), AS_PREDICTED)
    np.testing.assert_allclose(res.scores, [0.95, 0.75], atol=1e-6)
    np.testing.assert_allclose(res.boxes, [[0, 5.6, 3.6, 8], [3, 3, 9, 5]], atol=1e-5)
    np.testing.assert_array_equal(res.masks[0], TOP)
    np.testing.assert_array_equal(res.masks[1], LEFT)


def test_threshold_boundary_exact_value():
    # 0.5 and 0.25 are exact in float32: a score equal to the threshold is dropped.
    res = postprocess(_fake_outputs([0.5, 0.25, 0.5000001]), 0, "x", (H, W), Decision(score=0.5, consistency="off"))
    assert len(res) == 1
    np.testing.assert_array_equal(res.masks[0], TOP)  # query 2


def test_mask_threshold_is_on_probability(kernel_backend):
    # Logit 1.0 -> p = 0.73: kept at mask_threshold 0.5, dropped at 0.8 (logit 1.386).
    out = _fake_outputs([0.9, 0.1, 0.1])
    out.pred_masks[0, 0] = 1.0
    assert postprocess(out, 0, "x", (H, W), decision=Decision(mask=0.5, consistency="off"), kernels=kernel_backend).masks[0].all()
    assert not postprocess(out, 0, "x", (H, W), decision=Decision(mask=0.8, consistency="off"), kernels=kernel_backend).masks[0].any()


def test_index_selects_sample():
    a = _fake_outputs([0.1, 0.1, 0.1])
    b = _fake_outputs([0.95, 0.1, 0.1])
    batch = make_outputs(**{f.name: torch.cat([getattr(a, f.name), getattr(b, f.name)])
                            for f in dataclasses.fields(a) if f.name not in ("aux_outputs", "mask_grounding")})
    assert postprocess(batch, 0, "x", (H, W), AS_PREDICTED).no_target
    res = postprocess(batch, 1, "x", (H, W), AS_PREDICTED)
    assert not res.no_target and len(res) == 1
    np.testing.assert_allclose(res.boxes, [[3, 3, 9, 5]], atol=1e-5)


# ---- pre-processing (instancevg.data.transforms) -------------------------------------------


def test_preprocess_constant_image_normalisation():
    img = np.empty((10, 20, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 51, 102, 255  # 0.2, 0.4, 1.0 after /255
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 1.0)
    x = preprocess_image(img, 16, mean, std)
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    # (0.2-0.1)/0.5 = 0.2; (0.4-0.2)/0.25 = 0.8; (1.0-0.3)/1.0 = 0.7; channel-first, RGB order.
    for c, v in enumerate([0.2, 0.8, 0.7]):
        torch.testing.assert_close(x[c], torch.full((16, 16), v), atol=1e-5, rtol=0)


def test_preprocess_keeps_orientation():
    # Top half black, bottom half white; left half of the red channel 0, right half 255.
    img = np.zeros((10, 30, 3), np.uint8)
    img[5:, :, 1] = 255
    img[:, 15:, 0] = 255
    x = preprocess_image(img, 8, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert float(x[1, 0].max()) == pytest.approx(0.0) and float(x[1, -1].min()) == pytest.approx(1.0)
    assert float(x[0, :, 0].max()) == pytest.approx(0.0) and float(x[0, :, -1].min()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((10, 20), np.uint8),
        np.zeros((10, 20, 4), np.uint8),
        np.zeros((10, 20, 3), np.float32),
        np.zeros((0, 20, 3), np.uint8),
        np.zeros((10, 0, 3), np.uint8),
    ],
)
def test_preprocess_bad_input_raises(img):
    with pytest.raises(ValueError):
        preprocess_image(img, 16, (0.5,) * 3, (0.5,) * 3)


def test_prepare_targets_two_instances():
    h, w, m = 40, 80, 8  # each stride cell covers 5 rows x 10 cols
    masks = np.zeros((2, h, w), bool)
    masks[0, :20, :40] = True  # -> cells rows 0..3, cols 0..3 fully
    masks[1, 12:, 30:] = True  # -> cells rows 3..7 cols 3..7 fully; row 2 (rows 10..14) 3/5 = 0.6
    boxes = np.array([[0, 0, 40, 20], [30, 12, 90, 40]], np.float32)  # box 1 exceeds W = 80
    t = prepare_targets(boxes, masks, (h, w), m)
    # box 0: /(80,40,80,40) -> [0, 0, .5, .5] -> cxcywh [.25, .25, .5, .5]
    # box 1: [.375, .3, 1.125 -> 1.0, 1.0] -> cxcywh [.6875, .65, .625, .7]
    torch.testing.assert_close(t["boxes"], torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.6875, 0.65, 0.625, 0.7]]))
    assert t["boxes"].dtype == t["masks"].dtype == t["union"].dtype == torch.float32
    exp0 = np.zeros((m, m), np.float32)
    exp0[:4, :4] = 1
    exp1 = np.zeros((m, m), np.float32)
    exp1[3:, 3:] = 1
    exp1[2, 3:] = 0.6
    assert t["masks"].shape == (2, m, m)
    np.testing.assert_allclose(t["masks"][0].numpy(), exp0, atol=1e-6)
    np.testing.assert_allclose(t["masks"][1].numpy(), exp1, atol=1e-6)
    # union = max (overlap cells (2,3) and (3,3) stay 1.0, not 1.6 / 2.0)
    np.testing.assert_allclose(t["union"].numpy(), np.maximum(exp0, exp1), atol=1e-6)
    assert float(t["union"].max()) == pytest.approx(1.0)


def test_prepare_targets_no_target():
    t = prepare_targets(np.zeros((0, 4)), np.zeros((0, 40, 80), bool), (40, 80), 8)
    assert t["boxes"].shape == (0, 4)
    assert t["masks"].shape == (0, 8, 8)
    assert t["union"].shape == (8, 8) and float(t["union"].abs().sum()) == 0


@pytest.mark.parametrize(
    "boxes, masks",
    [
        (np.zeros((2, 4)), np.zeros((1, 40, 80), bool)),  # count mismatch
        (np.zeros((1, 4)), np.zeros((1, 20, 80), bool)),  # mask size != image size
    ],
)
def test_prepare_targets_mismatch_raises(boxes, masks):
    with pytest.raises(ValueError):
        prepare_targets(boxes, masks, (40, 80), 8)
