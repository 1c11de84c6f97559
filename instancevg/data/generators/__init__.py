"""Generated grounding samples: scenes and referring expressions made by program, correct by
construction.

============================== ===================================================================
module                         what it generates
============================== ===================================================================
:mod:`.procedural`             the procedural GREC/GRES benchmark: ``render_sample(seed, i, split)``
                               composes the scene renderer and the shape grammar below
:mod:`.procedural_scene`       its scenes: shapes, sizes, held-out pairs, backgrounds, placement
:mod:`.procedural_expressions` its grammar: unambiguous expressions over a placed scene
:mod:`.procedural_parts`       part-level scenes (objects made of named parts) and their grammar
:mod:`.coco_expressions`       expressions from COCO-style labels (category, box, mask, pixels)
:mod:`.copy_paste`             copy-paste scenes from real instances (training)
:mod:`.vocabulary`             the words the three grammars share (plurals, colours, numbers, ...)
:mod:`.expression`             :class:`~.expression.Expression`, what every grammar returns
============================== ===================================================================

The files they read come through :mod:`instancevg.data.readers`.
"""
