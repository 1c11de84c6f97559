"""One check of referring expressions for the PyTorch API, its tokenizer and the runtime
(`runtime/expressions.py`): types, empty and invisible expressions."""
from __future__ import annotations

import numpy as np
import pytest

from instancevg.runtime.expressions import check_expression, expression_list

INVISIBLE = ["", "   ", "\t\n", "\u200b", "\ufeff", "\u00ad", "\x00", "\x07\x1b", "\u200b \ufeff\u2060"]


@pytest.mark.parametrize("text", INVISIBLE)
def test_invisible_expressions_are_empty(text):
    with pytest.raises(ValueError, match="empty"):
        check_expression(text)


@pytest.mark.parametrize("text, want", [("the cup", "the cup"), ("  the cup\n", "the cup"), ("42", "42"),
                                        ("\u200bcup", "\u200bcup"), ("?", "?"), ("猫", "猫")])
def test_visible_expressions_pass(text, want):
    assert check_expression(text) == want


@pytest.mark.parametrize("value, match", [(b"the cup", "got bytes .*decode"), (None, "got NoneType"),
                                          (3, "got int"), ({"the cup": 1}, "got dict"), ({"a"}, "got set")])
def test_non_lists_are_type_errors(value, match):
    with pytest.raises(TypeError, match=match):
        expression_list(value)


def test_lists():
    assert expression_list("the cup") == ["the cup"]          # one str is one expression, not characters
    assert expression_list(("a", "b")) == ["a", "b"]
    with pytest.raises(ValueError, match="empty list"):
        expression_list([])
    with pytest.raises(ValueError, match="expression 2 is empty"):
        expression_list(["a", "\u200b"])
    with pytest.raises(TypeError, match="expression 2 must be a str, got bytes"):
        expression_list(["a", b"b"])


@pytest.fixture(scope="module")
def api_model(tiny_model):
    import torch

    from instancevg.api import InstanceVG

    return InstanceVG(tiny_model, torch.device("cpu"))


def test_api_ground_str_gives_one_result_list_gives_a_list(api_model):
    image = np.zeros((40, 60, 3), np.uint8)
    rs = api_model.ground(image, ["the cross"])
    assert isinstance(rs, list) and len(rs) == 1 and rs[0].text == "the cross"
    assert rs[0].to_dict() == api_model.ground(image, "the cross").to_dict()


@pytest.mark.parametrize("text, error, match", [
    ([], ValueError, "empty"),
    (["the cross", 3], TypeError, "int"),
    (b"the cross", TypeError, "bytes"),
    ({"the cross": 1}, TypeError, "dict"),
    (None, TypeError, "NoneType"),
    ("\u200b", ValueError, "empty"),
])
def test_api_ground_rejects_with_the_type_named(api_model, text, error, match):
    with pytest.raises(error, match=match):
        api_model.ground(np.zeros((40, 60, 3), np.uint8), text)


def test_torch_tokenizer_uses_the_same_check(tokenizer):
    with pytest.raises(ValueError, match="empty"):
        tokenizer(["\ufeff"])
    with pytest.raises(TypeError, match="got bytes"):
        tokenizer([b"x"])


def test_runtime_uses_the_same_check(tiny_bundle):
    from instancevg.runtime import Grounder

    g = Grounder.from_bundle(tiny_bundle, backend="onnxruntime", threads=1)
    frame = np.zeros((40, 60, 3), np.uint8)
    for value, error, match in [(b"x", TypeError, "bytes"), (None, TypeError, "NoneType"), (3, TypeError, "int"),
                                ({"the cup": 1}, TypeError, "dict"), ("\x00", ValueError, "empty")]:
        with pytest.raises(error, match=match):
            g.ground(frame, value)
    assert [r.text for r in g.ground(frame, ("a", "b"))] == ["a", "b"]


@pytest.mark.parametrize("text,warned", [
    ("очень красная чашка", True), ("白色的杯子", True), ("the white cup", False), ("a mug", False),
    ("the cup à gauche", False), ("the 2 cups on the left", False)])
def test_unreadable_expressions_warn_in_one_line(text, warned):
    import warnings

    from instancevg.modeling.text_encoder import minilm_dir
    from instancevg.runtime.tokenizer import ExpressionTokenizer

    tok = ExpressionTokenizer(minilm_dir() / "tokenizer.json", 40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tok.ids(text)
    messages = [str(w.message) for w in caught if "unknown to the English text encoder" in str(w.message)]
    assert len(messages) == int(warned)
    assert all("\n" not in m for m in messages)
