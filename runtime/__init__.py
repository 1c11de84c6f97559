"""Torch-free runtime for exported InstanceVG-edge bundles (numpy, OpenCV, tokenizers, and
ONNX Runtime or TensorRT); installs as ``instancevg.runtime``.

    from instancevg.runtime import Grounder
    g = Grounder.from_bundle("bundle/")
    for r in g.ground(frame_bgr, ["the red mug"]):
        r.boxes, r.scores, r.masks, r.union_mask, r.no_target
"""
from .result import GroundingResult

from .bundle import Bundle, BundleError
from .errors import InstanceVGError
from .frames import FrameError
from .grounder import Grounder, TextFeatures

__all__ = ["Bundle", "BundleError", "FrameError", "Grounder", "GroundingResult", "InstanceVGError", "TextFeatures"]
