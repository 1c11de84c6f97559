"""``Grounder``: generalized visual grounding from an exported bundle, without PyTorch.

    g = Grounder.from_bundle("bundle/")                 # backend="auto" | "tensorrt" | "onnxruntime"
    results = g.ground(frame_bgr, ["the red mug", "all cups"])   # one GroundingResult per expression

It follows the predictor contract of ``instancevg.runtime.predictor`` (the same verbs as the
PyTorch ``InstanceVG``). Text and grounder are separate graphs (docs/DESIGN.md "Edge path"):
text features are cached by string; a frame is preprocessed once per call and grounded against
every expression in one batched grounder call that receives the single frame, so the backbone
runs once per frame.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .bundle import Bundle, BundleError
from .expressions import expression_list
from .frames import preprocess_frame
from .postprocess import postprocess_one
from .predictor import DEFAULT_CHANNEL_ORDER, ImageFeatures, TextFeatures
from .result import GroundingResult
from .tokenizer import ExpressionTokenizer
from .tracking import ReferringTracker, TrackerSettings

BACKENDS = ("auto", "tensorrt", "onnxruntime")


class Grounder:
    """A loaded bundle and backend (:class:`~instancevg.runtime.predictor.Predictor`).
    Thread-safe: share one instance between threads.

    Use :meth:`from_bundle` to construct. Attributes: ``manifest``
    (:class:`~instancevg.runtime.manifest.Manifest`), ``decision`` (the manifest's
    :class:`~instancevg.runtime.decision.Decision`), ``backend_name``, ``image_size`` (S, pixels).
    """

    def __init__(self, bundle: Bundle, backend, tokenizer: ExpressionTokenizer, cache_size: int = 1024):
        m = bundle.manifest
        self.bundle, self.manifest, self.backend, self.tokenizer = bundle, m, backend, tokenizer
        self.backend_name = backend.name
        self.image_size = m.input.image_size
        self.mean, self.std = m.input.mean, m.input.std
        self.decision = m.decision
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = int(cache_size)
        self._lock = threading.Lock()

    @classmethod
    def from_bundle(cls, path: str | Path, backend: str = "auto", threads: int | None = None,
                    precision: str | None = None, verify: bool = True, spinning: bool = False) -> Grounder:
        """Open a bundle directory.

        Args:
            path: bundle directory (``export/export_onnx.py`` / ``export/quantize.py``).
            backend: "tensorrt" (engines from ``export/build_engine.py``), "onnxruntime", or
                "auto": TensorRT when the bundle has engines and TensorRT + a CUDA binding import,
                else ONNX Runtime.
            threads: ONNX Runtime intra-op threads (default: ONNX Runtime's, one per physical core).
            precision: TensorRT engine set ("fp16" / "int8"); default the first built.
            verify: check every file's SHA-256 against the manifest.
            spinning: ONNX Runtime worker threads spin-wait between ops instead of sleeping:
                faster where nothing else needs those cores, much slower where something does
                (benchmarks/RESULTS.md). Off by default.

        Raises:
            ValueError: unknown backend name. BundleError: missing directory, manifest or file,
                a checksum mismatch, or a malformed manifest field (``thresholds`` included).
                ImportError: the requested backend is not installed.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        bundle = Bundle.open(path)
        tokenizer = ExpressionTokenizer(bundle.file("tokenizer.json", verify), bundle.manifest.max_text_len)
        impl = None
        if backend in ("auto", "tensorrt") and (backend == "tensorrt" or bundle.manifest.engines):
            from .trt_backend import TensorRTBackend

            try:
                impl = TensorRTBackend(bundle, precision=precision, verify=verify)
            except ImportError:
                if backend == "tensorrt":
                    raise
        if impl is None:
            from .ort_backend import OnnxRuntimeBackend

            impl = OnnxRuntimeBackend(bundle, threads=threads, verify=verify, spinning=spinning)
        return cls(bundle, impl, tokenizer)

    def encode_image(self, image: np.ndarray, channel_order: str = DEFAULT_CHANNEL_ORDER) -> ImageFeatures:
        """Preprocess one frame: the text-independent step (the backbone itself runs inside
        ``grounder.onnx``, together with the expressions).

        Args:
            image: (H, W, 3) uint8 array in ``channel_order`` (``"bgr"`` default, OpenCV's).

        Returns:
            :class:`~instancevg.runtime.predictor.ImageFeatures` with ``maps`` the (1, 3, S, S)
            float32 normalised RGB model input and ``image_size`` (H, W).

        Raises:
            FrameError: wrong type, dtype, channels, or an empty frame. ValueError: unknown
                ``channel_order``.
        """
        model_input = preprocess_frame(image, self.image_size, self.mean, self.std, channel_order)  # checks both
        return ImageFeatures(model_input, (int(image.shape[0]), int(image.shape[1])))

    def encode_text(self, texts: str | list[str]) -> TextFeatures:
        """Encode expressions with ``text_encoder.onnx``; features are cached by exact string.

        Returns:
            :class:`~instancevg.runtime.predictor.TextFeatures`: (K, L, 384) float32 MiniLM
            features and the (K, L) int64 mask, L the longest expression's token count.

        Args:
            texts: one expression (``str``) or a non-empty list/tuple of them. Over-long ones are
                truncated to the manifest's ``max_text_len`` tokens with a warning.

        Raises:
            ValueError: empty list, or an expression with no visible character. TypeError: not a
                ``str`` or a list/tuple of ``str`` (:func:`instancevg.runtime.expressions.expression_list`).
        """
        texts = expression_list(texts)
        with self._lock:
            cached = {t: self._cache[t] for t in texts if t in self._cache}
            for t in cached:
                self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in cached))
        if missing:
            seqs = [self.tokenizer.ids(t) for t in missing]
            ids, mask = ExpressionTokenizer.pad(seqs)
            feats = self.backend.encode_text(ids, mask)
            new = {t: np.ascontiguousarray(feats[i, : len(s)]) for i, (t, s) in enumerate(zip(missing, seqs))}
            cached.update(new)
            with self._lock:
                self._cache.update(new)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        per_text = [cached[t] for t in texts]
        length = max(f.shape[0] for f in per_text)
        features = np.zeros((len(texts), length, per_text[0].shape[1]), dtype=np.float32)
        mask = np.zeros((len(texts), length), dtype=np.int64)
        for i, f in enumerate(per_text):
            features[i, : f.shape[0]] = f
            mask[i, : f.shape[0]] = 1
        return TextFeatures(features, mask, tuple(texts))

    def ground_features(self, image: ImageFeatures, text: TextFeatures) -> list[GroundingResult]:
        """Run the grounder graph on encoded inputs (one call for all K expressions, the image
        shared) and apply :attr:`decision`.

        Returns:
            one :class:`~instancevg.runtime.result.GroundingResult` per expression of ``text``, in
            order, at ``image.image_size`` (boxes xyxy pixels, scores, masks, union, no_target).

        Raises:
            ValueError: inputs whose batch axes disagree (``bundle.check_grounder_inputs``).
        """
        out = self.backend.ground(image.maps, text.features, text.mask)  # one backbone pass
        return [postprocess_one(out["scores"][i], out["boxes"][i], out["instance_mask_logits"][i],
                                out["global_mask_logits"][i], t, image.image_size, self.decision)
                for i, t in enumerate(text.texts)]

    def ground(self, image: np.ndarray, texts: str | list[str],
               channel_order: str = DEFAULT_CHANNEL_ORDER) -> GroundingResult | list[GroundingResult]:
        """Ground expressions in one frame.

        Args:
            image: (H, W, 3) uint8 array in ``channel_order`` (``"bgr"`` default: OpenCV, cameras).
            texts: one expression (``str``) or a list; all are grounded in one batched grounder
                call that runs the image backbone once.
            channel_order: ``"bgr"`` or ``"rgb"``.

        Returns:
            for a ``str``, one :class:`~instancevg.runtime.result.GroundingResult`; for a list,
            one per expression in order (boxes xyxy frame pixels, scores, per-instance masks,
            union mask, no_target).

        Raises:
            FrameError: bad frame. ValueError / TypeError: bad expressions (see :meth:`encode_text`)
                or an unknown ``channel_order``.
        """
        single = isinstance(texts, str)
        image_features = self.encode_image(image, channel_order)
        results = self.ground_features(image_features, self.encode_text(texts))
        return results[0] if single else results

    def track(self, texts: str | list[str], every: int = 1, channel_order: str = DEFAULT_CHANNEL_ORDER,
              **settings) -> ReferringTracker:
        """A tracker of the objects ``texts`` refer to (:class:`~.tracking.ReferringTracker` on
        :meth:`ground`).

        Args:
            texts: the expressions (a ``str`` is one), grounded together in each grounded frame.
            every: run the network on every N-th frame; between, boxes and masks follow optical flow.
            channel_order: the frames' order, ``"bgr"`` (default) or ``"rgb"``.
            settings: further :class:`~.tracking.TrackerSettings` fields (``lost_after``,
                ``confirm``, ``match_iou``, ``low_score``, ``low_iou``, ``flow``).

        Returns:
            the tracker; ``tracker.update(frame)`` takes an (H, W, 3) uint8 frame and returns
            one :class:`~.tracking.TrackedResult` per expression, in order.

        Raises:
            ValueError / TypeError: bad expressions, settings or channel order.
        """
        def ground(frame: np.ndarray, batch: list[str]) -> list[GroundingResult]:
            return self.ground(frame, list(batch), channel_order)

        return ReferringTracker(ground, texts, TrackerSettings(every=every, **settings),
                                score_threshold=self.decision.score, channel_order=channel_order)


__all__ = ["BundleError", "Grounder", "TextFeatures"]
