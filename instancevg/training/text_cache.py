"""Cache of frozen-text-encoder features per expression during training.

With ``freeze_text`` and no unfrozen MiniLM layer the text encoder is a fixed function of the
token ids, so the trainer computes each distinct expression's features once and reuses them
whenever the sample stream draws the expression again (generated COCO expressions repeat: "the
person", "the two cups"). Rows are keyed by their valid token ids; a batch's misses run through
the encoder together, under the caller's autocast, exactly as the uncached forward pass would.
"""
from __future__ import annotations

from collections import OrderedDict

import torch


class TextFeatureCache:
    """LRU cache of (n_i, 384) MiniLM features keyed by the n_i valid token ids of an expression.

    Args:
        encoder: a callable ``(ids (B, L) int64, mask (B, L)) -> (B, L, 384)`` (the model's
            ``encode_text``); must be deterministic (a frozen encoder in eval mode).
        max_entries: expressions kept (least recently used dropped first); 100k entries of 12
            tokens take about 1.8 GB in float32.

    Attributes:
        hits, misses: rows served from the cache and rows encoded.
    """

    def __init__(self, encoder, max_entries: int = 100_000):
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.encoder, self.max_entries = encoder, max_entries
        self._rows: OrderedDict[tuple[int, ...], torch.Tensor] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    @torch.no_grad()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask (B, L) (right-padded, mask 1 = valid) -> (B, L, 384) features
        on the ids' device, zeros at padded positions.

        Raises:
            ValueError: a mask that is not right-padded (a valid token after a padded one).
        """
        lengths = attention_mask.long().sum(1).tolist()
        if not torch.equal(attention_mask.long(), (torch.arange(input_ids.shape[1], device=input_ids.device)[None]
                                                   < torch.tensor(lengths, device=input_ids.device)[:, None]).long()):
            raise ValueError("TextFeatureCache needs right-padded attention masks")
        keys = [tuple(row[:n].tolist()) for row, n in zip(input_ids, lengths)]
        missing = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if missing:
            width = max(len(k) for k in missing)
            ids = torch.zeros(len(missing), width, dtype=input_ids.dtype, device=input_ids.device)
            mask = torch.zeros_like(ids)
            for i, k in enumerate(missing):
                ids[i, :len(k)] = torch.tensor(k, dtype=ids.dtype)
                mask[i, :len(k)] = 1
            feats = self.encoder(ids, mask)
            for i, k in enumerate(missing):
                self._rows[k] = feats[i, :len(k)].detach().clone()
            self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        first = self._rows[keys[0]]
        out = torch.zeros(len(keys), input_ids.shape[1], first.shape[-1], dtype=first.dtype, device=input_ids.device)
        for i, k in enumerate(keys):
            self._rows.move_to_end(k)
            out[i, :len(k)] = self._rows[k]
        while len(self._rows) > self.max_entries:
            self._rows.popitem(last=False)
        return out
