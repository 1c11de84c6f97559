"""The answer of one grounding call: every referred instance, or an explicit no-target."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GroundingResult:
    """Instances that one referring expression selects in one image.

    Attributes:
        text: the referring expression as given.
        boxes: (K, 4) float32, xyxy in original-image pixels, K kept instances (score above the
            threshold, then duplicates dropped by box NMS, ``instancevg.runtime.nms``), sorted by
            descending score.
        scores: (K,) float32 in [0, 1]: softmax(class)[fg] × softmax(existence)[present].
        masks: (K, H, W) bool, per-instance masks at the original image size.
        union_mask: (H, W) bool: union of the global mask (> 0.5) and the kept instance masks;
            all False when ``no_target``.
        no_target: True when no instance is kept (the expression refers to nothing).
        image_size: (H, W) of the original image in pixels.
    """

    text: str
    boxes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray
    union_mask: np.ndarray
    no_target: bool
    image_size: tuple[int, int]
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def to_dict(self) -> dict:
        """JSON-ready summary: boxes (xyxy pixels, rounded to 0.1), scores, mask areas (pixels)."""
        return {
            "text": self.text,
            "no_target": bool(self.no_target),
            "image_size": [int(self.image_size[0]), int(self.image_size[1])],
            "instances": [
                {
                    "box_xyxy": [round(float(v), 1) for v in box],
                    "score": round(float(score), 4),
                    "mask_area": int(mask.sum()),
                }
                for box, score, mask in zip(self.boxes, self.scores, self.masks)
            ],
            "union_mask_area": int(self.union_mask.sum()),
        }


GROUND_JSON_SCHEMA = "instancevg.ground/1"


def ground_document(results: list[GroundingResult], image: str, checkpoint: str) -> dict:
    """The JSON document ``instancevg ground --json`` prints, the same shape for one or many
    expressions (schema ``instancevg.ground/1``)::

        {"schema": "instancevg.ground/1", "image": PATH, "checkpoint": PATH,
         "results": [GroundingResult.to_dict(), ...]}   # one per --text, in order

    Each result: ``text``, ``no_target``, ``image_size`` [H, W], ``instances`` (``box_xyxy``
    original-image pixels, ``score`` in [0, 1], ``mask_area`` pixels), ``union_mask_area``.
    A new major number in ``schema`` means a field changed meaning or was removed.
    """
    return {"schema": GROUND_JSON_SCHEMA, "image": str(image), "checkpoint": str(checkpoint),
            "results": [r.to_dict() for r in results]}
