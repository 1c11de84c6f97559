"""InstanceVG (PyTorch) and Grounder (bundle, no torch) follow one contract
(runtime/predictor.py): the same verbs, arguments, defaults and answers."""
import inspect

import cv2
import numpy as np
import pytest
import torch

from instancevg.api import InstanceVG
from instancevg.runtime import Grounder, GroundingResult, ImageFeatures, Predictor, TextFeatures
from instancevg.runtime.predictor import DEFAULT_CHANNEL_ORDER

VERBS = ("encode_text", "encode_image", "ground_features", "ground", "track")
TEXTS = ["the red circle", "all squares"]


@pytest.fixture(scope="module")
def predictors(tiny_export_model, tiny_bundle):
    return (InstanceVG(tiny_export_model, torch.device("cpu")),
            Grounder.from_bundle(tiny_bundle, backend="onnxruntime", threads=1))


def test_same_verbs_arguments_and_defaults(predictors):
    torch_side, runtime_side = predictors
    assert DEFAULT_CHANNEL_ORDER == "bgr"
    for p in predictors:
        assert isinstance(p, Predictor)
    for verb in VERBS:
        a = inspect.signature(getattr(torch_side, verb)).parameters
        b = inspect.signature(getattr(runtime_side, verb)).parameters
        assert [(n, v.default) for n, v in a.items()] == [(n, v.default) for n, v in b.items()], verb
    assert torch_side.decision == runtime_side.decision  # the bundle carries the model's Decision


def test_same_answers_through_every_verb(predictors):
    rgb = np.zeros((90, 120, 3), np.uint8)
    cv2.circle(rgb, (40, 45), 18, (230, 20, 20), -1)  # a red disc: red only in RGB order
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    answers = []
    for p in predictors:
        image = p.encode_image(bgr)
        text = p.encode_text(TEXTS)
        assert isinstance(image, ImageFeatures) and image.image_size == (90, 120)
        assert isinstance(text, TextFeatures) and text.texts == tuple(TEXTS)
        staged = p.ground_features(image, text)
        listed = p.ground(bgr, TEXTS)
        single = p.ground(rgb, TEXTS[0], channel_order="rgb")
        assert isinstance(single, GroundingResult) and isinstance(listed, list) and len(listed) == 2
        np.testing.assert_allclose(single.extra["all_scores"], listed[0].extra["all_scores"], atol=1e-5)
        np.testing.assert_allclose(staged[1].extra["all_scores"], listed[1].extra["all_scores"], atol=1e-5)
        swapped = p.ground(rgb, TEXTS[0])  # an RGB array read as BGR is another image
        assert not np.allclose(swapped.extra["all_scores"], single.extra["all_scores"], atol=1e-6)
        answers.append(listed)
    for a, b in zip(*answers):  # PyTorch and ONNX Runtime agree
        np.testing.assert_allclose(a.extra["all_scores"], b.extra["all_scores"], atol=1e-4)


def test_channel_order_is_checked(predictors):
    for p in predictors:
        with pytest.raises(ValueError, match="channel_order must be one of"):
            p.ground(np.zeros((8, 8, 3), np.uint8), "x", channel_order="BGR")
        with pytest.raises(ValueError, match="channel_order must be one of"):
            p.track("x", channel_order="yuv")
