"""WordPiece tokenization of referring expressions with MiniLM's ``tokenizer.json`` (``tokenizers``
library, no torch): the one implementation of the truncation and padding rules, used by the
runtime and wrapped as torch tensors by ``instancevg.modeling.text_encoder.TextTokenizer``."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .expressions import check_expression


def unreadable_share(tokens: list[str], word_ids: list[int | None]) -> float:
    """Fraction of an expression's word pieces that MiniLM's English WordPiece vocabulary cannot
    read: ``[UNK]``, a single non-ASCII character (what Chinese text becomes), or a one-character
    piece of a word split into three or more pieces (what Cyrillic text becomes). 0.0 for an
    expression without word pieces.

    Args:
        tokens: the encoding's token strings (``[CLS]`` / ``[SEP]`` included, their word id None).
        word_ids: the word index of each token (``tokenizers`` ``Encoding.word_ids``).
    """
    words: dict[int, list[str]] = {}
    for tok, word in zip(tokens, word_ids):
        if word is not None:
            words.setdefault(word, []).append(tok[2:] if tok.startswith("##") else tok)
    pieces = [(p, len(ps)) for ps in words.values() for p in ps]
    if not pieces:
        return 0.0
    bad = sum(p == "[UNK]" or (len(p) == 1 and (not p.isascii() or n >= 3)) for p, n in pieces)
    return bad / len(pieces)


class ExpressionTokenizer:
    """Tokenize expressions to MiniLM ids, truncated to ``max_len`` tokens with a warning.

    Args:
        tokenizer_file: the bundle's ``tokenizer.json``.
        max_len: token budget including [CLS] and [SEP] (manifest ``max_text_len``).
    """

    def __init__(self, tokenizer_file: str | Path, max_len: int):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.max_len = int(max_len)

    def ids(self, text: str) -> list[int]:
        """Token ids of one expression ([CLS] ... [SEP]), at most ``max_len`` of them.

        Raises:
            TypeError: ``text`` is not a string. ValueError: it has no visible character
                (:func:`instancevg.runtime.expressions.check_expression`).
        """
        enc = self.tokenizer.encode(check_expression(text))
        seq = enc.ids
        if unreadable_share(enc.tokens, enc.word_ids) > 0.5:
            warnings.warn(f"most words of {text[:60]!r} are unknown to the English text encoder ([UNK] or "
                          "split into single characters): expect 'no target'", stacklevel=3)
        if len(seq) > self.max_len:
            warnings.warn(f"expression truncated from {len(seq)} to {self.max_len} tokens: {text[:60]!r}",
                          stacklevel=3)
            seq = seq[: self.max_len - 1] + [seq[-1]]  # keep [SEP]
        return seq

    @staticmethod
    def pad(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Right-pad id lists -> (input_ids, attention_mask), both (B, L) int64, L = longest."""
        length = max(len(s) for s in seqs)
        ids = np.zeros((len(seqs), length), dtype=np.int64)
        mask = np.zeros((len(seqs), length), dtype=np.int64)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = s
            mask[i, : len(s)] = 1
        return ids, mask
