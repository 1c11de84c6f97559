"""Calibration data for INT8 post-training quantization: grounder inputs (image, text features,
text mask) of procedural training samples or of a gRefCOCO-format split.

Follows ONNX Runtime's static-quantization recipe (``onnxruntime.quantization.CalibrationDataReader``,
one feed dict per ``get_next``). Images go through the runtime's OpenCV preprocessing and text
through the bundle's FP32 ``text_encoder.onnx``, so calibration sees exactly what inference sees.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from instancevg.runtime.grounder import Grounder
from onnxruntime.quantization import CalibrationDataReader

PROCEDURAL = "procedural"


def calibration_samples(spec: str, n: int, split: str = "train"):
    """Yield ``(rgb_image, expression)`` pairs for calibration.

    Args:
        spec: ``procedural`` or ``procedural:SEED`` (drawn on the fly by
            ``instancevg.data.procedural.render_sample(SEED, i, split)``, default seed 0), or a
            data directory holding ``dataset.json`` (gRefCOCO format) or such a JSON file.
        n: number of samples (the first ``n``).
        split: split to draw from (default ``train``: never the held-out test split).

    Raises:
        ValueError: ``n`` < 1, or asking for the test split. FileNotFoundError: no such data.
    """
    if n < 1:
        raise ValueError(f"need at least one calibration sample, got n={n}")
    if split == "test":
        raise ValueError("calibrating on the held-out test split would leak it into the INT8 model")
    if spec == PROCEDURAL or spec.startswith(PROCEDURAL + ":"):
        from instancevg.data.procedural import render_sample

        seed = int(spec.split(":", 1)[1]) if ":" in spec else 0
        for i in range(n):
            s = render_sample(seed, i, split)
            yield s.image, s.expression
        return
    from instancevg.data.record_json import expand_expressions, load_grounding_json
    from instancevg.image_io import load_image

    path = Path(spec)
    if path.is_dir():
        path = path / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(f"calibration data not found: {path} (use 'procedural' or a data directory)")
    items = expand_expressions(load_grounding_json(path, split))[:n]
    for record, text in items:
        yield load_image(record.image_path), text


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
        return {"image": self.grounder.encode_image(frame), "text_features": t.features, "text_mask": t.mask}
