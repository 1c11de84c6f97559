"""The one predictor contract that ``instancevg.InstanceVG`` (PyTorch) and
``instancevg.runtime.Grounder`` (bundle, no torch) both follow.

Verbs (after nanoowl's ``owl_predictor.py``, one set for every predictor, and SAM2's
``sam2_image_predictor.py``, which splits image encoding from prompting):

* ``encode_text(texts) -> TextFeatures``: the text encoder, once per expression list.
* ``encode_image(image, channel_order) -> ImageFeatures``: the text-independent part, once per image.
* ``ground_features(image_features, text_features) -> list[GroundingResult]``: the rest of the
  network and the :class:`~instancevg.runtime.decision.Decision`, one result per expression.
* ``ground(image, texts, channel_order) -> GroundingResult | list[GroundingResult]``: the three
  above; one ``str`` gives one result, a list gives a list in order.
* ``track(texts, every, channel_order, **settings) -> ReferringTracker``.

Images given as arrays are (H, W, 3) uint8 in ``channel_order``, ``"bgr"`` by default for both
predictors (OpenCV's and a camera's order, :data:`DEFAULT_CHANNEL_ORDER`); ``"rgb"`` for arrays
from PIL, skimage or matplotlib. Paths and PIL images (``InstanceVG`` only) carry their own order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .decision import Decision
from .result import GroundingResult

__all__ = ["CHANNEL_ORDERS", "DEFAULT_CHANNEL_ORDER", "check_channel_order", "ImageFeatures", "TextFeatures",
           "Predictor"]

CHANNEL_ORDERS = ("bgr", "rgb")
DEFAULT_CHANNEL_ORDER = "bgr"


def check_channel_order(channel_order: str) -> str:
    """Return ``channel_order`` if it is ``"bgr"`` or ``"rgb"``.

    Raises:
        ValueError: anything else, naming the allowed values.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    return channel_order


@dataclass(frozen=True)
class TextFeatures:
    """Encoded expressions, right-padded to the longest.

    Attributes:
        features: (K, L, C) float32 token features (zeros at padded positions): a NumPy array
            (runtime; C = 384, MiniLM) or a torch tensor (PyTorch; C = d_model after projection).
        mask: (K, L) int64, 1 = real token (array or tensor, as ``features``).
        texts: the K expressions, in order.
    """

    features: Any
    mask: Any
    texts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageFeatures:
    """The text-independent encoding of one image.

    Attributes:
        maps: what the grounding part reads: the runtime's (1, 3, S, S) float32 normalised RGB
            model input (the bundle's grounder graph holds the backbone), or PyTorch's list of
            backbone maps, each (1, C, h, w) (``InstanceVGModel.encode_image``).
        image_size: (H, W) of the image the results are given in, pixels.
    """

    maps: Any
    image_size: tuple[int, int]


@runtime_checkable
class Predictor(Protocol):
    """What both predictors offer (module docstring). ``decision`` is the post-processing in use."""

    decision: Decision

    def encode_text(self, texts) -> TextFeatures: ...

    def encode_image(self, image, channel_order: str = DEFAULT_CHANNEL_ORDER) -> ImageFeatures: ...

    def ground_features(self, image: ImageFeatures, text: TextFeatures) -> list[GroundingResult]: ...

    def ground(self, image, texts, channel_order: str = DEFAULT_CHANNEL_ORDER): ...

    def track(self, texts, every: int = 1, channel_order: str = DEFAULT_CHANNEL_ORDER, **settings): ...
