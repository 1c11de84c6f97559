"""The Python API behind `instancevg ground`: ``InstanceVG.from_pretrained().ground(image, text)``.

``InstanceVG`` follows the predictor contract of ``instancevg.runtime.predictor``, the same verbs
as the torch-free ``instancevg.runtime.Grounder``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .checkpoint import CheckpointError, load_model
from .device import resolve_device
from .image_io import GROUNDING_MAX_SIDE, as_rgb_uint8, fit_within, load_image
from .modeling.text_encoder import TextTokenizer
from .postprocess import postprocess
from .preprocess import preprocess_image
from .runtime.decision import Decision
from .runtime.expressions import expression_list
from .runtime.predictor import DEFAULT_CHANNEL_ORDER, ImageFeatures, TextFeatures, check_channel_order
from .runtime.result import GroundingResult
from .runtime.tracking import ReferringTracker, TrackerSettings

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "instancevg_edge.safetensors"


class InstanceVG:
    """A loaded grounding model (:class:`~instancevg.runtime.predictor.Predictor`).

    Example::

        model = InstanceVG.from_pretrained()
        result = model.ground("photo.jpg", "the two mugs left of the laptop")
        result.boxes, result.scores, result.masks, result.no_target
    """

    def __init__(self, model, device: torch.device):
        self.model = model.eval()
        self.device = device
        self.tokenizer = TextTokenizer(self.config.max_text_len)

    @property
    def config(self):
        """The model's :class:`~instancevg.config.ModelConfig`."""
        return self.model.config

    @config.setter
    def config(self, value) -> None:
        self.model.config = value

    @property
    def decision(self) -> Decision:
        """The post-processing in use: the config's :class:`~instancevg.runtime.decision.Decision`."""
        return self.model.config.decision

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
    def encode_text(self, texts: str | list[str]) -> TextFeatures:
        """Tokenize and encode expressions with the (frozen) MiniLM encoder.

        Args:
            texts: one expression or a non-empty list/tuple; over-long ones are truncated to
                ``max_text_len`` tokens with a warning.

        Returns:
            :class:`~instancevg.runtime.predictor.TextFeatures` with (K, L, 384) float tensors and
            the (K, L) int64 mask, on the model's device.

        Raises:
            ValueError: an empty list or an expression with no visible character. TypeError: not
                a ``str`` or a list/tuple of ``str``.
        """
        texts = expression_list(texts)
        ids, mask = self.tokenizer(list(texts))
        ids, mask = ids.to(self.device), mask.to(self.device)
        return TextFeatures(self.model.encode_text(ids, mask), mask, tuple(texts))

    @torch.no_grad()
    def encode_image(self, image, channel_order: str = DEFAULT_CHANNEL_ORDER) -> ImageFeatures:
        """Run the text-independent part of the network (the backbone) on one image.

        Args:
            image: a path (JPEG/PNG/...), a PIL image, or an (H, W[, C]) array in
                ``channel_order`` (gray and 4-channel accepted; see :func:`image_array`).
            channel_order: ``"bgr"`` (default, OpenCV) or ``"rgb"`` (PIL, skimage); arrays only.

        Returns:
            :class:`~instancevg.runtime.predictor.ImageFeatures`: the backbone maps (batch 1)
            and the (H, W) the results will be given in.

        Raises:
            ImageLoadError: unreadable or malformed image. ValueError: unknown ``channel_order``.
        """
        rgb = image_array(image, channel_order=channel_order)
        x = preprocess_image(rgb, self.config.image_size, self.config.image_mean, self.config.image_std)
        return ImageFeatures(self.model.encode_image(x[None].to(self.device)), (rgb.shape[0], rgb.shape[1]))

    @torch.no_grad()
    def ground_features(self, image: ImageFeatures, text: TextFeatures) -> list[GroundingResult]:
        """Ground K encoded expressions in one encoded image: the image's maps are shared by the
        K expressions, which run as one batch; then :attr:`decision` is applied.

        Returns:
            one :class:`GroundingResult` per expression of ``text``, in order, at ``image.image_size``.
        """
        k = len(text.texts)
        feats = [f.expand(k, -1, -1, -1) for f in image.maps]
        out = self.model.ground_features(feats, text.features, text.mask)
        return [postprocess(out, i, t, image.image_size, self.decision, self.config.kernels)
                for i, t in enumerate(text.texts)]

    @torch.no_grad()
    def ground(self, image, texts: str | list[str],
               channel_order: str = DEFAULT_CHANNEL_ORDER) -> GroundingResult | list[GroundingResult]:
        """Ground expressions in one image; the backbone runs once for all of them.

        Args:
            image: a path (JPEG/PNG/...), a PIL image, or an (H, W[, C]) array in
                ``channel_order``. One larger than 4096 px on its longer side is downscaled to
                that first, with a warning (:func:`image_array`).
            texts: one referring expression (``str`` with a visible character) or a list of them;
                over-long ones are truncated with a warning.
            channel_order: ``"bgr"`` (default, OpenCV frames) or ``"rgb"`` (PIL, skimage); arrays only.

        Returns:
            for a ``str`` one :class:`GroundingResult`, for a list one per expression in order:
            boxes in image pixels (xyxy), scores, masks at the image size, the union mask and the
            no-target decision.

        Raises:
            ImageLoadError: unreadable or malformed image. ValueError: an empty list, an
            expression with no visible character or an unknown ``channel_order``. TypeError:
            ``texts`` is not a ``str`` or a list/tuple of ``str``.
        """
        single = isinstance(texts, str)
        text = self.encode_text(texts)  # checks the expressions before the image is decoded
        results = self.ground_features(self.encode_image(image, channel_order), text)
        return results[0] if single else results

    def track(self, texts, every: int = 1, channel_order: str = DEFAULT_CHANNEL_ORDER,
              **settings) -> ReferringTracker:
        """A tracker of the objects ``texts`` refer to, over video frames (the runtime's
        :class:`~instancevg.runtime.tracking.ReferringTracker` on :meth:`ground`; the same
        logic as ``Grounder.track``).

        Args:
            texts: the expressions (a ``str`` is one).
            every: run the network on every N-th frame; between, boxes and masks follow optical flow.
            channel_order: the frames' order, ``"bgr"`` (default) or ``"rgb"``.
            settings: further :class:`~instancevg.runtime.tracking.TrackerSettings` fields
                (``lost_after``, ``confirm``, ``match_iou``, ``low_score``, ``low_iou``, ``flow``).

        Returns:
            the tracker; ``tracker.update(frame)`` takes an (H, W, 3) uint8 frame and returns
            one :class:`~instancevg.runtime.tracking.TrackedResult` per expression.

        Raises:
            ValueError / TypeError: bad expressions, settings or channel order.
        """
        def ground(frame: np.ndarray, batch: list[str]) -> list[GroundingResult]:
            return self.ground(frame, list(batch), channel_order)

        return ReferringTracker(ground, texts, TrackerSettings(every=every, **settings),
                                score_threshold=self.decision.score, channel_order=channel_order)


def image_array(image, max_side: int = GROUNDING_MAX_SIDE, channel_order: str = DEFAULT_CHANNEL_ORDER) -> np.ndarray:
    """Load a path or convert an array/PIL image to (H, W, 3) uint8 RGB, at most ``max_side``
    pixels on its longer side. A 3- or 4-channel array is read in ``channel_order`` (``"bgr"``:
    BGR / BGRA, reordered here; ``"rgb"``: RGB / RGBA); paths, PIL images and gray arrays carry
    their own order.

    A larger image is downscaled (the model sees 320x320; full-size masks and overlays of a
    100-megapixel photo would only cost memory) with a ``UserWarning`` that gives both sizes:
    the results are then in the downscaled image's pixels (``GroundingResult.image_size``).

    Raises:
        ImageLoadError: unreadable or malformed image. ValueError: unknown ``channel_order``.
    """
    check_channel_order(channel_order)
    if isinstance(image, (str, Path)):
        rgb = load_image(image, max_side=max_side)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(image) as header:  # reads the header only
                w, h = header.size
        if max(w, h) > max_side:  # (EXIF rotation may swap W and H; the longer side is what matters)
            _warn_downscaled(w, h, rgb, max_side)
        return rgb
    if (channel_order == "bgr" and isinstance(image, np.ndarray) and image.ndim == 3
            and image.shape[2] in (3, 4)):
        image = image[..., [2, 1, 0, 3][: image.shape[2]]]  # BGR(A) -> RGB(A); as_rgb_uint8 copies
    rgb = as_rgb_uint8(image)
    small = fit_within(rgb, max_side)
    if small is not rgb:
        _warn_downscaled(rgb.shape[1], rgb.shape[0], small, max_side)
    return small


def _warn_downscaled(w: int, h: int, rgb: np.ndarray, max_side: int) -> None:
    warnings.warn(f"image {w}x{h} is grounded at {rgb.shape[1]}x{rgb.shape[0]} (longer side capped at "
                  f"{max_side} px): boxes and masks are in those pixels", stacklevel=3)
