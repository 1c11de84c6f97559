"""The two ONNX graphs of a bundle, as thin ``nn.Module`` wrappers around an
:class:`instancevg.modeling.model.InstanceVGModel` with flat tensor inputs and outputs.

The split follows docs/DESIGN.md "Edge path": text features are computed once per expression and
cached by the runtime; the grounder runs once per frame, with all of that frame's expressions in
one batch that shares a single backbone pass.
"""
from __future__ import annotations

import torch
from torch import nn

TEXT_INPUTS = ("input_ids", "attention_mask")
TEXT_OUTPUTS = ("text_features",)
GROUNDER_INPUTS = ("image", "text_features", "text_mask")
GROUNDER_OUTPUTS = ("scores", "boxes", "instance_mask_logits", "global_mask_logits", "existence_logits")


class TextEncoderGraph(nn.Module):
    """``text_encoder.onnx``: MiniLM token features.

    Inputs: ``input_ids`` (B, L) int64 WordPiece ids; ``attention_mask`` (B, L) int64, 1 = token.
    Output: ``text_features`` (B, L, 384) float32 (padded positions are computed but masked later).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(input_ids, attention_mask)


class GrounderGraph(nn.Module):
    """``grounder.onnx``: image + text features -> every query's score, box and masks.

    Inputs:
        ``image`` (Bi, 3, S, S) float32, RGB normalised as (x/255 - mean)/std, S = image_size.
        Bi is 1 (one frame; its backbone maps are shared by all B expressions, the runtime's
        case) or B (expression i is grounded in image i). Other values are an error, checked by
        the runtime's :func:`instancevg.runtime.bundle.check_grounder_inputs`: the graph itself
        does not check them and its answer is then undefined.
        ``text_features`` (B, L, 384) float32 from ``text_encoder.onnx``.
        ``text_mask`` (B, L) int64, 1 = valid token.

    Outputs (Nq queries, m = S/4):
        ``scores`` (B, Nq) float32 in [0, 1] = softmax(class)[fg] * softmax(existence)[present];
        ``boxes`` (B, Nq, 4) float32 cxcywh normalised to [0, 1];
        ``instance_mask_logits`` (B, Nq, m, m) float32; ``global_mask_logits`` (B, 1, m, m) float32;
        ``existence_logits`` (B, 2) float32 (absent, present).

    Auxiliary decoder outputs, heatmap and reference points (training only) are dropped.

    The backbone maps are gathered with index i * (Bi // B) (all 0 for Bi = 1, i for Bi = B)
    rather than broadcast: a broadcast would make torch.export tie the two batch axes together
    (or specialise Bi to 1), a gather keeps both symbolic. The index is integer Range / Div /
    Mul only, with no int64 Clip, which older TensorRT ONNX parsers reject (no engine was built
    from this graph yet). The backbone is the only text-independent part of the network
    (:meth:`instancevg.modeling.model.InstanceVGModel.encode_image`), so this is all that can be shared.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, text_features: torch.Tensor, text_mask: torch.Tensor):
        feats = self.model.encode_image(image)
        b = text_features.shape[0]
        index = torch.arange(b, device=image.device) * (image.shape[0] // b)  # Bi = 1: all 0; Bi = B: 0..B-1
        feats = [f.index_select(0, index) for f in feats]
        out = self.model.ground_features(feats, text_features, text_mask)
        return out.scores, out.pred_boxes, out.pred_masks, out.global_mask, out.existence
