"""Data: the released grounding datasets (gRefCOCO, RefCOCO/+/g, Ref-ZOM) and COCO instances files
in their own formats, grounding samples generated from COCO labels and copy-paste scenes, the
procedural GREC/GRES benchmark, and the SPECs that name them (:mod:`instancevg.data.sources`).

=============================== ==================================================================
:mod:`.readers`                 file readers, one module per format (records, COCO instances,
                                released referring datasets, the project's grounding JSON)
:mod:`.generators`              samples made by program: the procedural scenes and part-level
                                scenes, expressions from COCO labels, copy-paste scenes, and the
                                vocabulary and :class:`~.generators.expression.Expression` type
                                their grammars share
:mod:`.sources`                 the ``KIND:PATH[:EXTRA][@WEIGHT]`` registry of data sources
:mod:`.dataset`                 torch datasets over all of them, and the batch collate function
:mod:`.mixture`                 weighted mixtures of training streams, per-epoch permutations
:mod:`.transforms`              model pre-processing, targets, horizontal flip
:mod:`.make_data`               ``instancevg make-data``: the procedural benchmark written to disk
:mod:`.coco_to_grefcoco`        ``instancevg make-data --from-coco``: a COCO set as gRefCOCO files
=============================== ==================================================================
"""
