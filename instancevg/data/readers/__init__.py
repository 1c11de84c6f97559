"""Readers of grounding data, one module per file format (after ``timm/data/readers/``).

============================ =====================================================================
module                       what it reads
============================ =====================================================================
:mod:`.records`              nothing: :class:`~.records.GroundingRecord`, the record every reader
                             yields, and COCO segmentation decoding
:mod:`.coco`                 COCO instances files (``images``, ``annotations``, ``categories``) and
                             their ``split.json``, as an index of objects
:mod:`.refs`                 the released referring datasets: gRefCOCO, RefCOCO / RefCOCO+ /
                             RefCOCOg, Ref-ZOM (refs pickles or JSON over a COCO instances file)
:mod:`.record_json`          the project's own grounding JSON (``instancevg make-data``'s
                             ``dataset.json``)
:mod:`.common`               what they share: :func:`~.common.read_json`, the one way a reader
                             opens a JSON file, and :func:`~.common.say`, the summary line
============================ =====================================================================

Samples generated from labels or rendered from a seed live in :mod:`instancevg.data.generators`.
"""
