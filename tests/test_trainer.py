"""Trainer: checkpoints, exact resume, curve, and 2-process DDP (gloo) replica agreement."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import Dataset

import instancevg.training.trainer as trainer
from instancevg.data.make_data import make_data
from instancevg.training.trainer import TrainConfig, train


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    make_data(out, seed=3, n_train=0, n_val=4, n_test=2, progress=False)
    return out


def _cfg(data, out, **kw):
    base = dict(data=str(data), out=str(out), preset="edge-tiny", steps=4, batch_size=2, val_every=4,
                val_samples=4, ckpt_every=2, num_workers=0, warmup_steps=2)
    base.update(kw)
    return TrainConfig(**base)


def _weights(run: Path, step: int) -> dict:
    return load_file(str(run / "checkpoints" / f"step-{step:07d}" / "model.safetensors"))


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), f"{k} differs after resume"


def test_resume_continues_exactly(tiny_data, tmp_path):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    metrics = train(_cfg(tiny_data, straight), progress=False)
    train(_cfg(tiny_data, interrupted), progress=False, stop_at=2)
    assert json.loads((interrupted / "latest.json").read_text())["step"] == 2
    # a checkpoint write killed by an earlier process leaves its temporary directory behind
    stale = interrupted / "checkpoints" / ".tmp-step-0000100-x1y2z3ab"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"partial")
    train(_cfg(tiny_data, interrupted), resume=True, progress=False)
    assert sorted(p.name for p in (interrupted / "checkpoints").iterdir()) == ["step-0000002", "step-0000004"]
    a, b = _weights(straight, 4), _weights(interrupted, 4)
    _assert_same_weights(a, b)
    # the run actually trained: weights moved from step 2 to step 4
    assert any((a[k] != _weights(straight, 2)[k]).any() for k in a if a[k].is_floating_point())
    assert (straight / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((straight / "history.json").read_text())
    assert any("loss" in h for h in history) and any("val" in h for h in history)
    assert list(metrics) == [f"procedural:{tiny_data}"]  # validation metrics by source
    assert "GREC Pr@(F1=1,IoU>=0.5)" in metrics[f"procedural:{tiny_data}"]
    # only the last two checkpoints are kept, and no temporary directory is left
    names = sorted(p.name for p in (straight / "checkpoints").iterdir())
    assert names == ["step-0000002", "step-0000004"]


class _Augmented(Dataset):
    """A training stream whose samples get a random augmentation from the global RNGs of torch,
    NumPy and Python (as an augmentation added to a data source would)."""

    def __init__(self, base):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, g: int) -> dict:
        item = dict(self.base[g])
        strength = 0.2 * random.random() * float(np.random.rand())
        item["image"] = item["image"] + strength * torch.randn(item["image"].shape)
        return item


def _dropout(module, inputs, out):
    """Dropout whose rate is drawn from Python's and NumPy's global RNGs at each training step."""
    p = 0.1 + 0.1 * random.random() + 0.1 * float(np.random.rand()) if module.training else 0.0
    return torch.nn.functional.dropout(out, p, training=module.training)


@pytest.fixture
def stochastic_training(monkeypatch):
    """The trainer with :func:`_dropout` on the projected text features, and the training stream
    wrapped in :class:`_Augmented`."""
    build_datasets = trainer.build_datasets

    def augmented(cfg, model_config):
        train_set, val_sets = build_datasets(cfg, model_config)
        return _Augmented(train_set), val_sets

    class WithDropout(trainer.InstanceVGModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.text_proj.register_forward_hook(_dropout)

    monkeypatch.setattr(trainer, "build_datasets", augmented)
    monkeypatch.setattr(trainer, "InstanceVGModel", WithDropout)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_resume_is_rng_exact_with_dropout_and_augmentation(tiny_data, tmp_path, stochastic_training, num_workers):
    """Straight to step 4 = to step 2, then resumed to 4, bit for bit, with dropout and a random
    augmentation drawing from every global RNG, the augmentation in the main process or in a
    loader worker."""
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    train(_cfg(tiny_data, straight, num_workers=num_workers, val_every=100), progress=False)
    random.random(), np.random.rand(), torch.rand(1)  # whatever ran before must not matter
    train(_cfg(tiny_data, interrupted, num_workers=num_workers, val_every=100), progress=False, stop_at=2)
    train(_cfg(tiny_data, interrupted, num_workers=num_workers, val_every=100), resume=True, progress=False)
    _assert_same_weights(_weights(straight, 4), _weights(interrupted, 4))
    assert any((a != b).any() for a, b in zip(_weights(straight, 4).values(), _weights(straight, 2).values()))


def test_keep_every_keeps_checkpoints_for_averaging(tiny_data, tmp_path):
    run = tmp_path / "keep"
    train(_cfg(tiny_data, run, steps=6, val_every=100, ckpt_every=1, keep_every=3), progress=False)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step-0000003", "step-0000005", "step-0000006"]
    with pytest.raises(ValueError, match="keep_every"):
        _cfg(tiny_data, run, keep_every=-1)


def test_time_limit_stops_with_a_checkpoint_and_resumes(tiny_data, tmp_path):
    run = tmp_path / "timed"
    train(_cfg(tiny_data, run), progress=False, time_limit_s=1e-9)  # spent after the first step
    assert json.loads((run / "latest.json").read_text())["step"] == 1
    train(_cfg(tiny_data, run), resume=True, progress=False)
    assert json.loads((run / "latest.json").read_text())["step"] == 4


def test_resume_without_checkpoint_fails(tiny_data, tmp_path):
    from instancevg.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(_cfg(tiny_data, tmp_path / "empty"), resume=True, progress=False)


def test_ddp_two_processes_agree(tiny_data, tmp_path):
    """2-process gloo run on a two-source mixture (COCO labels + procedural), validation sharded."""
    from released_formats import write_instances

    inst = write_instances(tmp_path / "coco", tmp_path / "coco")
    (tmp_path / "coco" / "split.json").write_text(json.dumps({"train": [1, 2], "val": [3]}))
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "instancevg.cli", "train", "--preset", "edge-tiny", "--data", f"coco:{inst}",
           "--data", f"procedural:{tiny_data}@0.5", "--out", str(run),
           "--steps", "3", "--batch-size", "2", "--val-every", "3", "--val-samples", "3", "--ckpt-every", "3",
           "--num-workers", "0", "--warmup-steps", "1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    val = next(h["val"] for h in json.loads((run / "history.json").read_text()) if "val" in h)
    assert set(val) == {f"coco:{inst}", f"procedural:{tiny_data}"}
    check = json.loads((run / "ddp_check.json").read_text())
    assert check["world_size"] == 2
    first, second = check["fingerprints"]
    assert len(first) > 10 and first == second
    assert (run / "checkpoints" / "step-0000003" / "model.safetensors").is_file()


def test_cli_resume_rejects_negative_keep_every(tiny_data, tmp_path, capsys):
    from instancevg.cli import main

    run = tmp_path / "run"
    train(_cfg(tiny_data, run, steps=1, val_every=100), progress=False)
    assert main(["train", "--resume", str(run), "--keep-every", "-2"]) == 2
    assert "keep_every must be >= 0" in capsys.readouterr().err


def test_mixture_of_coco_and_procedural_runs_and_extends(tiny_data, tmp_path, capsys):
    """`train --data coco:... --data procedural:...@0.5` checkpoints, records its sources, and
    `--resume RUN --steps N` extends it without editing train_config.json."""
    from instancevg.cli import main
    from released_formats import write_instances

    inst = write_instances(tmp_path / "coco", tmp_path / "coco")
    (tmp_path / "coco" / "split.json").write_text(json.dumps({"train": [1, 2], "val": [3]}))
    run = tmp_path / "mix"
    args = ["train", "--preset", "edge-tiny", "--data", f"coco:{inst}", "--data", f"procedural:{tiny_data}@0.5",
            "--out", str(run), "--steps", "2", "--batch-size", "2", "--val-every", "2", "--val-samples", "2",
            "--ckpt-every", "1", "--num-workers", "0", "--warmup-steps", "1"]
    assert main(args) == 0
    sources = json.loads((run / "data_sources.json").read_text())
    assert [s["spec"] for s in sources["train"]] == [f"coco:{inst}", f"procedural:{tiny_data}@0.5"]
    assert [s["spec"] for s in sources["val"]] == [f"coco:{inst}", f"procedural:{tiny_data}"]
    assert all(len(h) == 64 for s in sources["train"] for h in s["files"].values())  # SHA-256 of each file
    history = json.loads((run / "history.json").read_text())
    assert set(next(h for h in history if "val" in h)["val"]) == {f"coco:{inst}", f"procedural:{tiny_data}"}
    assert main(["train", "--resume", str(run), "--steps", "3"]) == 0
    assert json.loads((run / "latest.json").read_text())["step"] == 3
    assert json.loads((run / "train_config.json").read_text())["steps"] == 3
    assert main(["train", "--preset", "edge-tiny", "--data", "copy-paste", "--out", str(tmp_path / "x")]) == 2
    assert "expected KIND:PATH" in capsys.readouterr().err


def test_coco_without_split_file_needs_val_data(tmp_path):
    from released_formats import write_instances

    inst = write_instances(tmp_path / "coco", tmp_path / "coco")
    with pytest.raises(ValueError, match="no split.json.*give --val-data"):
        train(_cfg(f"coco:{inst}", tmp_path / "run", steps=1), progress=False)
