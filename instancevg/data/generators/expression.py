"""The generated referring expression, the one return type of every expression grammar:
:mod:`.procedural_expressions` (coloured shapes), :mod:`.procedural_parts` (objects and their
parts) and :mod:`.coco_expressions` (labelled photos and copy-paste scenes)."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Expression"]


@dataclass(frozen=True)
class Expression:
    """A generated expression and what it refers to.

    Attributes:
        text: the expression, lowercase English (``"the two red circles"``).
        targets: indices of the referred objects in the scene's object list, ascending; ``()``
            for a no-target expression.
        kind: the grammar's expression kind (procedural: ``EXPRESSION_KINDS``; part-level:
            ``PART_KINDS``; COCO: ``KIND_WEIGHTS`` and ``NO_TARGET_KINDS``).
        parts: part-level grammar only: per target, the name of the referred part (``"handle"``),
            or None where the whole object is referred to; ``()`` from the other grammars.
    """

    text: str
    targets: tuple[int, ...]
    kind: str
    parts: tuple[str | None, ...] = ()
