"""Data SPECs, mixtures, per-epoch permutations, copy-paste scenes and COCO grounding datasets."""
from __future__ import annotations

import json

import numpy as np
import pytest

from instancevg.config import get_preset
from instancevg.data.readers.coco import CocoInstances
from instancevg.data.generators.copy_paste import CopyPasteComposer
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
    assert DataSpec.parse("procedural:7@2") == DataSpec("procedural", "7", None, 2.0)
    assert DataSpec.parse("procedural") == DataSpec("procedural", "0")  # the bare word: seed 0, in memory
    for bad, msg in [("foo:x", "unknown kind 'foo'"), ("coco:", "missing PATH"), ("coco:x@-1", "must be positive"),
                     ("coco:x@abc", "is not a number"), ("nowhere", "expected KIND:PATH"),
                     ("procedural:d:x", "takes only a directory"), ("parts:x", "non-negative integer seed")]:
        with pytest.raises(ValueError, match=msg) as exc:
            DataSpec.parse(bad)
        text = str(exc.value)
        assert f"data source {bad!r}" in text and "\n" not in text  # one line naming the SPEC


def test_bare_directory_is_procedural(tmp_path):
    (tmp_path / "dataset.json").write_text("{}")
    assert DataSpec.parse(str(tmp_path)) == DataSpec("procedural", str(tmp_path))
    assert DataSpec.parse(str(tmp_path / "dataset.json")) == DataSpec("procedural", str(tmp_path / "dataset.json"))
    with pytest.raises(ValueError, match="make-data"):  # a directory without dataset.json says how to make one
        DataSpec.parse(str(tmp_path / "empty"))


# every kind the README documents, in its order
DOCUMENTED_KINDS = ("grefcoco", "refcoco", "refcoco+", "refcocog", "refzom", "coco", "copy-paste", "copy-paste-groups",
                    "procedural", "parts")


def test_every_kind_is_registered_and_unknown_kinds_list_them():
    from instancevg.data.sources import KINDS, get_kind, kinds_usage

    assert KINDS == DOCUMENTED_KINDS
    for name in DOCUMENTED_KINDS:
        kind = get_kind(name)
        assert kind.name == name and kind.usage.startswith(f"{name}:") and kind.usage in kinds_usage()
        assert callable(kind.train) and callable(kind.eval) and callable(kind.samples) and callable(kind.files)
    assert [k for k in DOCUMENTED_KINDS if not get_kind(k).has_val] == ["copy-paste", "copy-paste-groups"]
    for bad in ("foo:x", "rfcoco:/d"):
        with pytest.raises(ValueError) as exc:
            DataSpec.parse(bad)
        assert all(repr(k) in str(exc.value) for k in DOCUMENTED_KINDS)
    with pytest.raises(ValueError, match=r"data source 'foo:x': unknown kind 'foo'; known kinds: \['grefcoco'"):
        eval_dataset(DataSpec("foo", "x"), get_preset("edge-tiny"), "val")  # a hand-made DataSpec too


def test_procedural_seed_renders_what_make_data_writes(tmp_path):
    """procedural:SEED evaluates, in memory, the records `make-data --seed SEED` writes, by default
    as many as make-data writes per split (--n-val 500, --n-test 1000)."""
    import cv2

    from instancevg.cli import main
    from instancevg.data.sources import eval_samples

    out = tmp_path / "d"
    assert main(["make-data", "--out", str(out), "--seed", "3", "--n-val", "2", "--n-test", "2"]) == 0
    written = json.loads((out / "dataset.json").read_text())
    config = get_preset("edge-tiny")
    spec = DataSpec.parse("procedural:3")
    rendered, read = eval_dataset(spec, config, "test", limit=2), eval_dataset(DataSpec.parse(str(out)), config, "test")
    assert len(rendered) == len(read) == 2
    for i, record in enumerate(written["test"]):
        a, b = rendered[i], read[i]
        assert a["text"] == b["text"] == record["expressions"][0]
        assert a["target"]["sample_id"] == record["image_id"] == f"test-{i:06d}"
        x, y, w, h = np.array([ann["bbox"] for ann in record["annotations"]]).reshape(-1, 4).T
        np.testing.assert_allclose(a["target"]["boxes_xyxy"].numpy(), np.stack([x, y, x + w, y + h], 1), atol=1e-4)
        np.testing.assert_array_equal(a["image"].numpy(), b["image"].numpy())
        np.testing.assert_array_equal(a["target"]["union_full"], b["target"]["union_full"])
    raw = list(eval_samples(spec, "test", 2))
    for sample, record in zip(raw, written["test"]):
        png = cv2.cvtColor(cv2.imread(str(out / record["file_name"])), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(sample.image, png)
        assert sample.text == record["expressions"][0] and len(sample.boxes) == len(sample.masks)
        assert sample.masks.shape[1:] == png.shape[:2] and sample.masks.dtype == bool
    assert len(eval_dataset(spec, config, "val")) == 500 and len(eval_dataset(spec, config, "test")) == 1000
    assert spec.annotation_files() == [] and DataSpec.parse(str(out)).annotation_files() == [out / "dataset.json"]
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        eval_dataset(spec, config, "dev")


def test_eval_samples_are_the_eval_items_for_coco_and_released_data(coco_dir, tmp_path):
    from instancevg.data.sources import eval_samples

    config = get_preset("edge-tiny")
    for spec, split in [(DataSpec("coco", str(coco_dir)), "val"),
                        (DataSpec("grefcoco", str(write_grefcoco(tmp_path / "g"))), "train")]:
        items, raw = eval_dataset(spec, config, split), list(eval_samples(spec, split))
        # coco: 2 val images x 4 draws; grefcoco: 4 train sentences
        assert len(raw) == len(items) == {"coco": 2 * 4, "grefcoco": 4}[spec.kind]
        for sample, item in zip(raw, items):
            assert sample.text == item["text"] and sample.image.dtype == np.uint8 and sample.image.ndim == 3
            np.testing.assert_allclose(sample.boxes, item["target"]["boxes_xyxy"].numpy())
            union = sample.masks.any(0) if len(sample.masks) else np.zeros(sample.image.shape[:2], bool)
            np.testing.assert_array_equal(union, item["target"]["union_full"])
        assert len(list(eval_samples(spec, split, limit=3))) == 3
    with pytest.raises(ValueError, match="training only"):
        eval_samples(DataSpec("copy-paste", str(coco_dir)), "val")


def test_export_tools_take_any_spec(coco_dir):
    """export/evaluate_bundle.py, parity.py and calibration.py read coco: (and any SPEC) as `instancevg eval` does."""
    from instancevg.export.calibration import calibration_samples
    from instancevg.export.evaluate_bundle import load_samples
    from instancevg.export.parity import load_test_dataset

    config = get_preset("edge-tiny")
    spec = f"coco:{coco_dir}"
    items = eval_dataset(DataSpec.parse(spec), config, "val")
    scored = list(load_samples(spec, "val"))
    assert [t for _, t, _, _ in scored] == [items[i]["text"] for i in range(len(items))] and len(scored) == 8
    held_out = load_test_dataset(config, spec, 3, split="val")
    assert [held_out[i]["text"] for i in range(len(held_out))] == [items[i]["text"] for i in range(3)]
    calib = list(calibration_samples(spec, 5, "val"))
    assert [t for _, t in calib] == [items[i]["text"] for i in range(5)] and calib[0][0].dtype == np.uint8
    with pytest.raises(ValueError, match="test split"):
        calibration_samples(spec, 5, "test")
    rendered = list(load_samples("procedural", "val", 2))  # the bare word still means procedural:0
    assert [t for _, t, _, _ in rendered] == [s.text for s in list(load_samples("procedural:0", "val", 2))]
    with pytest.raises(ValueError, match="data source 'foo:x'"):
        load_samples("foo:x")


def test_validation_sources_and_metrics_home(coco_dir, tmp_path):
    from instancevg.data.sources import metrics_dir, validation_sources

    specs = [DataSpec.parse(f"coco:{coco_dir}@2"), DataSpec.parse(f"copy-paste:{coco_dir}"), DataSpec.parse("parts:1"),
             DataSpec.parse(f"coco:{coco_dir}")]
    assert validation_sources(specs) == [DataSpec("coco", str(coco_dir)), DataSpec("parts", "1")]
    whole = write_instances(tmp_path / "nosplit", tmp_path / "nosplit")  # no split.json: its val is its train
    with pytest.raises(ValueError, match="no split.json"):
        validation_sources([DataSpec("coco", str(whole))])
    assert metrics_dir(DataSpec.parse(f"procedural:{tmp_path}")) == tmp_path
    assert metrics_dir(DataSpec.parse("procedural:0")) is None
    assert metrics_dir(DataSpec.parse(f"coco:{coco_dir}")) is None


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
    from instancevg.data.readers.refs import load_refs

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


def test_copy_paste_groups_paste_one_category_two_to_four_times(coco_dir, monkeypatch):
    from instancevg.data.generators import copy_paste

    monkeypatch.setattr(copy_paste, "PHOTO_BACKGROUND_RATE", 0.0)  # texture backgrounds: every object is pasted
    train = CocoInstances(coco_dir).load_split("train")
    assert len({o.category for im in train for o in im.objects}) >= 2  # a plain scene could mix categories
    composer = CopyPasteComposer(train, groups=True)
    counts = []
    for g in range(12):
        scene = composer.compose(np.random.default_rng([1, g]))
        assert len(set(scene.categories)) == 1, scene.categories
        counts.append(len(scene.categories))
    assert min(counts) >= 2 and max(counts) <= 4 and len(set(counts)) > 1
    with pytest.raises(ValueError, match="max_paste >= 2"):
        CopyPasteComposer(train, max_paste=1, groups=True)
    spec = DataSpec.parse(f"copy-paste-groups:{coco_dir}@0.5")
    assert spec.kind == "copy-paste-groups" and spec.weight == 0.5
