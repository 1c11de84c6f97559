"""Calibration data for INT8 post-training quantization: grounder inputs (image, text features,
text mask) of one split of a data source (by default procedural training samples rendered in memory).

Follows ONNX Runtime's static-quantization recipe (``onnxruntime.quantization.CalibrationDataReader``,
one feed dict per ``get_next``). Images go through the runtime's OpenCV preprocessing and text
through the bundle's FP32 ``text_encoder.onnx``, so calibration sees exactly what inference sees.
"""
from __future__ import annotations

import cv2
import numpy as np
from instancevg.runtime.grounder import Grounder
from onnxruntime.quantization import CalibrationDataReader

PROCEDURAL = "procedural"  # the default: procedural:0, the procedural benchmark rendered in memory


def calibration_samples(spec: str, n: int, split: str = "train"):
    """An iterator of ``(rgb_image uint8 (H, W, 3), expression)`` pairs for calibration: the first ``n``
    samples of one split of a data SPEC, as ``instancevg eval --data SPEC --split SPLIT --limit n``
    reads them (:func:`instancevg.data.sources.eval_samples`).

    Args:
        spec: a data SPEC (:mod:`instancevg.data.sources`): ``procedural`` (default, =
            ``procedural:0``) or ``procedural:SEED`` (drawn on the fly by
            ``instancevg.data.generators.procedural.render_sample(SEED, i, split)``), a data
            directory holding ``dataset.json`` (gRefCOCO format) or such a JSON file, ``coco:INSTANCES.json[:IMAGES]``,
            ``grefcoco:ROOT``...
        n: number of samples (the first ``n``; fewer when the split has fewer).
        split: split to draw from (default ``train``: never the held-out test split).

    Raises:
        ValueError: ``n`` < 1, asking for the test split, a bad SPEC or split, or a source without
            evaluation data (copy-paste). FileNotFoundError: no such data. Both when called, before
            the first sample.
    """
    from instancevg.data.sources import DataSpec, eval_samples

    if n < 1:
        raise ValueError(f"need at least one calibration sample, got n={n}")
    if split == "test":
        raise ValueError("calibrating on the held-out test split would leak it into the INT8 model")
    samples = eval_samples(DataSpec.parse(str(spec)), split, n)
    return ((s.image, s.text) for s in samples)


class GrounderCalibrationReader(CalibrationDataReader):
    """Feeds ``grounder.onnx`` with batch-1 calibration inputs.

    Args:
        grounder: an FP32 :class:`Grounder` on the bundle being quantized (its preprocessing and
            text encoder make the feeds).
        samples: iterable of ``(rgb_image uint8 (H, W, 3), expression)``.

    Feeds: ``image`` (1, 3, S, S) float32, ``text_features`` (1, L, 384) float32,
    ``text_mask`` (1, L) int64.
    """

    def __init__(self, grounder: Grounder, samples):
        self.grounder = grounder
        self.samples = iter(samples)
        self.count = 0

    def get_next(self) -> dict | None:
        item = next(self.samples, None)
        if item is None:
            return None
        rgb, text = item
        frame = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
        t = self.grounder.encode_text(text)
        self.count += 1
        return {"image": self.grounder.encode_image(frame).maps, "text_features": t.features, "text_mask": t.mask}
