"""tools/coco_subset.py: nested train subsets of a COCO split for a learning curve over photos."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COCO_REAL = ROOT.parent / "shared" / "data" / "coco-real"

_spec = importlib.util.spec_from_file_location("coco_subset", ROOT / "tools" / "coco_subset.py")
coco_subset = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(coco_subset)


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "instances.json").write_text('{"images": [], "annotations": [], "categories": []}')
    (src / "split.json").write_text(json.dumps({"train": list(range(1, 21)), "val": [100, 101]}))
    return src / "instances.json"


def _written_split(tmp_path: Path, source: Path, n: int, seed: int = 0) -> dict:
    out = tmp_path / f"sub{n}-{seed}"
    assert coco_subset.main(["--instances", str(source), "--n-train", str(n), "--seed", str(seed),
                             "--out", str(out)]) == 0
    assert (out / "instances.json").read_bytes() == source.read_bytes()
    return json.loads((out / "split.json").read_text())


def test_subsets_are_nested_sized_and_keep_val(tmp_path):
    source = _source(tmp_path)
    small, large = _written_split(tmp_path, source, 5), _written_split(tmp_path, source, 12)
    assert len(small["train"]) == 5 and len(large["train"]) == 12
    assert set(small["train"]) < set(large["train"]) <= set(range(1, 21))
    assert small["val"] == large["val"] == [100, 101]
    assert _written_split(tmp_path, source, 20)["train"] == list(range(1, 21))
    assert _written_split(tmp_path, source, 5, seed=1)["train"] != small["train"]


@pytest.mark.parametrize("n", [0, 21])
def test_out_of_range_size_is_a_one_line_error(tmp_path, n):
    with pytest.raises(SystemExit, match=r"--n-train must be in 1\.\.20, got " + str(n)):
        coco_subset.main(["--instances", str(_source(tmp_path)), "--n-train", str(n), "--out", str(tmp_path / "o")])


def test_source_without_split_file_is_refused(tmp_path):
    (tmp_path / "instances.json").write_text("{}")
    with pytest.raises(SystemExit, match="needs a split.json"):
        coco_subset.main(["--instances", str(tmp_path / "instances.json"), "--n-train", "3", "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_malformed_split_file_is_a_one_line_error(tmp_path):
    source = _source(tmp_path)
    (source.parent / "split.json").write_text('{"train": [1, 2')
    with pytest.raises(SystemExit, match=r"split\.json: not valid JSON"):
        coco_subset.main(["--instances", str(source), "--n-train", "1", "--out", str(tmp_path / "o")])


@pytest.mark.skipif(not COCO_REAL.is_dir(), reason="needs ../shared/data/coco-real (absent here)")
def test_loader_reads_the_subset_of_the_real_photos(tmp_path):
    from instancevg.data.readers.coco import CocoInstances

    out = tmp_path / "sub"
    coco_subset.main(["--instances", str(COCO_REAL / "instances.json"), "--n-train", "40", "--out", str(out)])
    inst = CocoInstances(out / "instances.json", COCO_REAL)
    train = {im.image_id for im in inst.load_split("train")}
    assert len(train) == 40
    assert train <= set(json.loads((COCO_REAL / "split.json").read_text())["train"])
    assert len(inst.load_split("val")) == 100
