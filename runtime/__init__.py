"""Torch-free runtime for exported InstanceVG-edge bundles (numpy, OpenCV, tokenizers, and
ONNX Runtime or TensorRT); installs as ``instancevg.runtime``.

    from instancevg.runtime import Grounder
    g = Grounder.from_bundle("bundle/")
    for r in g.ground(frame_bgr, ["the red mug"]):
        r.boxes, r.scores, r.masks, r.union_mask, r.no_target
"""
from .bundle import Bundle, BundleError
from .decision import Decision
from .errors import InstanceVGError
from .frames import FrameError
from .grounder import Grounder
from .manifest import Manifest
from .predictor import ImageFeatures, Predictor, TextFeatures
from .result import GroundingResult

__all__ = ["Bundle", "BundleError", "Decision", "FrameError", "Grounder", "GroundingResult", "ImageFeatures",
           "InstanceVGError", "Manifest", "Predictor", "TextFeatures"]
