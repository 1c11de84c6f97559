"""Referring expressions as the API takes them: one ``str``, or a list of them.

One implementation for both sides: the PyTorch API (``instancevg.api``), its tokenizer
(``instancevg.modeling.text_encoder.TextTokenizer``), the ``instancevg ground`` command and the torch-free
runtime (``Grounder``, ``ExpressionTokenizer``) all check expressions here, so a bad one gets the
same one-line error everywhere.

An expression is *empty* when it holds no visible character: nothing, whitespace, or only
control and format characters (NUL, zero-width space U+200B, BOM U+FEFF, soft hyphen U+00AD,
...; Unicode categories Cc, Cf, Z*). A visible character is a letter, number, punctuation or
symbol (categories L*, N*, P*, S*).
"""
from __future__ import annotations

import unicodedata

__all__ = ["check_expression", "expression_list"]


def _visible(text: str) -> bool:
    return any(unicodedata.category(c)[0] in "LNPS" for c in text)


def check_expression(text, where: str = "referring expression") -> str:
    """Check one expression and return it without surrounding whitespace.

    Args:
        text: the expression.
        where: how the message names it (e.g. ``"expression 2"``).

    Returns:
        ``text.strip()``.

    Raises:
        TypeError: ``text`` is not a ``str`` (bytes must be decoded first; None, numbers and dicts
            are not expressions).
        ValueError: the expression has no visible character.
    """
    if not isinstance(text, str):
        hint = " (decode bytes first, e.g. b.decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
        raise TypeError(f"{where} must be a str, got {type(text).__name__}{hint}")
    if not _visible(text):
        raise ValueError(f"{where} is empty (no visible character): {text!r}")
    return text.strip()


def expression_list(texts) -> list[str]:
    """One expression or a list/tuple of them, as a checked list (order kept).

    Args:
        texts: a ``str`` (one expression) or a non-empty list/tuple of ``str``.

    Returns:
        the expressions, each as given (checked with :func:`check_expression`).

    Raises:
        TypeError: ``texts`` is neither a ``str`` nor a list/tuple (a dict, set, bytes, None, a
            number), or an element is not a ``str``.
        ValueError: an empty list, or an expression with no visible character.
    """
    if isinstance(texts, (str, bytes, bytearray)):
        check_expression(texts)  # bytes: a TypeError that says to decode them
        return [texts]
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"expressions must be a str or a list of str, got {type(texts).__name__}")
    if not texts:
        raise ValueError("no expression given (empty list)")
    many = len(texts) > 1
    for i, t in enumerate(texts, 1):
        check_expression(t, f"expression {i}" if many else "referring expression")
    return list(texts)
