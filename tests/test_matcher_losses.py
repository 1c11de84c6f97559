"""Hungarian matcher and training losses.

Expected numbers are worked out by hand in the comments. Most loss tests use synthetic leaf
tensors shaped like the model's outputs (cheap); one test overfits the tiny model.
"""

import copy
import dataclasses
import math

import pytest
import torch

from instancevg.modeling.outputs import LayerPrediction
from instancevg.training.losses import LossWeights, dice_loss, grounding_loss
from instancevg.training.matcher import MatcherWeights, hungarian_match, points_in_boxes
from fake_outputs import make_outputs

LN2 = math.log(2.0)


# ---- matcher -------------------------------------------------------------------------------


def test_match_recovers_permutation():
    gt = torch.tensor([[0.2, 0.2, 0.1, 0.1], [0.7, 0.3, 0.2, 0.3], [0.5, 0.8, 0.3, 0.2]])
    perm = [4, 0, 2]  # GT t is predicted by query perm[t]
    nq = 5
    boxes = torch.tensor([[0.9, 0.9, 0.05, 0.05]]).repeat(nq, 1)  # decoys far away
    logits = torch.tensor([[-5.0, 5.0]]).repeat(nq, 1)  # decoys: confident no-object
    ref = torch.full((nq, 2), 0.95)
    for t, q in enumerate(perm):
        boxes[q] = gt[t]
        logits[q] = torch.tensor([5.0, -5.0])
        ref[q] = gt[t, :2]
    (rows, cols), = hungarian_match(logits[None], boxes[None], ref[None], [gt])
    assert rows.dtype == cols.dtype == torch.int64
    assert len(rows) == len(cols) == 3
    assert {int(q): int(t) for q, t in zip(rows, cols)} == {q: t for t, q in enumerate(perm)}


def test_match_class_cost_breaks_tie():
    # Two queries with the same box (= GT) and reference point; only p_fg differs: the more
    # confident one (query 1) must win.
    gt = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    boxes = gt.repeat(2, 1)[None]
    ref = gt[:, :2].repeat(2, 1)[None]
    logits = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    (rows, cols), = hungarian_match(logits, boxes, ref, [gt])
    assert rows.tolist() == [1] and cols.tolist() == [0]


def test_match_point_cost_breaks_tie():
    # Same box (= GT) and logits for both queries; only the reference point differs. Query 0's
    # point is 0.3 + 0.3 = 0.6 (L1) from the GT centre -> +2*0.6 = 1.2 more cost: query 1 wins.
    gt = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    boxes = gt.repeat(2, 1)[None]
    logits = torch.zeros(1, 2, 2)
    ref = torch.tensor([[[0.2, 0.2], [0.5, 0.5]]])
    (rows, cols), = hungarian_match(logits, boxes, ref, [gt])
    assert rows.tolist() == [1] and cols.tolist() == [0]


def test_match_point_in_box_cost_prefers_query_on_the_target():
    # Two targets side by side, t0 at x 0.15..0.35 and t1 at 0.45..0.65 (y 0.4..0.6). Query 0's
    # box is exactly t0 but its reference point lies on t1; query 1 the other way round: the
    # queries have drifted onto each other's instance. Costs by hand (class terms equal):
    #   kept (q0->t0, q1->t1): box L1 0, GIoU -2 x 1 x 2 = -4, point 2 x 0.3 x 2 = 1.2, inside 2w
    #   swapped (q0->t1, q1->t0): box L1 5 x 0.3 x 2 = 3, GIoU -2 x (-0.2) x 2 = 0.8 (hull 0.1,
    #   union 0.08 -> GIoU -0.2), point 0, inside 0
    # -> kept = -2.8 + 2w against swapped = 3.8: the inside term flips it for w > 3.3.
    gt = torch.tensor([[0.25, 0.5, 0.2, 0.2], [0.55, 0.5, 0.2, 0.2]])
    boxes = gt.clone()[None]
    ref = torch.tensor([[[0.55, 0.5], [0.25, 0.5]]])
    logits = torch.zeros(1, 2, 2)
    (rows, cols), = hungarian_match(logits, boxes, ref, [gt])
    assert dict(zip(rows.tolist(), cols.tolist())) == {0: 0, 1: 1}  # off (w = 0): the boxes decide
    (rows, cols), = hungarian_match(logits, boxes, ref, [gt], MatcherWeights(point_in_box_cost=3.0))
    assert dict(zip(rows.tolist(), cols.tolist())) == {0: 0, 1: 1}
    (rows, cols), = hungarian_match(logits, boxes, ref, [gt], MatcherWeights(point_in_box_cost=3.5))
    assert dict(zip(rows.tolist(), cols.tolist())) == {0: 1, 1: 0}


def test_points_in_boxes_edges_and_outside():
    boxes = torch.tensor([[0.4, 0.3, 0.6, 0.7]])  # xyxy
    points = torch.tensor([[0.5, 0.5], [0.4, 0.7], [0.39, 0.5], [0.5, 0.71]])
    assert points_in_boxes(points, boxes)[:, 0].tolist() == [True, True, False, False]


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True, "5"])
def test_matcher_weights_reject_bad_cost(bad):
    with pytest.raises(ValueError, match="point_in_box_cost"):
        MatcherWeights(point_in_box_cost=bad)


def test_match_empty_gt_and_mixed_batch():
    nq = 4
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, nq, 2, generator=g)
    boxes = torch.rand(2, nq, 4, generator=g) * 0.5 + 0.25
    ref = torch.rand(2, nq, 2, generator=g)
    gt = [torch.zeros(0, 4), torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.1]])]
    out = hungarian_match(logits, boxes, ref, gt)
    assert len(out) == 2
    assert out[0][0].numel() == 0 and out[0][1].numel() == 0
    assert out[0][0].dtype == torch.int64
    rows, cols = out[1]
    assert len(rows) == 2 and sorted(cols.tolist()) == [0, 1] and len(set(rows.tolist())) == 2


def test_match_more_targets_than_queries():
    gt = torch.tensor([[0.2, 0.2, 0.1, 0.1], [0.5, 0.5, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1]])
    logits = torch.zeros(1, 2, 2)
    boxes = gt[:2][None].clone()
    ref = gt[:2, :2][None].clone()
    (rows, cols), = hungarian_match(logits, boxes, ref, [gt])
    assert len(rows) == len(cols) == 2  # min(Nq, K)
    assert dict(zip(rows.tolist(), cols.tolist())) == {0: 0, 1: 1}


def test_match_batch_size_mismatch_raises():
    with pytest.raises(ValueError):
        hungarian_match(torch.zeros(2, 3, 2), torch.rand(2, 3, 4), torch.rand(2, 3, 2), [torch.rand(1, 4)])


def test_match_nonfinite_cost_raises():
    boxes = torch.rand(1, 3, 4)
    boxes[0, 1, 0] = float("nan")
    with pytest.raises(ValueError):
        hungarian_match(torch.zeros(1, 3, 2), boxes, torch.rand(1, 3, 2), [torch.tensor([[0.5, 0.5, 0.2, 0.2]])])


# ---- dice ----------------------------------------------------------------------------------


def test_dice_loss_hand_worked():
    logits = torch.tensor([[0.0, 0.0], [100.0, -100.0], [0.0, 0.0], [-100.0, -100.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    # row 0: p = (.5, .5): num = 2*.5 + 1 = 2, den = 1 + 1 + 1 = 3 -> 1 - 2/3 = 1/3
    # row 1: p = (1, 0):   num = 2*1 + 1 = 3,  den = 1 + 1 + 1 = 3 -> 0
    # row 2: empty target, p = (.5, .5): num = 1, den = 1 + 0 + 1 = 2 -> 1/2
    # row 3: empty target, p = (0, 0): num = 1, den = 1 -> 0 (finite thanks to smoothing)
    loss = dice_loss(logits, targets)
    assert loss.shape == (4,)
    torch.testing.assert_close(loss, torch.tensor([1 / 3, 0.0, 0.5, 0.0]), atol=1e-6, rtol=0)


# ---- grounding loss, synthetic outputs ---------------------------------------------------

NQ, M, G = 6, 8, 4  # queries, mask side, heatmap side


def _leaves(b, seed=0):
    """Random leaf tensors (requires_grad) + an outputs dict built from them."""
    g = torch.Generator().manual_seed(seed)
    leaves = {
        "logits": torch.randn(b, NQ, 2, generator=g),
        "box_raw": torch.randn(b, NQ, 4, generator=g),
        "aux_logits": torch.randn(b, NQ, 2, generator=g),
        "aux_box_raw": torch.randn(b, NQ, 4, generator=g),
        "masks": torch.randn(b, NQ, M, M, generator=g),
        "global": torch.randn(b, 1, M, M, generator=g),
        "existence": torch.randn(b, 2, generator=g),
        "heatmap": torch.randn(b, G, G, generator=g),
    }
    for v in leaves.values():
        v.requires_grad_(True)
    ref = torch.rand(b, NQ, 2, generator=g)
    out = make_outputs(
        pred_logits=leaves["logits"],
        pred_boxes=leaves["box_raw"].sigmoid(),
        aux_outputs=[LayerPrediction(leaves["aux_logits"], leaves["aux_box_raw"].sigmoid())],
        pred_masks=leaves["masks"],
        global_mask=leaves["global"],
        existence=leaves["existence"],
        heatmap=leaves["heatmap"],
        reference_points=ref,
    )
    return leaves, out


def _empty_target():
    return {"boxes": torch.zeros(0, 4), "masks": torch.zeros(0, M, M), "union": torch.zeros(M, M)}


def _two_target():
    masks = torch.zeros(2, M, M)
    masks[0, :4, :4] = 1
    masks[1, 4:, 2:8] = 1
    return {"boxes": torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.625, 0.75, 0.75, 0.5]]), "masks": masks,
            "union": masks.amax(0)}


def _check_finite_with_grads(leaves, losses):
    assert torch.isfinite(losses["loss"])
    for k, v in losses.items():
        assert torch.isfinite(v).all(), k
    losses["loss"].backward()
    for k, v in leaves.items():
        assert v.grad is not None, k
        assert torch.isfinite(v.grad).all(), k


def test_loss_all_empty_batch_is_finite():
    leaves, out = _leaves(2)
    losses = grounding_loss(out, [_empty_target(), _empty_target()])
    _check_finite_with_grads(leaves, losses)
    # No matched query: box terms are exactly zero, every query is no-object.
    assert losses["l1"] == 0 and losses["giou"] == 0 and losses["l1_0"] == 0
    assert losses["mask_bce"] == 0 and losses["mask_dice"] == 0
    assert losses["loss"] > 0
    # Gradient pushes every query towards no-object: d loss / d fg-logit > 0.
    assert (leaves["logits"].grad[..., 0] > 0).all()


def test_loss_mixed_batch_is_finite():
    leaves, out = _leaves(2, seed=1)
    losses = grounding_loss(out, [_empty_target(), _two_target()])
    _check_finite_with_grads(leaves, losses)
    assert losses["l1"] > 0 and losses["giou"] > 0 and losses["mask_dice"] > 0
    # Returned parts are detached; only "loss" carries the graph.
    assert all(not v.requires_grad for k, v in losses.items() if k != "loss")
    # Keys: last layer unsuffixed, aux layer 0 suffixed.
    assert {"ce", "l1", "giou", "ce_0", "l1_0", "giou_0"} <= set(losses)


def test_perfect_predictions_beat_random():
    targets = [_empty_target(), _two_target()]
    _, rand_out = _leaves(2, seed=2)
    rand = grounding_loss(rand_out, targets)

    # Perfect: sample 1's queries 0 and 1 carry the GT boxes with confident fg logits, every
    # other query is confidently no-object; the aux layer is identical.
    logits = torch.tensor([-8.0, 8.0]).repeat(2, NQ, 1)
    boxes = torch.tensor([0.5, 0.5, 0.1, 0.1]).repeat(2, NQ, 1)
    ref = torch.full((2, NQ, 2), 0.5)
    gt = targets[1]["boxes"]
    for q in range(2):
        logits[1, q] = torch.tensor([8.0, -8.0])
        boxes[1, q] = gt[q]
        ref[1, q] = gt[q, :2]
    perfect_out = dataclasses.replace(rand_out, pred_logits=logits, pred_boxes=boxes, reference_points=ref,
                                      aux_outputs=[LayerPrediction(logits, boxes)])
    perfect = grounding_loss(perfect_out, targets)

    det = lambda ls: float(ls["ce"] + 5 * ls["l1"] + 2 * ls["giou"])  # noqa: E731
    assert det(perfect) < det(rand)
    # Identical boxes: L1 = 0 and GIoU = 1 -> both box losses vanish; CE ~ 0 for |logit gap| 16.
    assert float(perfect["l1"]) == pytest.approx(0.0, abs=1e-6)
    assert float(perfect["giou"]) == pytest.approx(0.0, abs=1e-6)
    assert float(perfect["ce"]) < 1e-5


def test_loss_hand_worked_single_sample():
    # B = 1, Nq = 2, one GT, masks 4x4, heatmap 2x2, no aux layer.
    # GT box (cxcywh) [0.5, 0.5, 0.2, 0.2] -> xyxy [0.4, 0.4, 0.6, 0.6].
    # query 0: box [0.6, 0.5, 0.2, 0.2] -> xyxy [0.5, 0.4, 0.7, 0.6]; logits (0, 0)
    # query 1: box [0.15, 0.15, 0.1, 0.1], far away; logits (ln 3, 0) -> p_fg = 0.75
    # Matching: query 0 costs -0.5 + 5*0.1 - 2/3 + 0 < query 1 (L1 = 0.9 -> +4.5) -> query 0.
    # CE (weights fg 1, no-object 0.1): q0 target fg: -log(0.5) = ln2; q1 target no-object:
    #   -log(1/4) = 2 ln2; weighted mean = (1*ln2 + 0.1*2ln2) / 1.1 = 1.2 ln2 / 1.1.
    # L1 = |0.6 - 0.5| = 0.1 (sum over coords / num_gt 1).
    # GIoU: inter [0.5,0.4,0.6,0.6] = 0.02, union 0.04 + 0.04 - 0.02 = 0.06, IoU = 1/3; hull
    #   [0.4,0.4,0.7,0.6] = 0.06 = union -> GIoU = 1/3, loss 2/3.
    # Masks: all-zero logits -> p = 0.5 -> BCE = ln2 whatever the target.
    #   GT mask has 4 of 16 pixels: Dice = 1 - (2*0.5*4 + 1) / (0.5*16 + 4 + 1) = 1 - 5/13 = 8/13.
    #   mask_bce = ln2, mask_dice = 8/13. Unmatched q1 has logits ln3 everywhere: BCE vs an
    #   empty mask = -log(1 - 3/4) = ln4 = 2 ln2.
    #   global: same zero logits vs union = GT mask: bce ln2, dice 8/13.
    #   heatmap zeros -> BCE ln2. existence logits (0, 0) with target present -> CE ln2.
    gt_mask = torch.zeros(1, 4, 4)
    gt_mask[0, 1:3, 1:3] = 1
    targets = [{"boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]]), "masks": gt_mask, "union": gt_mask[0]}]
    outputs = make_outputs(
        pred_logits=torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]]),
        pred_boxes=torch.tensor([[[0.6, 0.5, 0.2, 0.2], [0.15, 0.15, 0.1, 0.1]]]),
        aux_outputs=[],
        pred_masks=torch.stack([torch.zeros(4, 4), torch.full((4, 4), math.log(3.0))])[None],
        global_mask=torch.zeros(1, 1, 4, 4),
        existence=torch.zeros(1, 2),
        heatmap=torch.zeros(1, 2, 2),
        reference_points=torch.tensor([[[0.5, 0.5], [0.15, 0.15]]]),
    )
    ls = grounding_loss(outputs, targets)
    expected = {
        "ce": 1.2 * LN2 / 1.1,
        "l1": 0.1,
        "giou": 2 / 3,
        "mask_bce": LN2,
        "mask_dice": 8 / 13,
        "unmatched_mask": 2 * LN2,
        "global_bce": LN2,
        "global_dice": 8 / 13,
        "heatmap": LN2,
        "existence": LN2,
    }
    for k, v in expected.items():
        assert float(ls[k]) == pytest.approx(v, abs=1e-5), k
    w = LossWeights()
    total = (w.ce * expected["ce"] + w.l1 * 0.1 + w.giou * 2 / 3 + LN2 + 8 / 13 + w.unmatched_mask * 2 * LN2
             + LN2 + 8 / 13 + w.heatmap * LN2 + w.existence * LN2)
    assert w.l1 == 5 and w.giou == 2 and w.unmatched_mask == 0.2 and w.heatmap == 0.1 and w.existence == 0.2
    assert float(ls["loss"]) == pytest.approx(total, abs=1e-5)


def test_loss_normalised_by_gt_count():
    # Two identical samples, each with the same single GT and the same off-by-0.1 box: the box
    # losses are sums over the batch / num_gt (= 2), so they equal the single-sample values.
    tgt = {"boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]]), "masks": torch.zeros(1, 4, 4), "union": torch.zeros(4, 4)}
    outputs = make_outputs(
        pred_logits=torch.zeros(2, 1, 2),
        pred_boxes=torch.tensor([[[0.6, 0.5, 0.2, 0.2]]]).repeat(2, 1, 1),
        aux_outputs=[],
        pred_masks=torch.zeros(2, 1, 4, 4),
        global_mask=torch.zeros(2, 1, 4, 4),
        existence=torch.zeros(2, 2),
        heatmap=torch.zeros(2, 2, 2),
        reference_points=torch.full((2, 1, 2), 0.5),
    )
    ls = grounding_loss(outputs, [tgt, tgt])
    assert float(ls["l1"]) == pytest.approx(0.1, abs=1e-6)
    assert float(ls["giou"]) == pytest.approx(2 / 3, abs=1e-5)


# ---- overfitting the tiny model -------------------------------------------------------


# SLOW-ish (~5-15 s on a loaded 2-core CPU): 15 Adam steps on the edge-tiny model.
def test_overfit_one_mixed_batch(tiny_model, tokenizer, tiny_config):
    torch.manual_seed(0)
    model = copy.deepcopy(tiny_model).train()
    s, m = tiny_config.image_size, tiny_config.mask_size
    g = torch.Generator().manual_seed(11)
    images = torch.randn(2, 3, s, s, generator=g)
    ids, mask = tokenizer(["a unicorn", "the two squares"])
    masks = torch.zeros(2, m, m)
    masks[0, 2 : m // 2, 2 : m // 2] = 1
    masks[1, m // 2 : m - 2, m // 2 : m - 2] = 1
    # Box of mask 0: pixels 2 .. m/2-1 -> [2/m, m/2/m] = [0.0625, 0.5] for m = 32.
    lo, hi = 2 / m, (m // 2) / m
    lo2, hi2 = (m // 2) / m, (m - 2) / m
    boxes = torch.tensor([[(lo + hi) / 2, (lo + hi) / 2, hi - lo, hi - lo],
                          [(lo2 + hi2) / 2, (lo2 + hi2) / 2, hi2 - lo2, hi2 - lo2]])
    targets = [
        {"boxes": torch.zeros(0, 4), "masks": torch.zeros(0, m, m), "union": torch.zeros(m, m)},
        {"boxes": boxes, "masks": masks, "union": masks.amax(0)},
    ]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    history = []
    for _ in range(15):
        loss = grounding_loss(model(images, ids, mask), targets)["loss"]
        assert torch.isfinite(loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)  # as the trainer does
        opt.step()
        history.append(loss.item())
    with torch.no_grad():
        final = float(grounding_loss(model(images, ids, mask), targets)["loss"])
    assert final < 0.7 * history[0], history + [final]
