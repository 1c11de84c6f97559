"""Tracking referred objects across video frames: a stable identity per object and an answer
that does not flicker.

Per-frame grounding answers each frame on its own, so an object whose score hovers around the
threshold appears and vanishes. :class:`ReferringTracker` keeps, per expression, a set of tracks
in the manner of SORT (Bewley et al., ICIP 2016) with ByteTrack's second association (Zhang et
al., ECCV 2022, ``yolox/tracker/byte_tracker.py``):

1. every track's box is predicted by a constant-velocity Kalman filter (OpenCV's
   ``cv2.KalmanFilter``) over (cx, cy, w, h) in pixels;
2. the frame's kept instances are assigned to the predicted boxes by the Hungarian algorithm
   (``scipy.optimize.linear_sum_assignment``) on 1 - IoU, a pair counting when IoU >=
   ``match_iou``;
3. tracks left over may take a low-score query instead (score above ``low_score`` but at or
   under the bundle's threshold, from ``extra["all_boxes"]``): an object whose score dips keeps
   its track; a low-score query never starts a track;
4. an unmatched instance starts a tentative track; an unmatched track counts a miss.

Existence hysteresis: a track is reported after ``confirm`` matched grounded frames, with no
frame in between that lacks both a kept instance and a low-score query for it (so an expression
turns from no-target to found only then) and is kept, coasting on its motion
model, until ``lost_after`` grounded frames in a row without a match (so found turns to
no-target only then). ``every=N`` runs the network on every N-th frame only; in between, boxes
and masks are carried by sparse optical flow (``cv2.calcOpticalFlowPyrLK``, the median motion of
corners inside each box; the Kalman prediction where no corner is found) and ``grounded`` is
False. A change of frame size drops every track (the coordinates no longer compare).

The tracker works on any grounding function ``(frame, texts) -> [GroundingResult, ...]``:
the runtime's ``Grounder.ground`` and the PyTorch ``InstanceVG`` (whose ``track`` wraps its own
``ground``) share this one implementation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

from .predictor import DEFAULT_CHANNEL_ORDER, check_channel_order
from .boxes import box_iou_xyxy
from .expressions import expression_list
from .frames import check_frame
from .result import GroundingResult

__all__ = ["ReferringTracker", "TrackedResult", "TrackerSettings"]


@dataclass
class TrackedResult:
    """What the tracker reports for one expression in one frame.

    Attributes:
        text: the expression.
        track_ids: (K,) int64, one stable id per reported object (unique within the tracker).
        boxes: (K, 4) float32 xyxy frame pixels (the Kalman-filtered box; the measured one on
            the frame a track is matched).
        scores: (K,) float32 in [0, 1]: the score of the track's last matched instance.
        masks: (K, H, W) bool: the last matched mask, moved with the track since.
        union_mask: (H, W) bool, union of ``masks``.
        no_target: True when no track is reported.
        grounded: True when the network ran on this frame (``every`` > 1 skips frames).
        image_size: (H, W) in pixels.
        ages: (K,) int64 grounded frames since each reported track last matched (0 = matched now).
    """

    text: str
    track_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray
    union_mask: np.ndarray
    no_target: bool
    grounded: bool
    image_size: tuple[int, int]
    ages: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


@dataclass(frozen=True)
class TrackerSettings:
    """Tracker parameters (see the module docstring).

    Attributes:
        every: run the network on every N-th frame (1 = every frame).
        lost_after: a reported track is dropped on its ``lost_after``-th grounded frame in a row
            without a match (>= 1; 1 drops it at the first miss, as per-frame grounding would).
        confirm: matched grounded frames in a row before a new track is reported (>= 1).
        match_iou: least IoU between a predicted box and an instance to associate them.
        low_score: ByteTrack's second stage takes queries scoring above this (and at or under the
            grounder's threshold) for tracks the kept instances did not claim; 1.0 turns it off.
        low_iou: least IoU for that second association.
        flow: carry boxes and masks by optical flow between grounded frames (else the Kalman
            prediction alone).

    The defaults were chosen on videos made from coco-real *train* photos
    (``benchmarks/tracking_videos.py --split train --grid``, benchmarks/RESULTS.md): the fewest
    answer changes among the settings that report wrongly on at most 90 % of the frames
    per-frame grounding does, settings within 0.5 changes per 100 frames of it counting as tied
    and the tie going to the higher HOTA.

    Raises:
        ValueError: a value out of its range.
    """

    every: int = 1
    lost_after: int = 4
    confirm: int = 4
    match_iou: float = 0.3
    low_score: float = 0.65
    low_iou: float = 0.5
    flow: bool = True

    def __post_init__(self):
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.lost_after < 1:
            raise ValueError(f"lost_after must be >= 1, got {self.lost_after}")
        if self.confirm < 1:
            raise ValueError(f"confirm must be >= 1, got {self.confirm}")
        for name in ("match_iou", "low_score", "low_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


def _kalman(box: np.ndarray) -> cv2.KalmanFilter:
    """Constant-velocity filter over (cx, cy, w, h) pixels, started at ``box`` (xyxy) with zero
    velocity; noise scaled by the box size as SORT / ByteTrack do."""
    kf = cv2.KalmanFilter(8, 4)
    kf.transitionMatrix = np.eye(8, dtype=np.float32)
    kf.transitionMatrix[:4, 4:] = np.eye(4, dtype=np.float32)
    kf.measurementMatrix = np.eye(4, 8, dtype=np.float32)
    z = _cxcywh(box)
    size = max(float(z[2]), float(z[3]), 1.0)
    kf.processNoiseCov = np.diag([(size / 20) ** 2] * 4 + [(size / 160) ** 2] * 4).astype(np.float32)
    kf.measurementNoiseCov = np.diag([(size / 20) ** 2] * 4).astype(np.float32)
    kf.errorCovPost = np.diag([(size / 10) ** 2] * 4 + [(size / 16) ** 2] * 4).astype(np.float32)
    kf.statePost = np.concatenate([z, np.zeros(4, np.float32)])[:, None].astype(np.float32)
    return kf


def _cxcywh(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], np.float32)


def _xyxy(state: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    cx, cy, w, h = (float(v) for v in state[:4])
    w, h = max(w, 1.0), max(h, 1.0)
    box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)
    box[0::2] = box[0::2].clip(0, hw[1])
    box[1::2] = box[1::2].clip(0, hw[0])
    return box


def _shift_mask(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """(H, W) bool mask moved by (dx, dy) pixels (nearest neighbour; what moves out is lost)."""
    if abs(dx) < 0.5 and abs(dy) < 0.5:
        return mask
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    h, w = mask.shape
    return cv2.warpAffine(mask.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST) > 0


class _Track:
    """One tracked object: Kalman state, last mask and score, match counters."""

    def __init__(self, track_id: int, box: np.ndarray, score: float, mask: np.ndarray, hw: tuple[int, int]):
        self.id, self.kf, self.hw = track_id, _kalman(box), hw
        self.box = np.asarray(box, np.float32)
        self.score, self.mask = float(score), mask
        self.hits, self.misses = 1, 0

    def predict(self) -> None:
        before = self.box
        self.kf.predict()
        self.box = _xyxy(self.kf.statePre[:, 0], self.hw)
        self._move_mask(before)

    def correct(self, box: np.ndarray, score: float | None, mask: np.ndarray | None) -> None:
        """A measurement: a matched instance (score and mask given) or a flow-carried box."""
        before = self.box
        self.kf.correct(_cxcywh(box)[:, None])
        self.box = np.asarray(box, np.float32)
        if mask is not None:
            self.mask = mask
        else:
            self._move_mask(before)
        if score is not None:
            self.score = float(score)

    def _move_mask(self, before: np.ndarray) -> None:
        d = _cxcywh(self.box)[:2] - _cxcywh(before)[:2]
        self.mask = _shift_mask(self.mask, float(d[0]), float(d[1]))


def _assign(tracks: list[_Track], boxes: np.ndarray, min_iou: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Hungarian assignment of tracks to boxes on 1 - IoU; pairs below ``min_iou`` do not count.

    Returns:
        (pairs (track index, box index), unmatched track indices, unmatched box indices).
    """
    from scipy.optimize import linear_sum_assignment

    if not tracks or not len(boxes):
        return [], list(range(len(tracks))), list(range(len(boxes)))
    iou = box_iou_xyxy(np.stack([t.box for t in tracks]), boxes)
    rows, cols = linear_sum_assignment(1.0 - iou)
    pairs = [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= min_iou]
    used_t, used_b = {p[0] for p in pairs}, {p[1] for p in pairs}
    return (pairs, [i for i in range(len(tracks)) if i not in used_t],
            [j for j in range(len(boxes)) if j not in used_b])


class ReferringTracker:
    """Tracks the objects each expression refers to, frame after frame (module docstring).

    Args:
        ground: ``(frame (H, W, 3) uint8, texts) -> list[GroundingResult]`` (one per
            expression, boxes xyxy pixels, ``extra["all_scores"]`` / ``extra["all_boxes"]`` for
            the second association when present), e.g. ``Grounder.ground``.
        texts: the expressions, grounded together in every grounded frame.
        settings: a :class:`TrackerSettings` (defaults when None).
        score_threshold: the grounder's keep threshold (low-score queries lie at or under it).
        channel_order: the frames' channel order, ``"bgr"`` (default) or ``"rgb"``; ``ground``
            receives the frames as they are.

    Raises:
        ValueError / TypeError: bad expressions (:func:`instancevg.runtime.expressions.expression_list`).
    """

    def __init__(self, ground: Callable[[np.ndarray, list[str]], Sequence[GroundingResult]], texts,
                 settings: TrackerSettings | None = None, score_threshold: float = 0.7,
                 channel_order: str = DEFAULT_CHANNEL_ORDER):
        self.ground_fn = ground
        self.to_gray = cv2.COLOR_BGR2GRAY if check_channel_order(channel_order) == "bgr" else cv2.COLOR_RGB2GRAY
        self.texts = expression_list(texts)
        self.settings = settings or TrackerSettings()
        self.score_threshold = float(score_threshold)
        self.frame_index = 0
        self._next_id = 1
        self._tracks: list[list[_Track]] = [[] for _ in self.texts]
        self._hw: tuple[int, int] | None = None
        self._gray: np.ndarray | None = None

    def reset(self) -> None:
        """Drop every track (ids keep counting up)."""
        self._tracks = [[] for _ in self.texts]
        self._gray = None

    def update(self, frame: np.ndarray) -> list[TrackedResult]:
        """Process the next frame.

        Args:
            frame: (H, W, 3) uint8 in the tracker's channel order.

        Returns:
            one :class:`TrackedResult` per expression, in order.

        Raises:
            FrameError: a frame that is not (H, W, 3) uint8 or is empty.
        """
        check_frame(frame)
        hw = (int(frame.shape[0]), int(frame.shape[1]))
        if hw != self._hw:  # a new stream or a new resolution: old coordinates mean nothing here
            self.reset()
            self._hw = hw
        gray = cv2.cvtColor(frame, self.to_gray)
        grounded = self.frame_index % self.settings.every == 0
        if grounded:
            results = list(self.ground_fn(frame, self.texts))
            if len(results) != len(self.texts):
                raise ValueError(f"the grounding function returned {len(results)} results for {len(self.texts)} texts")
            for tracks, result in zip(self._tracks, results):
                self._associate(tracks, result, hw)
        else:
            self._carry(gray)
        self._gray = gray
        self.frame_index += 1
        return [self._report(text, tracks, hw, grounded) for text, tracks in zip(self.texts, self._tracks)]

    # --- grounded frames ---------------------------------------------------------------------
    def _associate(self, tracks: list[_Track], result: GroundingResult, hw: tuple[int, int]) -> None:
        s = self.settings
        for t in tracks:
            t.predict()
        boxes = np.asarray(result.boxes, np.float32).reshape(-1, 4)
        pairs, lost, fresh = _assign(tracks, boxes, s.match_iou)
        for ti, bi in pairs:
            tracks[ti].correct(boxes[bi], float(result.scores[bi]), np.asarray(result.masks[bi], bool))
        low_boxes, low_scores = self._low_score_queries(result, boxes)
        pairs2, _, _ = _assign([tracks[ti] for ti in lost], low_boxes, s.low_iou)
        matched, weak = {ti for ti, _ in pairs}, set()
        for li, bi in pairs2:  # the box follows the low-score query, but only a kept instance resets the misses
            tracks[lost[li]].correct(low_boxes[bi], float(low_scores[bi]), None)
            weak.add(lost[li])
        keep = []
        for ti, t in enumerate(tracks):
            if ti in matched:
                t.hits, t.misses = t.hits + 1, 0
                keep.append(t)
                continue
            t.misses += 1
            if t.misses < s.lost_after and (t.hits >= s.confirm or ti in weak):
                keep.append(t)  # a tentative track survives a frame only on a low-score query
        for bi in fresh:
            keep.append(_Track(self._next_id, boxes[bi], float(result.scores[bi]),
                               np.asarray(result.masks[bi], bool), hw))
            self._next_id += 1
        tracks[:] = keep

    def _low_score_queries(self, result: GroundingResult, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Queries scoring in (low_score, threshold] that overlap no kept instance (IoU <= 0.7)."""
        scores = np.asarray(result.extra.get("all_scores", np.zeros(0)), np.float32).reshape(-1)
        boxes = np.asarray(result.extra.get("all_boxes", np.zeros((0, 4))), np.float32).reshape(-1, 4)
        if self.settings.low_score >= 1.0 or not len(scores):
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        sel = (scores > self.settings.low_score) & (scores <= self.score_threshold)
        if len(kept) and sel.any():
            sel &= box_iou_xyxy(boxes, kept).max(1) <= 0.7
        return boxes[sel], scores[sel]

    # --- frames between grounded ones --------------------------------------------------------
    def _carry(self, gray: np.ndarray) -> None:
        for tracks in self._tracks:
            for t in tracks:
                shift = self._flow(gray, t.box) if self.settings.flow and self._gray is not None else None
                if shift is None:
                    t.predict()
                else:
                    t.kf.predict()
                    t.correct(t.box + np.float32([shift[0], shift[1], shift[0], shift[1]]), None, None)

    def _flow(self, gray: np.ndarray, box: np.ndarray) -> tuple[float, float] | None:
        """Median motion (dx, dy) in pixels of corners inside ``box`` from the previous frame, or
        None when fewer than 3 corners are tracked."""
        h, w = gray.shape
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if x2 - x1 < 4 or y2 - y1 < 4:
            return None
        region = np.zeros_like(gray)
        region[y1:y2, x1:x2] = 255
        points = cv2.goodFeaturesToTrack(self._gray, maxCorners=40, qualityLevel=0.01, minDistance=4, mask=region)
        if points is None or len(points) < 3:
            return None
        moved, status, _ = cv2.calcOpticalFlowPyrLK(self._gray, gray, points, None, winSize=(15, 15), maxLevel=2)
        ok = status.reshape(-1) == 1
        if ok.sum() < 3:
            return None
        d = np.median((moved - points).reshape(-1, 2)[ok], axis=0)
        return float(d[0]), float(d[1])

    # --- output ------------------------------------------------------------------------------
    def _report(self, text: str, tracks: list[_Track], hw: tuple[int, int], grounded: bool) -> TrackedResult:
        shown = sorted((t for t in tracks if t.hits >= self.settings.confirm), key=lambda t: -t.score)
        masks = np.stack([t.mask for t in shown]) if shown else np.zeros((0, *hw), bool)
        return TrackedResult(
            text=text,
            track_ids=np.array([t.id for t in shown], np.int64),
            boxes=np.stack([t.box for t in shown]).astype(np.float32) if shown else np.zeros((0, 4), np.float32),
            scores=np.array([t.score for t in shown], np.float32),
            masks=masks,
            union_mask=masks.any(0) if shown else np.zeros(hw, bool),
            no_target=not shown,
            grounded=grounded,
            image_size=hw,
            ages=np.array([t.misses for t in shown], np.int64),
        )
