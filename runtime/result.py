"""The runtime's answer for one expression: a small torch-free dataclass.

Same fields and semantics as :class:`instancevg.result.GroundingResult` (which the runtime
does not import, so that it never depends on the PyTorch package), plus every query's score and
box for GREC evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Grounding:
    """Instances that one referring expression selects in one frame.

    Attributes:
        text: the expression as given.
        boxes: (K, 4) float32 xyxy in frame pixels, clipped to the frame, K kept instances
            (score > score threshold) sorted by descending score.
        scores: (K,) float32 in [0, 1] = softmax(class)[fg] * softmax(existence)[present].
        masks: (K, H, W) bool per-instance masks at the frame size.
        union_mask: (H, W) bool: global mask | kept instance masks; all False when ``no_target``.
        no_target: True when no instance is kept.
        image_size: (H, W) of the frame in pixels.
        all_scores: (Nq,) float32 every query's score (for GREC evaluation).
        all_boxes: (Nq, 4) float32 every query's box, xyxy frame pixels.
    """

    text: str
    boxes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray
    union_mask: np.ndarray
    no_target: bool
    image_size: tuple[int, int]
    all_scores: np.ndarray
    all_boxes: np.ndarray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])
