"""Training's text-feature cache (instancevg.training.text_cache): cached features equal the
frozen encoder's, repeated expressions are not re-encoded, the LRU bound holds."""
import pytest
import torch

from instancevg.training.text_cache import TextFeatureCache


def test_cached_features_equal_the_encoder(tiny_model, tokenizer):
    calls = []

    def encoder(ids, mask):
        calls.append(ids.shape[0])
        return tiny_model.encode_text(ids, mask)

    cache = TextFeatureCache(encoder)
    texts = ["the red cube", "all circles left of the blue star", "the red cube"]
    ids, mask = tokenizer(texts)
    with torch.no_grad():
        expected = tiny_model.encode_text(ids, mask)
    got = cache(ids, mask)
    assert calls == [2]  # the repeated expression is encoded once
    valid = mask.bool()
    torch.testing.assert_close(got[valid], expected[valid], atol=1e-5, rtol=1e-5)
    assert torch.equal(got[~valid], torch.zeros_like(got[~valid]))
    ids2, mask2 = tokenizer(["all circles left of the blue star"])  # another padding width
    again = cache(ids2, mask2)
    assert calls == [2] and (cache.hits, cache.misses) == (2, 2)
    torch.testing.assert_close(again[0, :int(mask2.sum())], got[1, :int(mask2.sum())])


def test_lru_bound_and_padding_check(tiny_model, tokenizer):
    cache = TextFeatureCache(tiny_model.encode_text, max_entries=2)
    for text in ("a", "b", "c"):
        cache(*tokenizer([f"the {text} cube"]))
    assert len(cache) == 2
    ids, mask = tokenizer(["the a cube"])
    cache(ids, mask)
    assert cache.misses == 4  # "the a cube" was evicted first
    ids, mask = tokenizer(["the a cube", "the much longer blue cube over there"])
    with pytest.raises(ValueError, match="right-padded"):
        cache(ids, mask.flip(1))
    with pytest.raises(ValueError, match="max_entries"):
        TextFeatureCache(tiny_model.encode_text, max_entries=0)
