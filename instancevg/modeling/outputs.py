"""What the network returns: typed outputs of :meth:`InstanceVGModel.ground_features`.

Field names follow DETR / Mask2Former (``pred_logits``, ``pred_boxes``, ``pred_masks``,
``aux_outputs``) so the losses read like the reference code (Dmmm1997/InstanceVG
``models/heads/uni_gref_deformable_head.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from .mask_grounding import MaskGroundingOutput


@dataclass
class LayerPrediction:
    """Class and box predictions of one decoder layer.

    Attributes:
        pred_logits: (B, Nq, 2) float32 class logits ordered (foreground, no-object).
        pred_boxes: (B, Nq, 4) float32 boxes, cxcywh normalised to [0, 1].
    """

    pred_logits: torch.Tensor
    pred_boxes: torch.Tensor


@dataclass
class GroundingOutput:
    """Every output of one forward pass for a batch of B (image, expression) pairs.

    S is the input side (``ModelConfig.image_size``), Nq the number of instance queries.

    Attributes:
        pred_logits: (B, Nq, 2) float32 class logits of the last decoder layer (fg, no-object).
        pred_boxes: (B, Nq, 4) float32 cxcywh normalised boxes of the last layer.
        aux_outputs: one :class:`LayerPrediction` per earlier decoder layer.
        pred_masks: (B, Nq, S/4, S/4) instance mask logits (``mask_embed`` · ``pixel_embed``).
        mask_embed: (B, Nq, mask_dim) instance mask embeddings.
        pixel_embed: (B, mask_dim, S/4, S/4) pixel embedding P; the fused inference mask head
            reads these two instead of ``pred_masks``.
        global_mask: (B, 1, S/4, S/4) logits of the union of the referred objects.
        existence: (B, 2) float32 logits ordered (absent, present): the no-target decision.
        heatmap: (B, S/16, S/16) float32 logits the reference points were selected from.
        reference_points: (B, Nq, 2) reference points (x, y) normalised to [0, 1].
        scores: (B, Nq) float32 in [0, 1] = softmax(pred_logits)[fg] * softmax(existence)[present].
        mask_grounding: training only, when masked expressions were given
            (:class:`instancevg.modeling.mask_grounding.MaskGroundingOutput`); else None.
    """

    pred_logits: torch.Tensor
    pred_boxes: torch.Tensor
    aux_outputs: list[LayerPrediction]
    pred_masks: torch.Tensor
    mask_embed: torch.Tensor
    pixel_embed: torch.Tensor
    global_mask: torch.Tensor
    existence: torch.Tensor
    heatmap: torch.Tensor
    reference_points: torch.Tensor
    scores: torch.Tensor
    mask_grounding: MaskGroundingOutput | None = None

    def layers(self) -> list[LayerPrediction]:
        """The class/box predictions of every decoder layer, first to last."""
        return [*self.aux_outputs, LayerPrediction(self.pred_logits, self.pred_boxes)]

    def select(self, index: slice | torch.Tensor | int) -> "GroundingOutput":
        """The outputs of the batch rows ``index`` (an int keeps a batch axis of 1), without
        ``mask_grounding``."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("aux_outputs", "mask_grounding")}
        return GroundingOutput(
            aux_outputs=[LayerPrediction(a.pred_logits[index], a.pred_boxes[index]) for a in self.aux_outputs],
            **{k: v[index] for k, v in values.items()},
        )
