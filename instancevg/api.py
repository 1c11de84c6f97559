"""The Python API behind `instancevg ground`: ``InstanceVG.from_pretrained().ground(image, text)``."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .checkpoint import CheckpointError, load_model
from .device import resolve_device
from .image_io import GROUNDING_MAX_SIDE, as_rgb_uint8, fit_within, load_image
from .postprocess import postprocess
from .preprocess import preprocess_image
from .runtime.result import GroundingResult
from .runtime.expressions import check_expression, expression_list
from .runtime.tracking import ReferringTracker, TrackerSettings
from .modeling.text_encoder import TextTokenizer

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
            device: "auto" (default: CUDA when available), "cpu", "cuda" or "cuda:N"
                (:func:`instancevg.device.resolve_device`).

        Raises:
            CheckpointError: missing or unreadable checkpoint. ValueError: an unknown or
                unavailable device.
        """
        path = Path(checkpoint) if checkpoint else DEFAULT_WEIGHTS
        if checkpoint is None and not path.is_file():
            raise CheckpointError(f"the default model is not installed at {path}")
        dev = resolve_device(device)
        return cls(load_model(path, dev), dev)

    @torch.no_grad()
    def ground(self, image, text: str) -> GroundingResult:
        """Ground one expression in one image.

        Args:
            image: a path (JPEG/PNG/...), a PIL image, or an (H, W[, C]) array (RGB order for
                3 channels; gray and RGBA accepted). One larger than 4096 px on its longer side
                is downscaled to that first, with a warning (:func:`image_array`).
            text: one referring expression, a ``str`` with a visible character (over-long ones
                are truncated with a warning); several go to :meth:`ground_many`.

        Returns:
            GroundingResult with boxes in image pixels (xyxy), scores, masks at the image size,
            the union mask and the no-target decision.

        Raises:
            ImageLoadError: unreadable or malformed image. ValueError: an expression with no
            visible character. TypeError: ``text`` is not a ``str`` (a list names
            :meth:`ground_many`).
        """
        if isinstance(text, (list, tuple)):
            raise TypeError(f"ground() takes one expression (str), got a {type(text).__name__}; "
                            "use ground_many() for several")
        check_expression(text)
        return self.ground_many(image, [text])[0]

    @torch.no_grad()
    def ground_many(self, image, texts: list[str]) -> list[GroundingResult]:
        """Ground several expressions in one image.

        The backbone runs once on the image; the language-conditioned rest of the network runs
        as one batch of ``len(texts)``. ``texts`` is a list/tuple of ``str`` (one ``str`` counts
        as a list of one); otherwise the same arguments, errors and results as :meth:`ground`,
        one result per expression in order.

        Raises:
            ImageLoadError: as :meth:`ground`. ValueError: an empty list or an expression with no
            visible character. TypeError: not a ``str`` or a list/tuple of ``str``.
        """
        texts = expression_list(texts)
        rgb = image_array(image)
        ids, mask = self.tokenizer(list(texts))
        ids, mask = ids.to(self.device), mask.to(self.device)
        x = preprocess_image(rgb, self.config.image_size, self.config.image_mean, self.config.image_std)
        feats = [f.expand(len(texts), -1, -1, -1) for f in self.model.encode_image(x[None].to(self.device))]
        out = self.model.ground_features(feats, self.model.encode_text(ids, mask), mask)
        h, w = rgb.shape[:2]
        return [postprocess(out, i, t, (h, w), self.config.score_threshold, self.config.mask_threshold,
                            self.config.kernels, self.config.nms_iou, self.config.consistency)
                for i, t in enumerate(texts)]


    def track(self, texts, every: int = 1, **settings) -> ReferringTracker:
        """A tracker of the objects ``texts`` refer to, over BGR video frames (the runtime's
        :class:`~instancevg.runtime.tracking.ReferringTracker` on :meth:`ground_many`; the same
        logic as ``Grounder.track``).

        Args:
            texts: the expressions (a ``str`` is one).
            every: run the network on every N-th frame; between, boxes and masks follow optical flow.
            settings: further :class:`~instancevg.runtime.tracking.TrackerSettings` fields
                (``lost_after``, ``confirm``, ``match_iou``, ``low_score``, ``low_iou``, ``flow``).

        Returns:
            the tracker; ``tracker.update(frame)`` takes an (H, W, 3) uint8 BGR frame and returns
            one :class:`~instancevg.runtime.tracking.TrackedResult` per expression.

        Raises:
            ValueError / TypeError: bad expressions or settings.
        """
        def ground_bgr(frame: np.ndarray, batch: list[str]) -> list[GroundingResult]:
            return self.ground_many(np.ascontiguousarray(frame[..., ::-1]), batch)

        return ReferringTracker(ground_bgr, texts, TrackerSettings(every=every, **settings),
                                score_threshold=self.config.score_threshold)


def image_array(image, max_side: int = GROUNDING_MAX_SIDE) -> np.ndarray:
    """Load a path or convert an array/PIL image to (H, W, 3) uint8 RGB, at most ``max_side``
    pixels on its longer side.

    A larger image is downscaled (the model sees 320x320; full-size masks and overlays of a
    100-megapixel photo would only cost memory) with a ``UserWarning`` that gives both sizes:
    the results are then in the downscaled image's pixels (``GroundingResult.image_size``).

    Raises:
        ImageLoadError: unreadable or malformed image.
    """
    if isinstance(image, (str, Path)):
        rgb = load_image(image, max_side=max_side)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(image) as header:  # reads the header only
                w, h = header.size
        if max(w, h) > max_side:  # (EXIF rotation may swap W and H; the longer side is what matters)
            _warn_downscaled(w, h, rgb, max_side)
        return rgb
    rgb = as_rgb_uint8(image)
    small = fit_within(rgb, max_side)
    if small is not rgb:
        _warn_downscaled(rgb.shape[1], rgb.shape[0], small, max_side)
    return small


def _warn_downscaled(w: int, h: int, rgb: np.ndarray, max_side: int) -> None:
    warnings.warn(f"image {w}x{h} is grounded at {rgb.shape[1]}x{rgb.shape[0]} (longer side capped at "
                  f"{max_side} px): boxes and masks are in those pixels", stacklevel=3)
