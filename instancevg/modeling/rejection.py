"""An explicit learned rejection token for the no-target decision (``existence_head="rejection_token"``).

GSVA (Xia et al., "GSVA: Generalized Segmentation via Multimodal Large Language Models", CVPR
2024) lets its language model emit a ``[REJ]`` token in place of ``[SEG]`` when the referred
object is absent (LeapLabTHU/GSVA ``data/refer_seg_dataset.py``: ``[REJ]`` exactly when the
expression's mask is empty), so that "no such object" is decided by a token that reads the whole
image-text context instead of by a pooled score. GSVA supervises it only through the language
model's cross-entropy on the answer tokens (``model/modeling_lisa_gsva.py``); here the token's
existence logits get the existence cross-entropy the pooled head had. This network has no
language model; the token is the decoder's version of ``[REJ]``: one extra learned query,
initialised from the sentence feature and anchored at the image centre, decoded together with
the instance queries (self-attention with them, text cross-attention, MSDeformAttn over the
pyramid), whose last hidden state gives the existence logits. It replaces the pooled existence
head of the pixel decoder; the outputs keep their meaning and shapes, so post-processing, export
and the runtime are unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from .precision import float32_region


class RejectionToken(nn.Module):
    """The learned rejection query and its existence head.

    Args:
        d: query width (``ModelConfig.d_model``).
    """

    def __init__(self, d: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(d))
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 2))
        nn.init.normal_(self.query, std=0.02)

    def append(self, queries: torch.Tensor, reference_points: torch.Tensor,
               sentence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the rejection query after the instance queries.

        Args:
            queries: (B, Nq, d) instance queries.
            reference_points: (B, Nq, 2) normalised (x, y) in [0, 1].
            sentence: (B, d) pooled text feature.

        Returns:
            queries (B, Nq + 1, d) and reference points (B, Nq + 1, 2); the token's point is the
            image centre (0.5, 0.5).
        """
        token = (sentence + self.query).unsqueeze(1).to(queries.dtype)
        centre = torch.full_like(reference_points[:, :1], 0.5)
        return torch.cat([queries, token], dim=1), torch.cat([reference_points, centre], dim=1)

    def existence(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B, d), the token's last decoder state -> existence logits (B, 2) float32,
        ordered (absent, present)."""
        with float32_region(hidden):  # the no-target decision stays float32 under autocast
            return self.head(hidden.float())
