"""Training side of MagNet's Mask Grounding (Chng et al., CVPR 2024): which words are masked, and
the two loss terms (the head is :class:`instancevg.modeling.mask_grounding.MaskGroundingHead`).

* :func:`mask_words` replaces a random fraction of an expression's words by ``[MASK]``
  (at least one word per expression; [CLS], [SEP] and padding never). The rate is BERT's 15 %,
  as the ovr-cnn code MagNet's authors cite for their masking
  (``maskrcnn_benchmark/modeling/language_backbone/word_embedding.py``); unlike it, a chosen word
  is always replaced by ``[MASK]`` (ovr-cnn keeps 10 % unchanged);
* :func:`mask_grounding_loss`: cross-entropy of the masked words' predictions over the
  vocabulary, on samples that have a target (a no-target expression's words cannot be read off
  an empty mask);
* :func:`alignment_loss`: the cross-modal alignment term, a symmetric InfoNCE between the
  mask-pooled visual feature and the sentence feature of each sample with a target, the other
  samples of the batch being the negatives.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..modeling.mask_grounding import MaskGroundingOutput

# Fraction of an expression's words that are masked (BERT's masked-language-model rate).
MASK_RATIO = 0.15
# Temperature of the alignment InfoNCE (CLIP's initial value).
ALIGNMENT_TEMPERATURE = 0.07


def word_masking_ids(tokenizer) -> tuple[int, tuple[int, ...]]:
    """(``[MASK]`` id, ids never masked) of a ``tokenizers.Tokenizer`` with BERT's special tokens.

    Raises:
        ValueError: if the tokenizer lacks one of [MASK], [CLS], [SEP], [PAD].
    """
    ids = {t: tokenizer.token_to_id(t) for t in ("[MASK]", "[CLS]", "[SEP]", "[PAD]")}
    missing = [t for t, i in ids.items() if i is None]
    if missing:
        raise ValueError(f"the tokenizer has no {missing} token(s): Mask Grounding needs BERT's special tokens")
    return ids["[MASK]"], (ids["[CLS]"], ids["[SEP]"], ids["[PAD]"])


def mask_words(input_ids: torch.Tensor, attention_mask: torch.Tensor, mask_id: int, special_ids: tuple[int, ...],
               generator: torch.Generator, ratio: float = MASK_RATIO) -> torch.Tensor:
    """Masked copy of a batch of token ids.

    Args:
        input_ids: (B, L) int64 token ids.
        attention_mask: (B, L) 1 = valid token.
        mask_id: the tokenizer's ``[MASK]`` id.
        special_ids: ids never masked ([CLS], [SEP], [PAD]).
        generator: CPU generator the choice is drawn from (reproducible training).
        ratio: probability of masking each word; an expression with words always gets at least
            one masked.

    Returns:
        (B, L) int64 ids, equal to ``input_ids`` except at the masked positions.

    Raises:
        ValueError: if ``ratio`` is not in (0, 1].
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"mask ratio must be in (0, 1], got {ratio}")
    words = attention_mask.bool().cpu() & ~torch.isin(input_ids.cpu(), torch.tensor(special_ids))
    draw = torch.rand(input_ids.shape, generator=generator)
    chosen = words & (draw < ratio)
    # at least one word per expression: the word with the smallest draw
    first = torch.where(words, draw, torch.full_like(draw, 2.0)).argmin(dim=1)
    has_words = words.any(dim=1)
    chosen[has_words, first[has_words]] = True
    out = input_ids.clone()
    out[chosen.to(input_ids.device)] = mask_id
    return out


def mask_grounding_loss(mg: MaskGroundingOutput, has_target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the masked words of the samples with a target (0 when there are none).

    Args:
        mg: the head's outputs.
        has_target: (B,) bool.
    """
    keep = has_target.to(mg.word_sample.device)[mg.word_sample]
    if not keep.any():
        return mg.word_logits.sum() * 0.0
    return F.cross_entropy(mg.word_logits[keep].float(), mg.word_targets[keep])


def alignment_loss(mg: MaskGroundingOutput, has_target: torch.Tensor,
                   temperature: float = ALIGNMENT_TEMPERATURE) -> torch.Tensor:
    """Symmetric InfoNCE between mask-pooled visual and sentence features of the samples with a
    target; 0 when fewer than two such samples are in the batch (no negatives).

    Args:
        mg: the head's outputs (``visual`` and ``text`` (B, d)).
        has_target: (B,) bool.
        temperature: softmax temperature of the cosine similarities.
    """
    keep = has_target.to(mg.visual.device)
    if int(keep.sum()) < 2:
        return mg.visual.sum() * 0.0
    v = F.normalize(mg.visual[keep].float(), dim=-1)
    t = F.normalize(mg.text[keep].float(), dim=-1)
    logits = v @ t.t() / temperature
    labels = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))
