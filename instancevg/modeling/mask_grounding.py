"""MagNet's Mask Grounding auxiliary head (``ModelConfig.mask_grounding``; training only).

Chng et al., "Mask Grounding for Referring Image Segmentation", CVPR 2024: some words of the
expression are replaced by ``[MASK]``, and a small module predicts them from the remaining
words, the visual features and the ground-truth mask of the referred objects, which forces the
visual and text features to agree on which pixels a word is about; a cross-modal alignment
loss (the paper's CAL) pulls matching visual and text features together. The released code
(yxchng/mask-grounding) holds only evaluation, so the module below is this project's design
from the paper's description, not a port; the masking rate follows the ovr-cnn masking code
the authors point to for it (15 % of the non-special tokens).

Adapted to this network:

* the visual features are the backbone's stride-16 map C4, which does not depend on the text
  (the fused maps already saw the unmasked words);
* the mask enters as a learned embedding of the mask (a small conv net) added to the visual
  tokens, as MagNet's mask encoder;
* the words are decoded by one transformer decoder layer (masked text tokens attend to the
  visual tokens), and predicted over MiniLM's vocabulary with the frozen MiniLM word embeddings
  as the output layer (tied weights: no new 30522-row matrix);
* the alignment loss works on mask-pooled visual features and sentence features (an InfoNCE
  over the batch in both directions) rather than per pixel.

The head is only called during training with masked expressions; :meth:`InstanceVGModel.ground`
and the ONNX graphs never use it, and ``instancevg pack`` drops it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .precision import float32_region
from .text_encoder import TEXT_DIM


@dataclass
class MaskGroundingOutput:
    """Outputs of the Mask Grounding head for one batch.

    Attributes:
        word_logits: (N, V) float32 logits over the V-word MiniLM vocabulary, one row per
            masked word of the batch (row-major over (sample, position)).
        word_targets: (N,) int64 the masked words' true ids.
        word_sample: (N,) int64 the sample each masked word belongs to.
        visual: (B, d) projection of the sample's visual feature averaged inside its target mask
            (of zeros where the mask is empty), for the alignment loss.
        text: (B, d) projection of the sample's sentence feature (mean of the original
            expression's tokens).
    """

    word_logits: torch.Tensor
    word_targets: torch.Tensor
    word_sample: torch.Tensor
    visual: torch.Tensor
    text: torch.Tensor


class MaskGroundingHead(nn.Module):
    """Predict masked words from the text context, the image and the target mask.

    Args:
        d: model width (``ModelConfig.d_model``); text tokens arrive already projected to it.
        visual_channels: channels of the backbone map it reads (C4).
        n_heads, ffn_dim: of its transformer decoder layer.
    """

    def __init__(self, d: int, visual_channels: int, n_heads: int, ffn_dim: int):
        super().__init__()
        self.visual = nn.Sequential(nn.Conv2d(visual_channels, d, 1), nn.GroupNorm(min(32, d // 4), d))
        self.mask_encoder = nn.Sequential(nn.Conv2d(1, d // 4, 3, padding=1), nn.GELU(), nn.Conv2d(d // 4, d, 1))
        self.fusion = nn.TransformerDecoderLayer(d, n_heads, ffn_dim, dropout=0.0, batch_first=True)
        self.to_word = nn.Sequential(nn.Linear(d, TEXT_DIM), nn.GELU(), nn.LayerNorm(TEXT_DIM))
        self.align_visual = nn.Linear(d, d)
        self.align_text = nn.Linear(d, d)

    def forward(self, c4: torch.Tensor, union: torch.Tensor, masked_text: torch.Tensor, text: torch.Tensor,
                text_mask: torch.Tensor, positions: torch.Tensor, targets: torch.Tensor,
                word_embeddings: torch.Tensor) -> MaskGroundingOutput:
        """Run the head.

        Args:
            c4: (B, C, h, w) backbone stride-16 map.
            union: (B, H, W) float in [0, 1], the union of the referred objects' masks (any
                resolution; averaged down to h x w).
            masked_text: (B, L, d) projected tokens of the masked expression.
            text: (B, L, d) projected tokens of the original expression.
            text_mask: (B, L) 1 = valid token.
            positions: (B, L) bool, True where a word was masked.
            targets: (B, L) int64 original ids (read at ``positions``).
            word_embeddings: (V, 384) the frozen MiniLM word embedding matrix (output layer).

        Returns:
            a :class:`MaskGroundingOutput`.
        """
        v = self.visual(c4)
        inside = F.adaptive_avg_pool2d(union[:, None].to(v.dtype), v.shape[-2:])  # (B, 1, h, w)
        tokens = (v + self.mask_encoder(inside)).flatten(2).transpose(1, 2)
        x = self.fusion(masked_text, tokens, tgt_key_padding_mask=text_mask == 0)
        sample = torch.arange(x.shape[0], device=x.device)[:, None].expand_as(positions)[positions]
        with float32_region(x):
            words = self.to_word(x[positions].float())
            logits = words @ word_embeddings.float().t()
            area = inside.flatten(1).sum(1, keepdim=True).float()
            pooled = (v.float() * inside.float()).flatten(2).sum(-1) / area.clamp(min=1e-6)
            valid = text_mask.float()[..., None]
            sentence = (text.float() * valid).sum(1) / valid.sum(1).clamp(min=1.0)
            return MaskGroundingOutput(word_logits=logits, word_targets=targets[positions], word_sample=sample,
                                       visual=self.align_visual(pooled), text=self.align_text(sentence))
