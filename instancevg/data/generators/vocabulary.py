"""The words the expression grammars share: English plurals, colour names, number and ordinal
words, and relation phrases.

Three grammars draw from here: :mod:`.procedural_expressions` (coloured shapes),
:mod:`.procedural_parts` (objects and their parts) and :mod:`.coco_expressions` (labelled
photos). A word list that means the same thing in two grammars is defined once; where two
grammars need different lists on purpose (the colours a shape is painted in versus the colours a
photo's pixels are named in), each list has its own name here and says why it differs. Templates
(``"the leftmost {np}"``) belong to their grammar and stay there.

Changing a value here changes generated samples (texts and, through the random draws, images).
"""
from __future__ import annotations

__all__ = ["IRREGULAR_PLURALS", "plural", "COLORS", "PART_COLORS", "PHOTO_COLOURS", "NUMBER_WORDS",
           "ORDINAL_WORDS", "RELATION_PHRASES", "PHOTO_RELATION_PHRASES"]

# ---------------------------------------------------------------------------------------------
# Plurals: one rule for every noun of every grammar (shapes, parts, objects, COCO categories).

IRREGULAR_PLURALS: dict[str, str] = {
    "person": "people", "mouse": "mice", "sheep": "sheep", "skis": "skis", "scissors": "scissors",
    "knife": "knives", "broccoli": "broccoli", "bus": "buses", "skateboard": "skateboards",
    "walls": "walls",  # a house's part, already plural
}
"""Nouns (whole names or last words) whose plural the suffix rules of :func:`plural` get wrong."""


def plural(name: str) -> str:
    """English plural of a noun or a multi-word name; the last word is inflected.

    ``"dining table"`` -> ``"dining tables"``, ``"bus"`` -> ``"buses"``, ``"cross"`` ->
    ``"crosses"``, ``"body"`` -> ``"bodies"``, ``"person"`` -> ``"people"``: a name or last word in
    :data:`IRREGULAR_PLURALS` takes its entry, else ``-s`` / ``-sh`` / ``-ch`` / ``-x`` add ``es``,
    consonant + ``y`` becomes ``ies``, anything else adds ``s``.
    """
    head, _, last = name.rpartition(" ")
    if name in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[name]
    if last in IRREGULAR_PLURALS:
        word = IRREGULAR_PLURALS[last]
    elif last.endswith(("s", "sh", "ch", "x")):
        word = last + "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


# ---------------------------------------------------------------------------------------------
# Colours. Three lists, on purpose: the procedural generators paint objects in colours they choose
# (a name and the RGB it is drawn in), while the COCO grammar names the colours it finds in a
# photo's pixels (a classifier's names, no RGB). The painted colours' names are all names the
# classifier uses too.

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "green": (35, 165, 55),
    "blue": (35, 75, 230),
    "yellow": (245, 215, 30),
    "purple": (145, 55, 190),
    "orange": (250, 135, 20),
    "white": (248, 248, 248),
    "black": (22, 22, 22),
}
"""Procedural shapes and part-level objects: colour name -> nominal RGB (uint8) it is drawn in.
Objects get +-10 jitter per channel."""

PART_COLORS: tuple[str, ...] = tuple(c for c in COLORS if c not in ("white", "black"))
"""Colours of part-level objects: the six chromatic colours of :data:`COLORS` (not white or
black), drawn in :data:`COLORS`' RGB."""

PHOTO_COLOURS: tuple[str, ...] = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "white",
                                  "gray", "black")
"""Colour names the COCO grammar gives a photo's pixels
(:func:`~.coco_expressions.colour_fractions`; the order is the index of each name there)."""

# ---------------------------------------------------------------------------------------------
# Numbers and ranks.

NUMBER_WORDS: dict[int, str] = {2: "two", 3: "three", 4: "four", 5: "five"}
"""Counts said as words ("the three cups"). The procedural grammar says counts up to four, the
COCO grammar up to five."""

ORDINAL_WORDS: dict[int, str] = {1: "first", 2: "second", 3: "third", 4: "fourth"}
"""Ranks said as words ("the second circle from the left")."""

# ---------------------------------------------------------------------------------------------
# Relations. Two lists, on purpose: the procedural grammar draws one phrase from a pool (a phrase
# listed twice is drawn twice as often), while the COCO grammar makes one candidate expression per
# phrase, so every phrase there is a separate sample.

RELATION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("left of", "to the left of", "on the left of"),
    "right": ("right of", "to the right of", "on the right of"),
    "above": ("above", "above", "over"),
    "below": ("below", "under", "beneath"),
}
"""Procedural grammar: relation -> the phrases it is drawn from (uniformly, repeats weigh more)."""

PHOTO_RELATION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("left of", "to the left of"),
    "right": ("right of", "to the right of"),
    "above": ("above",),
    "below": ("below", "under"),
}
"""COCO grammar: relation -> its phrases, each one candidate expression."""
