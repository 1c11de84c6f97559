"""Tracking benchmark: videos synthesised with ground truth (a camera moving over a still photo,
or procedural scenes whose objects move on their own), per-frame grounding against the tracker,
MOT metrics.

``--source coco`` (default): a video is a camera moving over one photo: over ``n`` frames the view pans (up to 12 % of the
width and 6 % of the height), zooms 1.00 -> 1.08, rotates up to 3 degrees and its brightness
swings by 5 %, all smooth. Each frame is ``cv2.warpAffine`` of the photo; the referred objects'
ground-truth boxes are the bounding boxes of their warped masks (an object less than 30 %
visible is absent from that frame). Expressions come from the COCO-label generator with the
evaluation seed (``instancevg.data.sources.eval_dataset``), so a video can also be a no-target one.

``--source procedural``: a video is procedural benchmark sample i of the split (seed 0, as
``make-data`` writes it), whose objects each move in a straight line at 0.5-2 px per frame in
their own direction, bouncing off the image border, and occlude each other as they pass (drawn in
the scene's order, ``procedural_scene.render_objects``). Only expressions whose referents cannot
change with positions are used: attribute and plural kinds, and no-target ones without a spatial
relation; the ground truth is each referent's visible part (absent under 30 % of its full area).

Metrics per method (``motmetrics``: IDF1, MOTA, ID switches; ``trackeval``: HOTA), plus:

* answer changes per 100 frames: how often (found or not, number of objects) differs from the
  previous frame; also counted from frame :data:`WARMUP` on (a tracker reports an object only
  after ``confirm`` matches, one change at the start of every video with a target that per-frame
  grounding does not pay), and for the ground truth itself (objects hidden or uncovered);
* present reported: share of frames with a visible target in which some reported box matches a
  target at IoU >= 0.5;
* wrongly found: frames where something is reported and no reported box matches a target (all
  reported frames of a no-target video count);
* CPU ms per frame (median), for the tracker at ``every=1`` and ``every=5``.

The per-frame baseline has no identities: its ids are the instance's rank in the frame.

    pip install -e ".[bench]"                                                                  # motmetrics, trackeval
    python benchmarks/tracking_videos.py --bundle outputs/bundles/edge --split train --grid   # choose settings
    python benchmarks/tracking_videos.py --bundle outputs/bundles/edge --videos 100 --frames 60  # report on val
    python benchmarks/tracking_videos.py --bundle outputs/bundles/edge --source procedural --videos 100 --frames 60

CPU time per frame: the network's measured time on the frames a method grounds plus the tracker's
own time, over the recorded answers (each setting replays the same network outputs).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from instancevg.runtime import Grounder
from instancevg.runtime.boxes import box_iou_xyxy
from instancevg.runtime.tracking import ReferringTracker, TrackerSettings

VISIBLE = 0.3   # an object less visible than this in a frame is not in that frame's ground truth
MATCH_IOU = 0.5
WARMUP = 10     # "after warm-up" change counts start at this frame


def camera_path(i: int, n: int, hw: tuple[int, int], seed: int) -> tuple[np.ndarray, float]:
    """Frame ``i`` of ``n``: (2, 3) float32 affine from photo to frame pixels, brightness gain."""
    rng = np.random.default_rng(seed)
    h, w = hw
    sx, sy = rng.choice([-1, 1], 2)
    t = i / max(1, n - 1)
    ease = 0.5 - 0.5 * np.cos(np.pi * t)
    zoom = 1.0 + 0.08 * ease
    angle = 3.0 * ease * rng.choice([-1, 1])
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    m[0, 2] += sx * 0.12 * w * ease
    m[1, 2] += sy * 0.06 * h * ease
    gain = 1.0 + 0.05 * np.sin(2 * np.pi * t * 1.5 + rng.uniform(0, 2 * np.pi))
    return m.astype(np.float32), float(gain)


def make_video(photo_bgr: np.ndarray, masks: np.ndarray, n: int, seed: int):
    """Frames (n, H, W, 3) uint8 BGR and per-frame ground truth ``[(ids (k,), boxes (k, 4))]``."""
    h, w = photo_bgr.shape[:2]
    frames, truth = [], []
    for i in range(n):
        m, gain = camera_path(i, n, (h, w), seed)
        frame = cv2.warpAffine(photo_bgr, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frames.append(np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8))
        ids, boxes = [], []
        for k, mask in enumerate(masks):
            warped = cv2.warpAffine(mask.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST) > 0
            if warped.sum() < VISIBLE * max(1, mask.sum()):
                continue
            ys, xs = np.nonzero(warped)
            ids.append(k)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        truth.append((np.array(ids, np.int64), np.array(boxes, np.float32).reshape(-1, 4)))
    return frames, truth


class Replay:
    """A grounding function that answers frame i of a video with its recorded answer (every
    tracker setting replays the same network outputs) and counts the network time of those calls."""

    def __init__(self, answers: list, seconds: list[float]):
        self.answers, self.seconds, self.spent = answers, seconds, 0.0
        self.frame = 0

    def __call__(self, frame, texts):
        self.spent += self.seconds[self.frame]
        return [self.answers[self.frame]]


def ground_video(grounder, text: str, frames) -> tuple[list, list[float]]:
    """The grounder's answer to ``text`` on every frame, and the seconds each call took."""
    answers, seconds = [], []
    for f in frames:
        t0 = time.perf_counter()
        answers.append(grounder.ground(f, [text])[0])
        seconds.append(time.perf_counter() - t0)
    return answers, seconds


def track_replay(frames, answers, seconds, text: str, settings: TrackerSettings, threshold: float):
    """Run the tracker over a recorded video: per frame (ids, boxes), and per-frame CPU seconds
    (the tracker's own time plus the recorded network time of the frames it grounded)."""
    replay = Replay(answers, seconds)
    tracker = ReferringTracker(replay, [text], settings, score_threshold=threshold)
    out, cost = [], []
    for i, f in enumerate(frames):
        replay.frame, spent = i, replay.spent
        t0 = time.perf_counter()
        r = tracker.update(f)[0]
        cost.append(time.perf_counter() - t0 + replay.spent - spent)
        out.append((r.track_ids, r.boxes))
    return out, cost


def score_method(truth, answers) -> dict:
    """MOT and answer metrics of one video: ``answers`` per frame as (ids (K,), boxes (K, 4))."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    changes, late, truth_changes, prev, prev_truth, present, present_hit, wrong = 0, 0, 0, None, None, 0, 0, 0
    hota_data = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for frame, ((gt_ids, gt_boxes), (ids, boxes)) in enumerate(zip(truth, answers)):
        iou = box_iou_xyxy(gt_boxes, boxes) if len(gt_boxes) and len(boxes) else np.zeros((len(gt_boxes), len(boxes)))
        dist = np.where(iou >= MATCH_IOU, 1.0 - iou, np.nan)
        acc.update(gt_ids.tolist(), ids.tolist(), dist)
        hota_data["gt_ids"].append(gt_ids)
        hota_data["tracker_ids"].append(ids)
        hota_data["similarity_scores"].append(iou)
        state, truth_state = len(boxes), len(gt_boxes)
        changed = prev is not None and state != prev
        changes += changed
        late += changed and frame >= WARMUP
        truth_changes += prev_truth is not None and truth_state != prev_truth
        prev, prev_truth = state, truth_state
        hit = bool(iou.size and (iou >= MATCH_IOU).any())
        if len(gt_boxes):
            present += 1
            present_hit += hit
        if len(boxes) and not hit:
            wrong += 1
    return {"acc": acc, "hota": hota_data, "changes": changes, "late changes": late, "truth changes": truth_changes,
            "frames": len(truth), "present": present, "present_hit": present_hit, "wrong": wrong}


def hota(sequences: list[dict]) -> float:
    """HOTA (trackeval) over the sequences, ids relabelled 0..n-1 per sequence."""
    from trackeval.metrics import HOTA

    metric, results = HOTA(), {}
    for s, seq in enumerate(sequences):
        gt_all = sorted({int(i) for ids in seq["gt_ids"] for i in ids})
        tr_all = sorted({int(i) for ids in seq["tracker_ids"] for i in ids})
        g, t = {v: k for k, v in enumerate(gt_all)}, {v: k for k, v in enumerate(tr_all)}
        data = {"num_gt_ids": len(gt_all), "num_tracker_ids": len(tr_all),
                "num_gt_dets": sum(len(x) for x in seq["gt_ids"]),
                "num_tracker_dets": sum(len(x) for x in seq["tracker_ids"]),
                "gt_ids": [np.array([g[int(i)] for i in ids], int) for ids in seq["gt_ids"]],
                "tracker_ids": [np.array([t[int(i)] for i in ids], int) for ids in seq["tracker_ids"]],
                "similarity_scores": seq["similarity_scores"]}
        results[str(s)] = metric.eval_sequence(data)
    return float(np.mean(metric.combine_sequences(results)["HOTA"]))


def summarise(scored: list[dict], seconds: list[float]) -> dict:
    import motmetrics as mm

    mh = mm.metrics.create()
    summary = mh.compute_many([s["acc"] for s in scored], metrics=["idf1", "mota", "num_switches"],
                              names=[str(i) for i in range(len(scored))], generate_overall=True)
    overall = summary.loc["OVERALL"]
    frames = sum(s["frames"] for s in scored)
    return {"IDF1": round(100 * float(overall["idf1"]), 1), "MOTA": round(100 * float(overall["mota"]), 1),
            "ID switches": int(overall["num_switches"]), "HOTA": round(100 * hota([s["hota"] for s in scored]), 1),
            "answer changes / 100 frames": round(100 * sum(s["changes"] for s in scored) / frames, 1),
            "after warm-up": round(100 * sum(s["late changes"] for s in scored) /
                                   max(1, sum(s["frames"] - WARMUP for s in scored)), 1),
            "truth changes / 100 frames": round(100 * sum(s["truth changes"] for s in scored) / frames, 1),
            "present reported %": round(100 * sum(s["present_hit"] for s in scored) /
                                        max(1, sum(s["present"] for s in scored)), 1),
            "wrongly found frames": int(sum(s["wrong"] for s in scored)), "frames": frames,
            "median ms / frame": round(1000 * float(np.median(seconds)), 1) if seconds else None,
            "mean ms / frame": round(1000 * float(np.mean(seconds)), 1) if seconds else None}


def videos_from_coco(instances: str, image_dir: str | None, split: str, n_videos: int, n_frames: int):
    """(text, frames, truth) for the first ``n_videos`` evaluation samples of a COCO split (one
    expression per photo: the first of the evaluation draws)."""
    from instancevg.config import get_preset
    from instancevg.data.sources import DataSpec, eval_dataset

    data = eval_dataset(DataSpec("coco", instances, image_dir), get_preset("edge"), split)
    for v in range(n_videos):
        _, image, masks, _, expr = data.expression(v)  # item v: photo v with its first expression
        frames, truth = make_video(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), masks[list(expr.targets)], n_frames, seed=v)
        yield expr.text, frames, truth


MOTION_INVARIANT_KINDS = ("attribute", "plural", "no_target")
SPATIAL_WORDS = (" left", " right", " above", " below", " top", " bottom", " next to", " between", "most ")


def moving_scene(sample, n: int, seed: int):
    """Frames (n, H, W, 3) uint8 BGR of ``sample``'s objects moving on their own, and per-frame
    ground truth ``[(ids (k,), boxes (k, 4))]`` of its referents (see the module docstring)."""
    from instancevg.data.generators.procedural_scene import object_extent, render_objects

    rng = np.random.default_rng(seed)
    h, w = sample.image.shape[:2]
    start = np.array([[o.cx, o.cy] for o in sample.objects], np.float64)
    angle = rng.uniform(0, 2 * np.pi, len(start))
    velocity = rng.uniform(0.5, 2.0, (len(start), 1)) * np.stack([np.cos(angle), np.sin(angle)], 1)
    ext = np.array([object_extent(o) for o in sample.objects], np.float64)[:, None]
    lo, hi = ext, np.array([w, h], np.float64) - 1 - ext
    full = {i: sample.objects[i].full_area for i in sample.referents}
    frames, truth = [], []
    for t in range(n):
        span = np.maximum(hi - lo, 1.0)
        pos = (start - lo + velocity * t) % (2 * span)   # a bounce off each border is a reflection
        pos = lo + np.where(pos > span, 2 * span - pos, pos)
        rgb, label = render_objects(sample.background, sample.objects, np.rint(pos))
        frames.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        ids, boxes = [], []
        for i in sample.referents:
            ys, xs = np.nonzero(label == i + 1)
            if len(xs) < VISIBLE * full[i]:
                continue
            ids.append(i)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        truth.append((np.array(ids, np.int64), np.array(boxes, np.float32).reshape(-1, 4)))
    return frames, truth


def videos_from_procedural(split: str, n_videos: int, n_frames: int, seed: int = 0):
    """(text, frames, truth) for the first ``n_videos`` procedural samples of ``split`` (seed
    ``seed``) whose expression does not depend on positions."""
    from instancevg.data.generators.procedural import render_sample

    made, i = 0, 0
    while made < n_videos:
        sample = render_sample(seed, i, split)
        i += 1
        spatial = any(word in f" {sample.expression}" for word in SPATIAL_WORDS)
        if sample.kind not in MOTION_INVARIANT_KINDS or (sample.kind == "no_target" and spatial):
            continue
        frames, truth = moving_scene(sample, n_frames, seed=i)
        made += 1
        yield sample.expression, frames, truth


def run(bundle: str, videos, settings: dict[str, TrackerSettings], threads: int = 2) -> dict:
    """Per-frame grounding and each tracker setting on every ``(text, frames, truth)`` of
    ``videos``; returns ``{method: summary}``. The network runs once per frame; every setting
    replays those answers."""
    grounder = Grounder.from_bundle(bundle, threads=threads)
    scored = {"per-frame": [], **{k: [] for k in settings}}
    seconds = {k: [] for k in scored}
    for text, frames, truth in videos:
        answers, took = ground_video(grounder, text, frames)
        scored["per-frame"].append(score_method(truth, [(np.arange(len(a.boxes)), a.boxes) for a in answers]))
        seconds["per-frame"] += took
        for name, st in settings.items():
            out, cost = track_replay(frames, answers, took, text, st, grounder.decision.score)
            scored[name].append(score_method(truth, out))
            seconds[name] += cost
    return {k: summarise(v, seconds[k]) for k, v in scored.items()}


DEFAULTS = {"track every=1": TrackerSettings(every=1), "track every=5": TrackerSettings(every=5)}


def grid() -> dict[str, TrackerSettings]:
    """Settings compared when choosing the defaults (on train photos only)."""
    out = {}
    for lost in (1, 2, 3, 4):
        for confirm in (2, 3, 4):
            for low in (0.55, 0.65, 1.0):
                out[f"lost_after={lost} confirm={confirm} low_score={low}"] = TrackerSettings(
                    lost_after=lost, confirm=confirm, low_score=low)
    return out


def pan_frames(photo_bgr: np.ndarray, n: int = 60) -> list[np.ndarray]:
    """Issue 28's slow pan: 0.3 px per frame, zoom 1.00 -> 1.06, brightness +-3 %."""
    h, w = photo_bgr.shape[:2]
    out = []
    for i in range(n):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, 1.0 + 0.06 * i / max(1, n - 1))
        m[0, 2] += 0.3 * i
        gain = 1.0 + 0.03 * np.sin(2 * np.pi * i / n)
        frame = cv2.warpAffine(photo_bgr, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out.append(np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8))
    return out


def pan_checks(bundle: str, threads: int = 2) -> dict:
    """Found frames and answer changes (found / not found) on issue 28's three pans, per-frame
    against the tracker at every=1."""
    import skimage.data

    grounder = Grounder.from_bundle(bundle, threads=threads)
    out = {}
    for photo, text in (("coffee", "the white cup"), ("coffee", "the cup"), ("astronaut", "the flag")):
        frames = pan_frames(cv2.cvtColor(getattr(skimage.data, photo)(), cv2.COLOR_RGB2BGR))
        answers, took = ground_video(grounder, text, frames)
        tracked, _ = track_replay(frames, answers, took, text, TrackerSettings(), grounder.decision.score)
        row = {}
        for name, found in (("per-frame", [not a.no_target for a in answers]),
                            ("track every=1", [len(b) > 0 for _, b in tracked])):
            row[name] = {"found": int(sum(found)), "changes": int(sum(a != b for a, b in zip(found, found[1:])))}
        out[f"{photo}: {text}"] = row
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", required=True)
    p.add_argument("--instances", default="../shared/data/coco-real/instances.json")
    p.add_argument("--images", default="../shared/data/coco-real")
    p.add_argument("--source", choices=("coco", "procedural"), default="coco",
                   help="coco: a camera moving over photos; procedural: scenes whose objects move")
    p.add_argument("--split", default="val", help="photos / scenes of this split (choose settings on train)")
    p.add_argument("--videos", type=int, default=20)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--grid", action="store_true", help="compare the grid of settings instead of the defaults")
    p.add_argument("--json-out", default=None)
    p.add_argument("--pan", action="store_true", help="only issue 28's three slow pans (60 frames each)")
    args = p.parse_args(argv)
    if args.pan:
        for name, row in pan_checks(args.bundle, args.threads).items():
            print(name, json.dumps(row))
        return 0
    if args.source == "coco":
        videos = videos_from_coco(args.instances, args.images, args.split, args.videos, args.frames)
    else:
        videos = videos_from_procedural(args.split, args.videos, args.frames)
    table = run(args.bundle, videos, grid() if args.grid else DEFAULTS, args.threads)
    for method, row in table.items():
        print(method, json.dumps(row))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
