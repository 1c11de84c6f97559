"""How training sources draw and augment their samples: mirror, scale jitter and the expression mix.

One :class:`TrainSampling` value (built from ``TrainConfig``'s fields of the same names) travels from
the trainer through the source kinds (:mod:`instancevg.data.sources`) to the datasets, which call
:meth:`TrainSampling.augment` before generating an expression, so that "left", sizes and counts
describe the photo the model sees.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .generators.coco_expressions import DEFAULT_MIX, ExpressionMix
from .transforms import draw_zoom, hflip, zoom

__all__ = ["TrainSampling", "FLIP_SALT", "ZOOM_SALT"]

FLIP_SALT = 0x464C50  # flip draws: default_rng([seed, g, FLIP_SALT]), apart from the expression draws
ZOOM_SALT = 0x5A4F4F  # scale-jitter draws: default_rng([seed, g, ZOOM_SALT]), apart from both


@dataclass(frozen=True)
class TrainSampling:
    """How training sources draw and augment their samples (``TrainConfig`` fields of the same names).

    The default is evaluation's: no mirror, no zoom, the uniform expression mix.

    Attributes:
        hflip: probability of mirroring a real-photo sample (coco, copy-paste, released datasets;
            "left" and "right" swap, or the expression is generated on the mirrored photo).
        scale_jitter: zoom a real photo in or out by up to ``1 + scale_jitter`` before its expression
            is generated (coco, copy-paste; :func:`instancevg.data.transforms.zoom`); 0 = off. The
            released datasets' written expressions may name what a crop would cut, so they are not zoomed.
        mix: how generated expressions (coco, copy-paste) weigh their kinds: several targets,
            wrong counts, look-alike absent categories
            (:class:`instancevg.data.generators.coco_expressions.ExpressionMix`).
    """

    hflip: float = 0.0
    scale_jitter: float = 0.0
    mix: ExpressionMix = DEFAULT_MIX

    def augment(self, image: np.ndarray, boxes: np.ndarray, masks: np.ndarray, seed: int, g: int):
        """Mirror item ``g`` with probability ``hflip`` (drawn from ``rng([seed, g, FLIP_SALT])``), then
        zoom it by a factor from :func:`~.transforms.draw_zoom` (``rng([seed, g, ZOOM_SALT])``) when
        ``scale_jitter`` is on.

        Args:
            image: (H, W, 3) uint8; boxes: (K, 4) float xyxy in pixels; masks: (K, H, W) bool.
            seed, g: the dataset's seed and the item's global index.

        Returns:
            ``(image, boxes, masks, visible)``: ``visible`` is None without zoom, else (K,) float, the
            fraction of each object's mask left in the frame (:func:`~.transforms.zoom`).
        """
        if self.hflip and np.random.default_rng([seed, g, FLIP_SALT]).random() < self.hflip:
            image, boxes, masks = hflip(image, boxes, masks)
        if not self.scale_jitter:
            return image, boxes, masks, None
        rng = np.random.default_rng([seed, g, ZOOM_SALT])
        return zoom(image, boxes, masks, draw_zoom(self.scale_jitter, rng), rng)
