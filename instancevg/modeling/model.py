"""InstanceVG-edge network, in the order of docs/DESIGN.md "Data flow".

image (B,3,S,S) -> EfficientNet-Lite0 C2..C5
text ids (B,L)  -> MiniLM-L6 (frozen) -> Linear -> T (B,L,d)
fusion + FPN    -> F4, F8, F16, F32
global branch   -> pixel embedding P, global mask, existence (existence_head="pooled")
AQSM            -> heatmap G, reference points R, queries Q0
decoder         -> per-layer hidden states -> class / box / instance masks
                   (+ the [REJ] token's state -> existence, existence_head="rejection_token")

Follows InstanceVG (arXiv 2509.13747, repo Dmmm1997/InstanceVG); deviations for the edge
budget are noted where they happen (shared value projection, sentence-level text query).
The forward pass has no data-dependent Python control flow and no ``.item()``: only batch
and text length are dynamic, so it traces to ONNX.
"""
from __future__ import annotations

import torch
from torch import nn

from .backbone import EfficientNetLiteBackbone
from .class_prior import ImageNetClassPrior
from ..config import ModelConfig
from .decoder import DeformableDecoder
from .fusion import masked_mean
from .heads import InstanceHeads
from .mask_grounding import MaskGroundingHead
from .neck import LanguageFPN
from .outputs import GroundingOutput, LayerPrediction
from .pixel_decoder import PixelDecoder
from .query_modulation import QueryModulatedTail
from .query_selection import AdaptiveQuerySelection
from .rejection import RejectionToken
from .text_encoder import TEXT_DIM, MiniLMTextEncoder, TextTokenizer


class InstanceVGModel(nn.Module):
    """Generalized grounding network.

    ``forward(images, input_ids, attention_mask)`` = ``encode_text`` then ``ground``.

    Args:
        config: a :class:`ModelConfig` (see ``instancevg.config.PRESETS``).
        load_pretrained: load backbone ImageNet weights when the config asks for them (and, with
            ``class_prior``, the ImageNet classifier and the prompt embeddings); set False when a
            checkpoint will overwrite every weight anyway.
    """

    def __init__(self, config: ModelConfig, load_pretrained: bool = True):
        super().__init__()
        self.config = config
        d = config.d_model
        self.backbone = EfficientNetLiteBackbone(pretrained=config.pretrained_backbone and load_pretrained,
                                                name=config.backbone)
        self.text_encoder = MiniLMTextEncoder(config.text_layers, frozen=config.freeze_text,
                                              trainable_top=config.train_text_layers)
        self.text_proj = nn.Sequential(nn.Linear(TEXT_DIM, d), nn.LayerNorm(d))
        self.neck = LanguageFPN(self.backbone.channels, d, config.mask_dim, config.n_heads, config.ffn_dim,
                                config.fusion_layers)
        self.pixel_decoder = PixelDecoder(d, config.mask_dim, existence=config.existence_head == "pooled")
        self.rejection = RejectionToken(d) if config.existence_head == "rejection_token" else None
        self.query_selection = AdaptiveQuerySelection(
            d, config.n_heads, config.num_queries, config.point_distance_weight
        )
        self.decoder = DeformableDecoder(
            d, config.n_heads, config.n_levels, config.n_points, config.ffn_dim, config.decoder_layers,
            config.kernels,
        )
        self.heads = InstanceHeads(d, config.mask_dim)
        self.query_modulation = QueryModulatedTail(self.backbone.channels, d) if config.query_modulation else None
        self.mask_grounding = (MaskGroundingHead(d, self.backbone.channels[2], config.n_heads, config.ffn_dim)
                               if config.mask_grounding else None)
        self.class_prior = ImageNetClassPrior(self.backbone.channels[3]) if config.class_prior else None
        if self.class_prior is not None and load_pretrained:
            self.class_prior.load_pretrained(self.text_encoder, TextTokenizer(config.max_text_len), config.backbone)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 ids and mask -> (B, L, 384) MiniLM token features."""
        return self.text_encoder(input_ids, attention_mask)

    def encode_image(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, S, S) normalised images -> backbone maps C2..C5 (strides 4/8/16/32), or only
        C2, C3 with ``ModelConfig.query_modulation`` (the later stages then depend on the text
        and run in :meth:`ground_features`).

        The only text-independent part of the network: :meth:`InstanceVG.encode_image` runs it
        once per image and shares the maps between expressions.
        """
        if self.query_modulation is not None:
            return self.backbone.trunk(images)
        return self.backbone(images)

    def ground(self, images: torch.Tensor, text_features: torch.Tensor, text_mask: torch.Tensor) -> GroundingOutput:
        """Run the grounder on normalised images and text features.

        Args:
            images: (B, 3, S, S) float, normalised with config.image_mean/std, S = image_size.
            text_features: (B, L, 384) float from :meth:`encode_text`.
            text_mask: (B, L) int/bool, 1 = valid token.

        Returns: see :meth:`ground_features`.
        """
        return self.ground_features(self.encode_image(images), text_features, text_mask)

    def ground_features(self, feats: list[torch.Tensor], text_features: torch.Tensor,
                        text_mask: torch.Tensor) -> GroundingOutput:
        """Run the grounder from backbone maps (:meth:`encode_image`) and text features.

        Args:
            feats: the maps of :meth:`encode_image` (C2..C5; C2, C3 with query modulation), batch B
                (expand a single image's maps with ``f.expand(B, -1, -1, -1)`` to ground B
                expressions in it).
            text_features: (B, L, 384) float from :meth:`encode_text`.
            text_mask: (B, L) int/bool, 1 = valid token.

        Returns:
            a :class:`GroundingOutput` (shapes, dtypes and units there).
        """
        text_mask = text_mask.to(torch.long)
        text = self.text_proj(text_features)
        sentence = masked_mean(text, text_mask)
        if self.query_modulation is not None:  # QRNet: C3 -> C5 refined by the expression
            feats = self.query_modulation(self.backbone, feats, sentence)
        prior = self.class_prior(feats[3], text_features, text_mask) if self.class_prior is not None else None
        feats, text = self.neck(feats, text, text_mask, sentence)
        sentence = masked_mean(text, text_mask)
        pixel, global_mask, existence = self.pixel_decoder(feats, sentence)
        bias = None if prior is None else self.class_prior.heatmap_bias(prior, feats[2].shape[-2:])
        sel = self.query_selection(text, text_mask, sentence, feats[2], heatmap_bias=bias)
        queries, ref = sel["queries"], sel["reference_points"]
        if self.rejection is not None:  # GSVA's [REJ]: decoded after the Nq instance queries
            queries, points = self.rejection.append(queries, ref, sentence)
        else:
            points = ref
        hidden = self.decoder(queries, points, feats[len(feats) - self.config.decoder_levels:], text, text_mask)
        if self.rejection is not None:
            nq = ref.shape[1]
            existence = self.rejection.existence(hidden[-1][:, nq])
            hidden = [h[:, :nq] for h in hidden]
        per_layer = [LayerPrediction(self.heads.classify(h), self.heads.boxes(h, ref)) for h in hidden]
        if prior is not None:  # ImageNet class prior: foreground logits at the points, "present" logit
            fg = self.class_prior.query_bias(prior, ref)
            per_layer = [LayerPrediction(p.pred_logits + torch.stack([fg, torch.zeros_like(fg)], -1), p.pred_boxes)
                         for p in per_layer]
            present = self.class_prior.existence_bias(prior)
            existence = existence + torch.stack([torch.zeros_like(present), present], -1)
        last = per_layer[-1]
        scores = last.pred_logits.softmax(-1)[..., 0] * existence.softmax(-1)[:, 1:2]
        mask_embed = self.heads.mask_embed(hidden[-1])
        return GroundingOutput(
            pred_logits=last.pred_logits,
            pred_boxes=last.pred_boxes,
            aux_outputs=per_layer[:-1],
            pred_masks=self.heads.masks(mask_embed, pixel),
            mask_embed=mask_embed,
            pixel_embed=pixel,
            global_mask=global_mask,
            existence=existence,
            heatmap=sel["heatmap"],
            reference_points=ref,
            scores=scores,
        )

    def forward(self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                masked_input_ids: torch.Tensor | None = None,
                target_union: torch.Tensor | None = None,
                text_features: torch.Tensor | None = None) -> GroundingOutput:
        """images (B,3,S,S) normalised, input_ids/attention_mask (B,L) -> outputs of :meth:`ground`.

        ``text_features`` (B, L, 384), when given, stand for ``encode_text(input_ids,
        attention_mask)`` (the trainer's cache of a frozen encoder,
        :mod:`instancevg.training.text_cache`).

        Training with ``ModelConfig.mask_grounding`` also passes ``masked_input_ids`` (B, L), the
        expressions with some words replaced by ``[MASK]``, and ``target_union`` (B, h, w) float,
        the referred objects' union mask; the output's ``mask_grounding`` then holds the
        Mask Grounding head's predictions (:mod:`instancevg.modeling.mask_grounding`).

        Raises:
            ValueError: masked expressions given to a model without the head, or without a union.
        """
        feats = self.encode_image(images)
        if text_features is None:
            text_features = self.encode_text(input_ids, attention_mask)
        out = self.ground_features(feats, text_features, attention_mask)
        if masked_input_ids is None:
            return out
        if self.mask_grounding is None or target_union is None:
            raise ValueError("masked_input_ids needs a model built with ModelConfig.mask_grounding and target_union")
        positions = (masked_input_ids != input_ids) & (attention_mask != 0)
        c4 = feats[2] if len(feats) > 2 else self.backbone.stage(feats[1], 2)  # text-free C4 (query modulation)
        out.mask_grounding = self.mask_grounding(
            c4, target_union, self.text_proj(self.encode_text(masked_input_ids, attention_mask)),
            self.text_proj(text_features), attention_mask, positions, input_ids,
            self.text_encoder.bert.embeddings.word_embeddings.weight)
        return out
