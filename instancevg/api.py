"""The Python API behind `instancevg ground`: ``InstanceVG.from_pretrained().ground(image, text)``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, load_model
from .data.transforms import preprocess_image
from .image_io import as_rgb_uint8, load_image
from .postprocess import postprocess
from .result import GroundingResult
from .text_encoder import TextTokenizer

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "instancevg_edge.safetensors"


class InstanceVG:
    """A loaded grounding model.

    Example::

        model = InstanceVG.from_pretrained()
        result = model.ground("photo.jpg", "the two mugs left of the laptop")
        result.boxes, result.scores, result.masks, result.no_target
    """

    def __init__(self, model, device: torch.device):
        self.model = model.eval()
        self.device = device
        self.config = model.config
        self.tokenizer = TextTokenizer(self.config.max_text_len)

    @classmethod
    def from_pretrained(cls, checkpoint: str | Path | None = None, device: str | None = None) -> "InstanceVG":
        """Load a checkpoint (default: the model shipped in the package).

        Args:
            checkpoint: a model ``.safetensors`` file or a training checkpoint directory.
            device: "cpu", "cuda", ... (default: CUDA when available).

        Raises:
            CheckpointError: missing or unreadable checkpoint.
        """
        path = Path(checkpoint) if checkpoint else DEFAULT_WEIGHTS
        if checkpoint is None and not path.is_file():
            raise CheckpointError(f"the default model is not installed at {path}")
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(load_model(path, dev), dev)

    @torch.no_grad()
    def ground(self, image, text: str) -> GroundingResult:
        """Ground one expression in one image.

        Args:
            image: a path (JPEG/PNG/...), a PIL image, or an (H, W[, C]) array (RGB order for
                3 channels; gray and RGBA accepted).
            text: the referring expression (non-empty; over-long ones are truncated with a warning).

        Returns:
            GroundingResult with boxes in original-image pixels (xyxy), scores, masks at the
            original size, the union mask and the no-target decision.

        Raises:
            ImageLoadError: unreadable or malformed image. ValueError: empty expression.
        """
        return self.ground_many(image, [text])[0]

    @torch.no_grad()
    def ground_many(self, image, texts: list[str]) -> list[GroundingResult]:
        """Ground several expressions in one image.

        The backbone runs once on the image; the language-conditioned rest of the network runs
        as one batch of ``len(texts)``. Same arguments, errors and results as :meth:`ground`,
        one result per expression in order.
        """
        rgb = image_array(image)
        ids, mask = self.tokenizer(list(texts))
        ids, mask = ids.to(self.device), mask.to(self.device)
        x = preprocess_image(rgb, self.config.image_size, self.config.image_mean, self.config.image_std)
        feats = [f.expand(len(texts), -1, -1, -1) for f in self.model.encode_image(x[None].to(self.device))]
        out = self.model.ground_features(feats, self.model.encode_text(ids, mask), mask)
        h, w = rgb.shape[:2]
        return [postprocess(out, i, t, (h, w), self.config.score_threshold, self.config.mask_threshold,
                            self.config.kernels, self.config.nms_iou)
                for i, t in enumerate(texts)]


def image_array(image) -> np.ndarray:
    """Load a path or convert an array/PIL image to (H, W, 3) uint8 RGB."""
    return load_image(image) if isinstance(image, (str, Path)) else as_rgb_uint8(image)
