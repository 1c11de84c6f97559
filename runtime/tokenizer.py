"""WordPiece tokenization of referring expressions with MiniLM's ``tokenizer.json`` (``tokenizers``
library, no torch): the one implementation of the truncation and padding rules, used by the
runtime and wrapped as torch tensors by ``instancevg.modeling.text_encoder.TextTokenizer``."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .expressions import check_expression


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
        seq = self.tokenizer.encode(check_expression(text)).ids
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
