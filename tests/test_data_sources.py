"""Data SPECs, mixtures, per-epoch permutations, copy-paste scenes and COCO grounding datasets."""
from __future__ import annotations

import json

import numpy as np
import pytest

from instancevg.config import get_preset
from instancevg.data.coco import CocoInstances
from instancevg.data.copy_paste import CopyPasteComposer
from instancevg.data.dataset import CocoGroundingDataset, CopyPasteDataset
from instancevg.data.mixture import EpochPermutation, MixtureDataset
from instancevg.data.sources import DataSpec, eval_dataset, train_dataset
from released_formats import write_grefcoco, write_instances


@pytest.fixture
def coco_dir(tmp_path):
    """Tiny COCO instances with a split.json: image 1 train, images 2 and 3 val."""
    path = write_instances(tmp_path / "coco", tmp_path / "coco")
    (tmp_path / "coco" / "split.json").write_text(json.dumps({"train": [1], "val": [2, 3]}))
    return path


def test_spec_parsing():
    s = DataSpec.parse("refcocog:/d/ref:umd@0.5")
    assert (s.kind, s.path, s.extra, s.weight) == ("refcocog", "/d/ref", "umd", 0.5)
    assert str(s) == "refcocog:/d/ref:umd@0.5"
    assert DataSpec.parse("coco:a/instances.json:a/img") == DataSpec("coco", "a/instances.json", "a/img", 1.0)
    for bad, msg in [("foo:x", "unknown kind 'foo'"), ("coco:", "missing PATH"), ("coco:x@-1", "must be positive"),
                     ("coco:x@abc", "is not a number"), ("nowhere", "expected KIND:PATH"),
                     ("procedural:d:x", "takes only a directory")]:
        with pytest.raises(ValueError, match=msg):
            DataSpec.parse(bad)


def test_bare_directory_is_procedural(tmp_path):
    (tmp_path / "dataset.json").write_text("{}")
    assert DataSpec.parse(str(tmp_path)) == DataSpec("procedural", str(tmp_path))


def test_epoch_permutation_covers_each_epoch_once():
    order = EpochPermutation(7, seed=3)
    first = [order(g) for g in range(7)]
    second = [order(g) for g in range(7, 14)]
    assert sorted(first) == sorted(second) == list(range(7)) and first != second
    assert order(2) == first[2]  # going back to an earlier epoch recomputes it


class _Const:
    def __init__(self, v):
        self.v = v

    def __getitem__(self, g):
        return (self.v, g)


def test_mixture_follows_weights_and_is_deterministic():
    mix = MixtureDataset([_Const("a"), _Const("b")], [3.0, 1.0], seed=0)
    draws = [mix[g] for g in range(4000)]
    assert all(g == i for i, (_, g) in enumerate(draws))  # parts see the global index
    share = np.mean([v == "a" for v, _ in draws])
    assert 0.72 < share < 0.78
    assert draws == [MixtureDataset([_Const("a"), _Const("b")], [3.0, 1.0], seed=0)[g] for g in range(4000)]
    with pytest.raises(ValueError, match="one weight per source"):
        MixtureDataset([_Const("a")], [1.0, 2.0], 0)


def test_copy_paste_scene_visible_masks_and_train_only(coco_dir):
    inst = CocoInstances(coco_dir)
    train = inst.load_split("train")
    composer = CopyPasteComposer(train)
    assert {composer.images[i].image_id for i, _ in composer.sources} == {1}  # val images are never a source
    for g in range(10):
        a = composer.compose(np.random.default_rng([0, g]))
        b = composer.compose(np.random.default_rng([0, g]))
        np.testing.assert_array_equal(a.image, b.image)
        assert a.masks.shape[0] == len(a.categories) == len(a.crowd) == len(a.visible_fraction)
        assert a.masks.shape[1:] == a.image.shape[:2]
        if len(a.masks) > 1:  # visible masks never overlap: later pastes hide what is below
            assert a.masks.sum(0).max() <= 1
        assert a.visible_fraction[-1] == 1.0 and all(0 <= v <= 1 for v in a.visible_fraction)


def test_coco_grounding_items_and_sources(coco_dir, tmp_path):
    config = get_preset("edge-tiny")
    spec = DataSpec("coco", str(coco_dir))
    val = eval_dataset(spec, config, "val")
    assert len(val) == 2 * 4
    item = val[0]
    assert item["image"].shape == (3, config.image_size, config.image_size) and item["text"]
    t = item["target"]
    assert t["boxes"].shape[0] == t["masks"].shape[0] and t["union_full"].shape == (48, 64)
    again = eval_dataset(spec, config, "val")  # the same set every time
    assert [val[i]["text"] for i in range(8)] == [again[i]["text"] for i in range(8)]
    with pytest.raises(ValueError, match="training only"):
        eval_dataset(DataSpec("copy-paste", str(coco_dir)), config, "val")
    stream = train_dataset([spec, DataSpec("copy-paste", str(coco_dir), None, 0.5)], config, seed=0)
    items = [stream[g] for g in range(6)]
    assert all(it["image"].shape == (3, config.image_size, config.image_size) for it in items)
    assert {it["target"]["sample_id"].split("-")[0] for it in items} <= {"coco", "copy"}
    refs = eval_dataset(DataSpec("grefcoco", str(write_grefcoco(tmp_path / "g"))), config, "train")
    assert len(refs) == 4 and refs[3]["target"]["boxes"].shape == (0, 4)


def test_coco_dataset_draws_vary_by_index(coco_dir):
    config = get_preset("edge-tiny")
    inst = CocoInstances(coco_dir)
    data = CocoGroundingDataset(config, inst.load_split("train"), inst.category_names, seed=0, length=2**62,
                                shuffle=True)
    texts = {data[g]["text"] for g in range(30)}
    assert len(texts) > 3
    cp = CopyPasteDataset(config, CopyPasteComposer(inst.load_split("train")), inst.category_names, seed=0)
    assert cp[5]["text"] == cp[5]["text"]


def test_make_data_from_coco_writes_grefcoco_that_matches_coco_eval(coco_dir, tmp_path, capsys):
    """`make-data --from-coco` writes released-format refs whose samples are the coco: eval set."""
    from instancevg.cli import main
    from instancevg.data.refs import load_refs

    out = tmp_path / "g"
    assert main(["make-data", "--from-coco", str(coco_dir), "--images", str(coco_dir.parent), "--out", str(out)]) == 0
    assert f"--data grefcoco:{out}:{coco_dir.parent}" in capsys.readouterr().err
    refs = json.loads((out / "grefcoco" / "grefs(unc).json").read_text())
    assert {r["split"] for r in refs} == {"train", "val"} and len(refs) == (1 + 2) * 4
    for r in refs:
        assert set(r) >= {"ref_id", "image_id", "ann_id", "category_id", "split", "sentences", "sent_ids", "no_target",
                          "file_name"}
        assert (r["ann_id"] == [-1]) == r["no_target"] and len(r["ann_id"]) == len(r["category_id"])
    config = get_preset("edge-tiny")
    via_refs = eval_dataset(DataSpec("grefcoco", str(out), str(coco_dir.parent)), config, "val")
    via_coco = eval_dataset(DataSpec("coco", str(coco_dir)), config, "val")
    assert len(via_refs) == len(via_coco) == 8
    for i in range(8):
        a, b = via_refs[i], via_coco[i]
        assert a["text"] == b["text"]
        np.testing.assert_allclose(a["target"]["boxes_xyxy"], b["target"]["boxes_xyxy"])
        np.testing.assert_array_equal(a["target"]["union_full"], b["target"]["union_full"])
    assert len(load_refs("grefcoco", out, "train", image_root=coco_dir.parent)) == 4
    assert main(["make-data", "--from-coco", str(coco_dir), "--out", str(out)]) == 2  # --images is required


def test_evaluate_reports_per_category_rec_and_confident_false_positives(coco_dir, tiny_model):
    from instancevg.evaluation.evaluate import evaluate, format_table

    data = eval_dataset(DataSpec("coco", str(coco_dir)), tiny_model.config, "val")
    m = evaluate(tiny_model, data, batch_size=4, progress=False)
    items = [data[i]["target"] for i in range(len(data))]
    singles = [t["categories"][0] for t in items if len(t["categories"]) == 1]
    assert sum(v["n"] for v in m["REC per category"].values()) == len(singles) == m["REC"]["n_samples"]
    assert set(m["REC per category"]) == set(singles) <= {"person", "dog"}
    n_empty = sum(len(t["categories"]) == 0 for t in items)
    # a no-target sample is either answered "no target" (GREC N-acc) or is a confident false positive
    assert m["no-target FP"] + round(m["GREC"]["n_acc"] * n_empty) == n_empty
    assert "no-target FP (kept box)" in format_table(m)
