"""Why multi-target answers fail: per number of referred objects (0, 1, 2, 3+), what the model
keeps and where its queries are.

For each sample of an evaluation split (any data SPEC; by default coco-real's, whose expressions
are generated from the labels, the evaluation draws) it grounds the expression and reports, per
target count:

* ``kept``: mean number of instances kept (score > threshold, after NMS and consistency);
* ``kept matched``: mean number of kept instances that match a distinct target (IoU >= 0.5);
* ``top-k matched``: of the k best-scoring queries (k = number of targets, before the threshold
  and NMS), the mean fraction that match a distinct target: whether the queries find the
  objects at all;
* ``s1``, ``s2``, ``s3``: median score of the best, second and third query;
* ``exact``: share of samples whose kept set matches the targets one to one (GREC's F1 = 1);
* ``any matched``: of the targets, the share that some query reaches (IoU >= 0.5, one to one over
  all Nq queries, whatever their scores): the best any decision rule could find;
* ``all reachable``: share of samples whose every target some query reaches (the ceiling of
  ``exact`` for any score threshold, NMS or count rule);
* ``ref in box``: of the targets, the share whose box holds at least one of the Nq reference
  points (AQSM, InstanceVG Sec. 3.2): whether the point selection reaches every target;
* ``reached from point``: of the targets that hold a reference point, the share whose box some query
  seeded inside it predicts (IoU >= 0.5): whether a query boxes the instance under its own point
  or drifts to another (what ``TrainConfig.point_in_box_cost`` trains for).

    python tools/multi_target_report.py --checkpoint instancevg/weights/instancevg_edge.safetensors --split train --limit 400
    python tools/multi_target_report.py --data grefcoco:runs/handwritten:../shared/data/coco-real --split val
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from collections import defaultdict

import numpy as np
import torch

from instancevg.evaluation.grec import greedy_giou_match
from instancevg.runtime.boxes import box_iou_xyxy
from instancevg.training.matcher import points_in_boxes


def matched(pred: np.ndarray, gt: np.ndarray, thr: float = 0.5) -> int:
    """One-to-one matches between (P, 4) and (G, 4) xyxy boxes at IoU >= ``thr``, by the GREC
    evaluator's greedy matching (:func:`instancevg.evaluation.grec.greedy_giou_match`) on plain IoU."""
    if not len(pred) or not len(gt):
        return 0
    return greedy_giou_match(box_iou_xyxy(pred, gt), thr)


def group(k: int) -> str:
    return "3+" if k >= 3 else str(k)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--data", default="coco:../shared/data/coco-real/instances.json:../shared/data/coco-real",
                   help="evaluation data SPEC (instancevg.data.sources), default coco-real")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, default=400)
    p.add_argument("--point-distance-weight", type=float, default=None,
                   help="override ModelConfig.point_distance_weight (reference-point spread)")
    p.add_argument("--nms-iou", type=float, default=None, help="override ModelConfig.nms_iou")
    args = p.parse_args(argv)

    from instancevg import InstanceVG
    from instancevg.data.sources import DataSpec, eval_samples

    model = InstanceVG.from_pretrained(args.checkpoint)
    overrides = {k: v for k, v in (("point_distance_weight", args.point_distance_weight),
                                   ("nms_iou", args.nms_iou)) if v is not None}
    if overrides:
        model.config = dataclasses.replace(model.config, **overrides)
        model.model.query_selection.distance_weight = model.config.point_distance_weight
    captured = {}  # the reference points of the last call, (Nq, 2) normalised (x, y)
    model.model.query_selection.register_forward_hook(
        lambda _m, _i, out: captured.__setitem__("ref", out["reference_points"][0].detach().float().numpy()))
    rows = defaultdict(lambda: defaultdict(list))
    for image, text, gt, _ in eval_samples(DataSpec.parse(args.data), args.split, args.limit):
        r = model.ground(image, text, channel_order="rgb")
        k = len(gt)
        scores = np.sort(r.extra["all_scores"])[::-1]
        row = rows[group(k)]
        row["kept"].append(len(r.boxes))
        hits = matched(r.boxes, gt)
        row["kept matched"].append(hits)
        row["exact"].append(float(len(r.boxes) == k and hits == k))
        if k:
            top = np.argsort(-r.extra["all_scores"], kind="stable")[:k]
            row["top-k matched"].append(matched(r.extra["all_boxes"][top], gt) / k)
            reached = matched(r.extra["all_boxes"], gt)
            row["any matched"].append(reached / k)
            row["all reachable"].append(float(reached == k))
            h, w = image.shape[:2]  # reference points are normalised to the unpadded frame
            points = torch.from_numpy(captured["ref"] * np.array([w, h], np.float32))  # (Nq, 2) pixels
            inside = points_in_boxes(points, torch.from_numpy(np.asarray(gt, np.float32))).numpy()  # (Nq, k)
            row["ref in box"].append(float(inside.any(0).mean()))
            iou = box_iou_xyxy(r.extra["all_boxes"], gt)  # (Nq, k), queries in reference-point order
            seeded = inside.any(0)
            if seeded.any():
                row["reached from point"].append(float(((iou >= 0.5) & inside).any(0)[seeded].mean()))
        for i in range(3):
            row[f"s{i + 1}"].append(float(scores[i]))
    table = {}
    medians = {f"s{i + 1}" for i in range(3)}  # the score columns are medians, the rest means
    for key in sorted(rows):
        row = rows[key]
        table[key] = {"n": len(row["kept"]), **{m: round(float(np.mean(v)), 3) for m, v in row.items()
                                               if m not in medians},
                      **{m: round(float(np.median(v)), 3) for m, v in row.items() if m in medians}}
        print(f"targets {key}: " + json.dumps(table[key]))
    return 0


if __name__ == "__main__":
    main()
