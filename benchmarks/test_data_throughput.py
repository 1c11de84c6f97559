"""Data loading throughput and the CPU training step it has to feed (pytest-benchmark).

``python -m pytest benchmarks/test_data_throughput.py --benchmark-columns=median,rounds`` prints:

* ``test_loader_samples[SOURCE]``: one DataLoader (2 workers, batch 8) drawing 64 training samples
  from a source -- coco-real photos with generated expressions, copy-paste scenes, the procedural
  renderer, and a released-format (gRefCOCO) stream; samples/s = 64 / median.
* ``test_index_grefcoco_scale``: indexing a synthetic gRefCOCO of 278k sentences over 20k images
  (the released train split's size), without decoding a mask.
* ``test_train_step_cpu[fp32|bf16]``: one edge-preset training step (batch 8, 320x320) on the CPU,
  without and with bf16 autocast; the loader must deliver >= 3x the samples a step consumes.

Run on an idle machine: a training run in the background halves every figure.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from instancevg.config import get_preset
from instancevg.data.dataset import GroundingCollate
from instancevg.data.sources import DataSpec, train_dataset

COCO_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco-real"
N_SAMPLES, BATCH = 64, 8
needs_coco_real = pytest.mark.skipif(not (COCO_REAL / "instances.json").is_file(),
                                     reason="../shared/data/coco-real is absent")


@pytest.fixture(scope="module")
def config():
    return get_preset("edge")


@pytest.fixture(scope="module")
def procedural_dir(tmp_path_factory):
    from instancevg.data.make_data import make_data

    out = tmp_path_factory.mktemp("procedural")
    make_data(out, seed=0, n_train=0, n_val=2, n_test=0, progress=False)
    return out


@pytest.fixture(scope="module")
def grefcoco_root(tmp_path_factory):
    """A gRefCOCO-format copy of coco-real: one ref per annotation plus no-target refs."""
    root = tmp_path_factory.mktemp("grefcoco")
    (root / "grefcoco").mkdir()
    data = json.loads((COCO_REAL / "instances.json").read_text())
    (root / "grefcoco" / "instances.json").write_text(json.dumps(data))
    (root / "images").mkdir()
    (root / "images" / "train2014").symlink_to(COCO_REAL)
    names = {c["id"]: c["name"] for c in data["categories"]}
    refs = [{"ref_id": i, "image_id": a["image_id"], "ann_id": [a["id"]], "category_id": [a["category_id"]],
             "split": "train", "sentences": [{"raw": f"the {names[a['category_id']]}", "sent_id": i}]}
            for i, a in enumerate(data["annotations"]) if not a["iscrowd"]]
    (root / "grefcoco" / "grefs(unc).json").write_text(json.dumps(refs))
    return root


def _spec(name, procedural_dir, grefcoco_root) -> DataSpec:
    inst = f"{COCO_REAL / 'instances.json'}:{COCO_REAL}"
    return {"coco-real": DataSpec.parse(f"coco:{inst}"), "copy-paste": DataSpec.parse(f"copy-paste:{inst}"),
            "procedural": DataSpec.parse(f"procedural:{procedural_dir}"),
            "grefcoco": DataSpec.parse(f"grefcoco:{grefcoco_root}")}[name]


@needs_coco_real
@pytest.mark.parametrize("source", ["coco-real", "copy-paste", "procedural", "grefcoco"])
def test_loader_samples(benchmark, config, procedural_dir, grefcoco_root, source):
    stream = train_dataset([_spec(source, procedural_dir, grefcoco_root)], config, seed=0)
    start = iter(range(0, 10**9, N_SAMPLES))

    def run():
        base = next(start)
        loader = DataLoader(stream, batch_size=BATCH, sampler=range(base, base + N_SAMPLES), num_workers=2,
                            collate_fn=GroundingCollate(config), prefetch_factor=4)
        return sum(len(b["texts"]) for b in loader)

    assert benchmark.pedantic(run, rounds=3, iterations=1) == N_SAMPLES
    benchmark.extra_info["samples_per_s"] = N_SAMPLES / benchmark.stats.stats.median


def test_index_grefcoco_scale(benchmark, tmp_path):
    """278k sentences, 20k images, 210k annotations: indexed once, masks left undecoded."""
    from instancevg.data.readers.refs import load_refs

    rng = np.random.default_rng(0)
    n_img, n_ann = 20_000, 210_000
    images = [{"id": i, "width": 640, "height": 480, "file_name": f"COCO_train2014_{i:012d}.jpg"} for i in range(n_img)]
    img_of = rng.integers(0, n_img, n_ann)
    anns = [{"id": a, "image_id": int(img_of[a]), "category_id": 1, "bbox": [10.0, 10.0, 50.0, 40.0], "iscrowd": 0,
             "segmentation": [[10, 10, 60, 10, 60, 50, 10, 50]], "area": 2000.0} for a in range(n_ann)]
    root = tmp_path / "g"
    (root / "grefcoco").mkdir(parents=True)
    (root / "grefcoco" / "instances.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))
    refs = [{"ref_id": r, "image_id": int(img_of[r]), "ann_id": [r], "split": "train",
             "sentences": [{"raw": "the person", "sent_id": 2 * r}] + ([{"raw": "a person", "sent_id": 2 * r + 1}]
                                                                        if r % 3 else [])}
            for r in range(208_000)]
    (root / "grefcoco" / "grefs(unc).json").write_text(json.dumps(refs))
    image_dir = root / "images" / "train2014"
    image_dir.mkdir(parents=True)
    for i in range(n_img):
        (image_dir / images[i]["file_name"]).touch()
    records = benchmark.pedantic(lambda: load_refs("grefcoco", root, "train"), rounds=1, iterations=1)
    assert len(records) == 208_000 + sum(1 for r in range(208_000) if r % 3)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_step_cpu(benchmark, config, procedural_dir, precision):
    from instancevg.training.losses import grounding_loss
    from instancevg.modeling.model import InstanceVGModel

    torch.manual_seed(0)
    model = InstanceVGModel(config, load_pretrained=False).train()
    stream = train_dataset([DataSpec.parse(f"procedural:{procedural_dir}")], config, seed=0)
    batch = GroundingCollate(config)([stream[i] for i in range(BATCH)])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(batch["images"], batch["input_ids"], batch["attention_mask"])
        loss = grounding_loss(out, batch["targets"])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    step()  # warm-up: first-call allocations
    assert np.isfinite(benchmark.pedantic(step, rounds=5, iterations=1))
    benchmark.extra_info["samples_per_s"] = BATCH / benchmark.stats.stats.median
