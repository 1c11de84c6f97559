"""The two ONNX graphs of a bundle, as thin ``nn.Module`` wrappers around an
:class:`instancevg.model.InstanceVGModel` with flat tensor inputs and outputs.

The split follows DESIGN.md "Edge path": text features are computed once per expression and
cached by the runtime, the grounder runs once per frame and expression.
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
        ``image`` (B, 3, S, S) float32, RGB normalised as (x/255 - mean)/std, S = image_size.
        ``text_features`` (B, L, 384) float32 from ``text_encoder.onnx``.
        ``text_mask`` (B, L) int64, 1 = valid token.

    Outputs (Nq queries, m = S/4):
        ``scores`` (B, Nq) float32 in [0, 1] = softmax(class)[fg] * softmax(existence)[present];
        ``boxes`` (B, Nq, 4) float32 cxcywh normalised to [0, 1];
        ``instance_mask_logits`` (B, Nq, m, m) float32; ``global_mask_logits`` (B, 1, m, m) float32;
        ``existence_logits`` (B, 2) float32 (absent, present).

    Auxiliary decoder outputs, heatmap and reference points (training only) are dropped.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, text_features: torch.Tensor, text_mask: torch.Tensor):
        out = self.model.ground(image, text_features, text_mask)
        return out["scores"], out["pred_boxes"], out["pred_masks"], out["global_mask"], out["existence"]
