"""Default decision thresholds, shared by the model config, ``instancevg.postprocess`` and the
torch-free ``instancevg.runtime`` (this module imports nothing).

* ``SCORE_THRESHOLD`` 0.7: keep a query whose existence score is above it (the GREC
  Precision@(F1=1, IoU>=0.5) protocol of gRefCOCO / InstanceVG thresholds scores at 0.7).
* ``MASK_THRESHOLD`` 0.5: sigmoid threshold of instance and global masks.
* ``NMS_IOU`` 0.7: drop a kept query whose box overlaps a higher-scoring kept box with IoU above
  it (``instancevg.runtime.nms``); chosen on the validation split, see the model card.
"""
SCORE_THRESHOLD = 0.7
MASK_THRESHOLD = 0.5
NMS_IOU = 0.7
