"""Data: the released grounding datasets (gRefCOCO, RefCOCO/+/g, Ref-ZOM) and COCO instances files
in their own formats, grounding samples generated from COCO labels and copy-paste scenes, the
procedural GREC/GRES benchmark, and the SPECs that name them (:mod:`instancevg.data.sources`)."""
