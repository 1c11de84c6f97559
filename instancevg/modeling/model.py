"""InstanceVG-edge network, in the order of docs/DESIGN.md "Data flow".

image (B,3,S,S) -> EfficientNet-Lite0 C2..C5
text ids (B,L)  -> MiniLM-L6 (frozen) -> Linear -> T (B,L,d)
fusion + FPN    -> F4, F8, F16, F32
global branch   -> pixel embedding P, global mask, existence
AQSM            -> heatmap G, reference points R, queries Q0
decoder         -> per-layer hidden states -> class / box / instance masks

Follows InstanceVG (arXiv 2509.13747, repo Dmmm1997/InstanceVG); deviations for the edge
budget are noted where they happen (shared value projection, sentence-level text query).
The forward pass has no data-dependent Python control flow and no ``.item()``: only batch
and text length are dynamic, so it traces to ONNX.
"""
from __future__ import annotations

import torch
from torch import nn

from .backbone import EfficientNetLiteBackbone
from ..config import ModelConfig
from .decoder import DeformableDecoder
from .fusion import masked_mean
from .heads import InstanceHeads
from .neck import LanguageFPN
from .pixel_decoder import PixelDecoder
from .query_selection import AdaptiveQuerySelection
from .text_encoder import TEXT_DIM, MiniLMTextEncoder


class InstanceVGModel(nn.Module):
    """Generalized grounding network.

    ``forward(images, input_ids, attention_mask)`` = ``encode_text`` then ``ground``.

    Args:
        config: a :class:`ModelConfig` (see ``instancevg.config.PRESETS``).
        load_pretrained: load backbone ImageNet weights when the config asks for them; set
            False when a checkpoint will overwrite every weight anyway.
    """

    def __init__(self, config: ModelConfig, load_pretrained: bool = True):
        super().__init__()
        self.config = config
        d = config.d_model
        self.backbone = EfficientNetLiteBackbone(pretrained=config.pretrained_backbone and load_pretrained)
        self.text_encoder = MiniLMTextEncoder(config.text_layers, frozen=config.freeze_text,
                                              trainable_top=config.train_text_layers)
        self.text_proj = nn.Sequential(nn.Linear(TEXT_DIM, d), nn.LayerNorm(d))
        self.neck = LanguageFPN(self.backbone.channels, d, config.mask_dim, config.n_heads, config.ffn_dim,
                                config.fusion_layers)
        self.pixel_decoder = PixelDecoder(d, config.mask_dim)
        self.query_selection = AdaptiveQuerySelection(
            d, config.n_heads, config.num_queries, config.point_distance_weight
        )
        self.decoder = DeformableDecoder(
            d, config.n_heads, config.n_levels, config.n_points, config.ffn_dim, config.decoder_layers,
            config.kernels,
        )
        self.heads = InstanceHeads(d, config.mask_dim)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 ids and mask -> (B, L, 384) MiniLM token features."""
        return self.text_encoder(input_ids, attention_mask)

    def encode_image(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, S, S) normalised images -> backbone maps C2..C5 (strides 4/8/16/32).

        The only text-independent part of the network: :meth:`InstanceVG.ground_many` runs it
        once per image and shares the maps between expressions.
        """
        return self.backbone(images)

    def ground(self, images: torch.Tensor, text_features: torch.Tensor, text_mask: torch.Tensor) -> dict:
        """Run the grounder on normalised images and text features.

        Args:
            images: (B, 3, S, S) float, normalised with config.image_mean/std, S = image_size.
            text_features: (B, L, 384) float from :meth:`encode_text`.
            text_mask: (B, L) int/bool, 1 = valid token.

        Returns: see :meth:`ground_features`.
        """
        return self.ground_features(self.encode_image(images), text_features, text_mask)

    def ground_features(self, feats: list[torch.Tensor], text_features: torch.Tensor,
                        text_mask: torch.Tensor) -> dict:
        """Run the grounder from backbone maps (:meth:`encode_image`) and text features.

        Args:
            feats: C2..C5 from :meth:`encode_image`, batch B (expand a single image's maps
                with ``f.expand(B, -1, -1, -1)`` to ground B expressions in it).
            text_features: (B, L, 384) float from :meth:`encode_text`.
            text_mask: (B, L) int/bool, 1 = valid token.

        Returns:
            dict of tensors:
              ``pred_logits`` (B, Nq, 2) class logits (fg, no-object) of the last layer;
              ``pred_boxes`` (B, Nq, 4) cxcywh normalised; ``aux_outputs``: list of
              {pred_logits, pred_boxes} for earlier layers; ``pred_masks`` (B, Nq, S/4, S/4)
              instance mask logits; ``mask_embed`` (B, Nq, mask_dim) and ``pixel_embed``
              (B, mask_dim, S/4, S/4),
              whose product is ``pred_masks`` (the fused inference mask head reads these);
              ``global_mask`` (B, 1, S/4, S/4) logits; ``existence``
              (B, 2) logits (absent, present); ``heatmap`` (B, S/16, S/16) logits;
              ``reference_points`` (B, Nq, 2) in [0, 1]; ``scores`` (B, Nq)
              = softmax(class)[fg] * softmax(existence)[present].
        """
        text_mask = text_mask.to(torch.long)
        text = self.text_proj(text_features)
        sentence = masked_mean(text, text_mask)
        feats, text = self.neck(feats, text, text_mask, sentence)
        sentence = masked_mean(text, text_mask)
        pixel, global_mask, existence = self.pixel_decoder(feats, sentence)
        sel = self.query_selection(text, text_mask, sentence, feats[2])
        ref = sel["reference_points"]
        hidden = self.decoder(sel["queries"], ref, feats[len(feats) - self.config.decoder_levels:], text, text_mask)
        per_layer = [
            {"pred_logits": self.heads.classify(h), "pred_boxes": self.heads.boxes(h, ref)} for h in hidden
        ]
        last = per_layer[-1]
        scores = last["pred_logits"].softmax(-1)[..., 0] * existence.softmax(-1)[:, 1:2]
        mask_embed = self.heads.mask_embed(hidden[-1])
        return {
            "pred_logits": last["pred_logits"],
            "pred_boxes": last["pred_boxes"],
            "aux_outputs": per_layer[:-1],
            "pred_masks": self.heads.masks(mask_embed, pixel),
            "mask_embed": mask_embed,
            "pixel_embed": pixel,
            "global_mask": global_mask,
            "existence": existence,
            "heatmap": sel["heatmap"],
            "reference_points": ref,
            "scores": scores,
        }

    def forward(self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict:
        """images (B,3,S,S) normalised, input_ids/attention_mask (B,L) -> outputs of :meth:`ground`."""
        return self.ground(images, self.encode_text(input_ids, attention_mask), attention_mask)
