"""The one Decision (thresholds and box/mask rule) and the typed Manifest (runtime/decision.py,
runtime/manifest.py)."""
import inspect
import json
import shutil

import pytest

from instancevg.config import ModelConfig
from instancevg.postprocess import postprocess
from instancevg.runtime.bundle import Bundle, BundleError
from instancevg.runtime.decision import DEFAULT_DECISION, Decision
from instancevg.runtime.manifest import MANIFEST_NAME, Manifest
from instancevg.runtime.postprocess import postprocess_one


def test_one_set_of_defaults():
    # the values the model card and the GREC protocol name: score > 0.7, mask 0.5, NMS 0.7, agree
    assert Decision() == Decision(0.7, 0.5, 0.7, "agree")
    assert ModelConfig().decision == Decision()
    for fn in (postprocess, postprocess_one):  # the two post-processings default to the same object
        assert inspect.signature(fn).parameters["decision"].default is DEFAULT_DECISION


@pytest.mark.parametrize("kwargs, match", [
    ({"score": 1.5}, r"Decision.score must be in \[0, 1\]"),
    ({"score": float("nan")}, "Decision.score must be a number"),
    ({"mask": 0.0}, r"Decision.mask must be in \(0, 1\)"),
    ({"mask": True}, "Decision.mask must be a number"),
    ({"nms_iou": 0.0}, "Decision.nms_iou"),
    ({"consistency": "snap"}, "Decision.consistency"),
])
def test_bad_decisions_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Decision(**kwargs)


def test_model_config_names_its_own_field():
    with pytest.raises(ValueError, match=r"ModelConfig.score_threshold must be in \[0, 1\]"):
        ModelConfig(score_threshold=2.0)
    cfg = ModelConfig().with_decision(Decision(score=0.5, consistency="off"))
    assert (cfg.score_threshold, cfg.consistency, cfg.nms_iou) == (0.5, "off", 0.7)


def test_manifest_thresholds_round_trip_and_legacy_defaults():
    d = Decision(0.6, 0.4, 0.8, "box_clip")
    assert Decision.from_manifest(d.to_manifest()) == d
    # a bundle exported before duplicate suppression and the consistency rule existed
    assert Decision.from_manifest({"score": 0.7, "mask": 0.5}) == Decision(0.7, 0.5, 1.0, "off")
    with pytest.raises(ValueError, match="field 'thresholds.mask' is missing"):
        Decision.from_manifest({"score": 0.7})
    with pytest.raises(ValueError, match="unknown field.*thresholds.scroe"):
        Decision.from_manifest({"score": 0.7, "mask": 0.5, "scroe": 0.1})


def test_manifest_round_trips_the_exported_json(tiny_bundle):
    raw = json.loads((tiny_bundle / MANIFEST_NAME).read_text())
    m = Manifest.from_dict(raw)
    assert m.decision == Decision.from_manifest(raw["thresholds"])
    assert m.input.image_size == raw["input"]["image_size"] and m.graphs["grounder"].outputs == tuple(
        raw["graphs"]["grounder"]["outputs"])
    assert json.loads(json.dumps(m.to_dict())) == raw


def test_manifest_write_keeps_unknown_keys_and_recomputes_checksums(tiny_bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    raw = json.loads((copy / MANIFEST_NAME).read_text())
    raw["made_by_a_later_version"] = {"x": 1}
    (copy / MANIFEST_NAME).write_text(json.dumps(raw))
    (copy / "notes.txt").write_text("added after export")
    m = Manifest.read(copy)
    assert m.extra == {"made_by_a_later_version": {"x": 1}}
    with pytest.raises(BundleError, match="notes.txt is not listed"):
        Bundle.open(copy).file("notes.txt")
    m.write(copy)
    again = json.loads((copy / MANIFEST_NAME).read_text())
    assert again["made_by_a_later_version"] == {"x": 1}
    assert len(again["files"]["notes.txt"]["sha256"]) == 64
    assert Bundle.open(copy).file("notes.txt").read_text() == "added after export"
    assert not list(copy.glob("*.tmp*"))  # nothing left over from the atomic write
