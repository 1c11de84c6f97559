"""``Grounder``: generalized visual grounding from an exported bundle, without PyTorch.

    g = Grounder.from_bundle("bundle/")                 # backend="auto" | "tensorrt" | "onnxruntime"
    results = g.ground(frame_bgr, ["the red mug", "all cups"])   # one GroundingResult per expression

Text and grounder are separate graphs (docs/DESIGN.md "Edge path"): text features are cached by
string; a frame is preprocessed once per call and grounded against every expression in one
batched grounder call that receives the single frame, so the backbone runs once per frame.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .consistency import check_consistency_rule
from .nms import check_nms_iou
from .result import GroundingResult

from .bundle import Bundle, BundleError
from .expressions import expression_list
from .frames import check_frame, preprocess_frame
from .postprocess import postprocess_one
from .tokenizer import ExpressionTokenizer
from .tracking import ReferringTracker, TrackerSettings

BACKENDS = ("auto", "tensorrt", "onnxruntime")


@dataclass(frozen=True)
class TextFeatures:
    """Encoded expressions, right-padded to the longest.

    Attributes:
        features: (K, L, 384) float32 MiniLM token features (zeros at padded positions).
        mask: (K, L) int64, 1 = real token.
    """

    features: np.ndarray
    mask: np.ndarray


class Grounder:
    """A loaded bundle and backend. Thread-safe: share one instance between threads.

    Use :meth:`from_bundle` to construct. Attributes: ``manifest`` (dict), ``backend_name``,
    ``image_size`` (S, pixels), ``score_threshold``, ``mask_threshold``, ``nms_iou``, ``consistency``.
    """

    def __init__(self, bundle: Bundle, backend, tokenizer: ExpressionTokenizer, cache_size: int = 1024):
        m = bundle.manifest
        self.bundle, self.manifest, self.backend, self.tokenizer = bundle, m, backend, tokenizer
        self.backend_name = backend.name
        self.image_size = int(m["input"]["image_size"])
        self.mean, self.std = m["input"]["mean"], m["input"]["std"]
        self.score_threshold = float(m["thresholds"]["score"])
        self.mask_threshold = float(m["thresholds"]["mask"])
        # bundles exported before duplicate suppression existed carry no nms_iou: keep every query
        try:
            self.nms_iou = check_nms_iou(m["thresholds"].get("nms_iou", 1.0), "manifest thresholds.nms_iou")
            # bundles exported before the consistency rule existed: boxes and masks as predicted
            self.consistency = check_consistency_rule(m["thresholds"].get("consistency", "off"),
                                                      "manifest thresholds.consistency")
        except ValueError as err:
            raise BundleError(f"{bundle.path}: {err}") from None
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
                a checksum mismatch, a manifest ``thresholds.nms_iou`` outside (0, 1] or an unknown
                ``thresholds.consistency``.
                ImportError: the requested backend is not installed.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        bundle = Bundle.open(path)
        tokenizer = ExpressionTokenizer(bundle.file("tokenizer.json", verify), bundle.manifest["max_text_len"])
        impl = None
        if backend in ("auto", "tensorrt") and (backend == "tensorrt" or bundle.manifest.get("engines")):
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

    def encode_image(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 BGR frame -> (1, 3, S, S) float32 normalised RGB model input.

        Raises:
            FrameError: wrong type, dtype, channels, or an empty frame.
        """
        return preprocess_frame(frame, self.image_size, self.mean, self.std)

    def encode_text(self, texts: str | list[str]) -> TextFeatures:
        """Encode expressions with ``text_encoder.onnx``; features are cached by exact string.

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
        return TextFeatures(features, mask)

    def ground(self, frame: np.ndarray, texts: str | list[str]) -> list[GroundingResult]:
        """Ground every expression in one frame.

        Args:
            frame: (H, W, 3) uint8 BGR (OpenCV convention), any size.
            texts: one expression or a list; all are grounded in one batched grounder call that
                runs the image backbone once.

        Returns:
            one :class:`instancevg.runtime.result.GroundingResult` per expression, in order (boxes xyxy frame pixels, scores,
            per-instance masks, union mask, no_target).

        Raises:
            FrameError: bad frame. ValueError / TypeError: bad expressions (see :meth:`encode_text`).
        """
        check_frame(frame)
        texts = expression_list(texts)
        text = self.encode_text(texts)
        out = self.backend.ground(self.encode_image(frame), text.features, text.mask)  # one backbone pass
        hw = frame.shape[:2]
        return [postprocess_one(out["scores"][i], out["boxes"][i], out["instance_mask_logits"][i],
                                out["global_mask_logits"][i], t, hw, self.score_threshold, self.mask_threshold,
                                self.nms_iou, self.consistency)
                for i, t in enumerate(texts)]

    def track(self, texts: str | list[str], every: int = 1, **settings) -> ReferringTracker:
        """A tracker of the objects ``texts`` refer to (:class:`~.tracking.ReferringTracker` on
        :meth:`ground`).

        Args:
            texts: the expressions (a ``str`` is one), grounded together in each grounded frame.
            every: run the network on every N-th frame; between, boxes and masks follow optical flow.
            settings: further :class:`~.tracking.TrackerSettings` fields (``lost_after``,
                ``confirm``, ``match_iou``, ``low_score``, ``low_iou``, ``flow``).

        Returns:
            the tracker; ``tracker.update(frame)`` takes an (H, W, 3) uint8 BGR frame and returns
            one :class:`~.tracking.TrackedResult` per expression, in order.

        Raises:
            ValueError / TypeError: bad expressions or settings.
        """
        return ReferringTracker(self.ground, texts, TrackerSettings(every=every, **settings),
                                score_threshold=self.score_threshold)


__all__ = ["BundleError", "Grounder", "TextFeatures"]
