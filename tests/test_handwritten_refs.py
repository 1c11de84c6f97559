"""The hand-written coco-real val set (tools/handwritten): well-formed gRefCOCO refs whose ann_ids
are the named photo's own annotations, and a layout the grefcoco reader loads."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFS = ROOT / "tools" / "handwritten" / "grefs(unc).json"
COCO_REAL = ROOT.parent / "shared" / "data" / "coco-real"
needs_coco_real = pytest.mark.skipif(not (COCO_REAL / "instances.json").is_file(),
                                     reason="../shared/data/coco-real is absent (the refs name its ann_ids)")


def _refs() -> list[dict]:
    return json.loads(REFS.read_text())


def test_refs_are_well_formed_grefcoco():
    refs = _refs()
    assert len(refs) == 135 and [r["ref_id"] for r in refs] == list(range(135))
    sent_ids = [s["sent_id"] for r in refs for s in r["sentences"]]
    assert len(sent_ids) == len(set(sent_ids))
    texts = [(r["image_id"], s["raw"]) for r in refs for s in r["sentences"]]
    assert len(texts) == len(set(texts))  # no phrase twice on one photo
    for r in refs:
        assert r["split"] == "val" and r["sent_ids"] == [s["sent_id"] for s in r["sentences"]]
        assert r["no_target"] == (r["ann_id"] == [-1]) == (r["category_id"] == [-1])
        assert len(r["ann_id"]) == len(r["category_id"]) and len(set(r["ann_id"])) == len(r["ann_id"])
    counts = [0 if r["no_target"] else len(r["ann_id"]) for r in refs]
    assert (counts.count(0), counts.count(1), counts.count(2), sum(c >= 3 for c in counts)) == (30, 79, 16, 10)


@needs_coco_real
def test_ann_ids_belong_to_their_val_photo():
    inst = json.loads((COCO_REAL / "instances.json").read_text())
    val = set(json.loads((COCO_REAL / "split.json").read_text())["val"])
    anns = {a["id"]: a for a in inst["annotations"]}
    for r in _refs():
        assert r["image_id"] in val
        for ann_id, cat in zip(r["ann_id"], r["category_id"]):
            if ann_id != -1:
                assert anns[ann_id]["image_id"] == r["image_id"] and anns[ann_id]["category_id"] == cat


@needs_coco_real
def test_tool_writes_a_root_the_grefcoco_reader_loads(tmp_path):
    from instancevg.data.readers.refs import load_refs

    run = subprocess.run([sys.executable, str(ROOT / "tools" / "handwritten_refs.py"), "--out", str(tmp_path),
                          "--instances", str(COCO_REAL / "instances.json")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    records = load_refs("grefcoco", tmp_path, "val", image_root=COCO_REAL)
    assert len(records) == 135 and sum(len(r.boxes) == 0 for r in records) == 30
    assert all(r.image_path.is_file() for r in records)
    missing = subprocess.run([sys.executable, str(ROOT / "tools" / "handwritten_refs.py"), "--out", str(tmp_path),
                              "--instances", str(tmp_path / "nowhere.json")], capture_output=True, text=True)
    assert missing.returncode != 0 and "no coco-real instances file" in missing.stderr
