"""Hand-made :class:`GroundingOutput` objects for tests of the code that reads model outputs."""
import torch

from instancevg.modeling.outputs import GroundingOutput, LayerPrediction


def make_outputs(pred_boxes: torch.Tensor, pred_masks: torch.Tensor, aux_outputs=(), **given) -> GroundingOutput:
    """A GroundingOutput holding ``pred_boxes`` (B, Nq, 4), ``pred_masks`` (B, Nq, m, m) and any
    other field given; the rest are neutral (zero logits, points at the centre) and are meant to
    be fields the code under test does not read."""
    b, nq = pred_boxes.shape[:2]
    m = pred_masks.shape[-2:]
    defaults = dict(pred_logits=torch.zeros(b, nq, 2), mask_embed=torch.zeros(b, nq, 1),
                    pixel_embed=torch.zeros(b, 1, *m), global_mask=torch.zeros(b, 1, *m),
                    existence=torch.zeros(b, 2), heatmap=torch.zeros(b, 1, 1),
                    reference_points=torch.full((b, nq, 2), 0.5), scores=torch.zeros(b, nq))
    aux = [a if isinstance(a, LayerPrediction) else LayerPrediction(**a) for a in aux_outputs]
    return GroundingOutput(pred_boxes=pred_boxes, pred_masks=pred_masks, aux_outputs=aux, **{**defaults, **given})
