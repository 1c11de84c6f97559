"""Evaluation metrics that follow the official GREC/GRES/REC/RES evaluation code.

* :mod:`.grec`: GREC Precision@(F1=1, IoU>=0.5), N-acc, T-acc (InstanceVG / gRefCOCO).
* :mod:`.gres`: GRES cIoU, gIoU, N-acc, T-acc, Pr@{0.7,0.8,0.9} (ReLA / InstanceVG).
* :mod:`.rec_res`: REC Acc@0.5 and RES mIoU / oIoU (InstanceVG ``apis/test.py``).

All evaluators are streaming (``update`` per sample, ``compute`` at the end, ``merge``
across processes) and return fractions in [0, 1]; pure numpy.
"""

from .grec import GRECEvaluator, box_iou_xyxy, generalized_box_iou_xyxy, greedy_giou_match
from .gres import GRESEvaluator, gres_pred_no_target, mask_intersection_union
from .rec_res import RECEvaluator, RESEvaluator

__all__ = [
    "GRECEvaluator",
    "GRESEvaluator",
    "RECEvaluator",
    "RESEvaluator",
    "box_iou_xyxy",
    "generalized_box_iou_xyxy",
    "greedy_giou_match",
    "gres_pred_no_target",
    "mask_intersection_union",
]
