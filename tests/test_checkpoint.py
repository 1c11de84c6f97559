"""Checkpoint I/O: model files (safetensors + config metadata), error handling, atomic writes
and the training-state checkpoint."""

import copy
import json
import os
import random

import numpy as np

import pytest
import torch
from safetensors.torch import save_file as real_save_file

import instancevg.checkpoint as ckpt
from instancevg.checkpoint import (
    CheckpointError,
    atomic_write_json,
    latest_checkpoint,
    load_model,
    load_training_checkpoint,
    load_weights,
    model_state,
    read_model_file,
    save_model,
    save_training_checkpoint,
)


@pytest.fixture(scope="module")
def inputs(tokenizer, tiny_config):
    g = torch.Generator().manual_seed(21)
    images = torch.randn(2, 3, tiny_config.image_size, tiny_config.image_size, generator=g)
    ids, mask = tokenizer(["the cat", "a red car on the road"])
    return images, ids, mask


@pytest.fixture(scope="module")
def saved_fp32(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("fp32") / "model.safetensors"
    save_model(tiny_model, path, extra={"note": {"a": 1}})
    return path


def test_roundtrip_identical_outputs(tiny_model, saved_fp32, inputs):
    loaded = load_model(saved_fp32)
    assert not loaded.training
    assert loaded.config == tiny_model.config
    with torch.no_grad():
        a = tiny_model(*inputs)
        b = loaded(*inputs)
    for k in ("pred_logits", "pred_boxes", "pred_masks", "global_mask", "existence", "heatmap",
              "reference_points", "scores"):
        torch.testing.assert_close(getattr(a, k), getattr(b, k), atol=0, rtol=0, msg=lambda m: f"{k}: {m}")


def test_model_file_contents(tiny_model, saved_fp32):
    config, state, meta = read_model_file(saved_fp32)
    assert config == tiny_model.config
    assert json.loads(meta["note"]) == {"a": 1}
    # The frozen text encoder is not stored; every other state tensor is, unchanged.
    own = {k: v for k, v in tiny_model.state_dict().items() if not k.startswith("text_encoder.")}
    assert set(state) == set(own)
    assert not any(k.startswith("text_encoder.") for k in state)
    for k, v in own.items():
        assert torch.equal(state[k], v), k
    # A directory holding model.safetensors is accepted too.
    assert read_model_file(saved_fp32.parent)[0] == config


def test_fp16_half_size_and_loads(tiny_model, saved_fp32, tmp_path):
    path = tmp_path / "m16.safetensors"
    save_model(tiny_model, path, dtype=torch.float16)
    ratio = path.stat().st_size / saved_fp32.stat().st_size
    assert 0.45 < ratio < 0.56, ratio
    _, state, _ = read_model_file(path)
    floats = [k for k, v in state.items() if v.is_floating_point()]
    assert floats and all(state[k].dtype == torch.float16 for k in floats)
    loaded = load_model(path)
    own = tiny_model.state_dict()
    for k, v in loaded.state_dict().items():
        if k.startswith("text_encoder."):
            continue
        if v.is_floating_point():
            assert v.dtype == torch.float32, k
            assert torch.equal(v, own[k].half().float()), k
        else:
            assert torch.equal(v, own[k]), k


def test_read_missing_file(tmp_path):
    with pytest.raises(CheckpointError):
        read_model_file(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError):
        read_model_file(tmp_path)  # directory without model.safetensors
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "nope.safetensors")


def test_read_random_bytes(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError):
        read_model_file(path)


def test_read_truncated_file(saved_fp32, tmp_path):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(saved_fp32.read_bytes()[:1000])
    with pytest.raises(CheckpointError):
        read_model_file(path)


def test_read_foreign_safetensors(tmp_path):
    path = tmp_path / "foreign.safetensors"
    real_save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError):
        read_model_file(path)
    other = tmp_path / "other.safetensors"
    real_save_file({"w": torch.zeros(3)}, str(other), metadata={"format": "something-else", "config": "{}"})
    with pytest.raises(CheckpointError):
        read_model_file(other)


def test_read_invalid_config(tmp_path):
    bad_key = tmp_path / "badkey.safetensors"
    real_save_file({"w": torch.zeros(3)}, str(bad_key),
                   metadata={"format": ckpt.FORMAT, "config": json.dumps({"bogus": 1})})
    with pytest.raises(CheckpointError):
        read_model_file(bad_key)


@pytest.fixture()
def fresh_model(tiny_model):
    return copy.deepcopy(tiny_model)


def test_load_weights_missing_key(tiny_model, fresh_model):
    state = model_state(tiny_model)
    del state["heads.class_head.weight"]
    with pytest.raises(CheckpointError, match="heads.class_head.weight"):
        load_weights(fresh_model, state)


def test_load_weights_wrong_shape(tiny_model, fresh_model):
    state = model_state(tiny_model)
    w = state["heads.class_head.weight"]
    state["heads.class_head.weight"] = torch.zeros(w.shape[0] + 1, w.shape[1])
    with pytest.raises(CheckpointError):
        load_weights(fresh_model, state)


def test_load_weights_unexpected_key(tiny_model, fresh_model):
    state = model_state(tiny_model)
    state["extra.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointError):
        load_weights(fresh_model, state)


def test_load_weights_without_text_encoder_loads_values(tiny_model, fresh_model):
    state = model_state(tiny_model)
    state = {k: torch.full_like(v, 0.5) if k == "heads.class_head.bias" else v for k, v in state.items()}
    load_weights(fresh_model, state)
    assert torch.equal(fresh_model.heads.class_head.bias, torch.full((2,), 0.5))


def test_load_model_config_mismatch(tiny_model, tmp_path):
    # Weights of edge-tiny stored under a config with another d_model do not fit.
    path = tmp_path / "mismatch.safetensors"
    cfg = dict(tiny_model.config.to_dict(), d_model=32, pretrained_backbone=False)
    real_save_file(model_state(tiny_model), str(path), metadata={"format": ckpt.FORMAT, "config": json.dumps(cfg)})
    with pytest.raises(CheckpointError):
        load_model(path)


# ---- atomicity ----------------------------------------------------------------------------


def test_save_model_atomic_on_failure(tiny_model, tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save_model(tiny_model, path)
    before = path.read_bytes()

    def failing_save(tensors, filename, metadata=None):
        with open(filename, "wb") as f:  # half-written garbage, then a crash
            f.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(ckpt, "save_file", failing_save)
    with pytest.raises(RuntimeError, match="disk full"):
        save_model(tiny_model, path, dtype=torch.float16)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]


def test_save_model_atomic_on_interrupt(tiny_model, tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save_model(tiny_model, path)
    before = path.read_bytes()

    def interrupted(tensors, filename, metadata=None):
        real_save_file(tensors, filename, metadata=metadata)
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(tiny_model, path, dtype=torch.float16)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]


def test_atomic_write_json_content(tmp_path):
    path = tmp_path / "s.json"
    atomic_write_json(path, {"b": 1, "a": [1, 2]})
    text = path.read_text()
    assert text.endswith("\n")
    assert json.loads(text) == {"b": 1, "a": [1, 2]}
    assert text.index('"a"') < text.index('"b"')  # sorted keys
    assert sorted(os.listdir(tmp_path)) == ["s.json"]


def test_atomic_write_json_failure_keeps_old(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    atomic_write_json(path, {"v": 1})
    before = path.read_bytes()

    # Not serialisable: fails before anything is written.
    with pytest.raises(TypeError):
        atomic_write_json(path, {"v": object()})
    assert path.read_bytes() == before

    # Crash after the temporary file was written, before it is moved into place.
    def boom(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(ckpt.os, "fsync", boom)
    with pytest.raises(OSError, match="fsync failed"):
        atomic_write_json(path, {"v": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["s.json"]


# ---- training checkpoints ------------------------------------------------------------------


def _optimizer_with_state(model):
    params = list(model.heads.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 ** s)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()  # creates exp_avg / exp_avg_sq / step
    sched.step()
    for p in params:
        p.grad = None
    return opt, sched


def _step_with_fixed_grads(model, opt):
    params = list(model.heads.parameters())
    for i, p in enumerate(params):
        p.grad = torch.full_like(p, 0.1 * (i + 1))
    opt.step()
    for p in params:
        p.grad = None


def test_training_checkpoint_roundtrip_and_pruning(tiny_model, tmp_path):
    model = copy.deepcopy(tiny_model)
    opt, sched = _optimizer_with_state(model)
    run = tmp_path / "run"
    for step in (1, 2, 3):
        final = save_training_checkpoint(run, step, model, opt, sched, {"history": [step]}, keep=2)
    # The draws right after the last save, for every RNG the checkpoint restores.
    expected_rng = (torch.rand(4), np.random.rand(3), random.random())
    assert final == run / "checkpoints" / "step-0000003"
    assert sorted(os.listdir(run / "checkpoints")) == ["step-0000002", "step-0000003"]  # pruned, no temp dirs
    assert sorted(os.listdir(final)) == ["model.safetensors", "optimizer.safetensors", "state.json"]
    assert json.loads((run / "latest.json").read_text()) == {"step": 3, "path": "step-0000003"}
    assert latest_checkpoint(run) == final

    fresh = copy.deepcopy(tiny_model)
    with torch.no_grad():
        fresh.heads.class_head.bias.zero_()
    opt2 = torch.optim.Adam(list(fresh.heads.parameters()), lr=1e-3)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 0.5 ** s)
    torch.rand(7), np.random.rand(5), random.random()  # move the RNGs on; loading must restore them
    state = load_training_checkpoint(final, fresh, opt2, sched2)
    assert state["step"] == 3 and state["history"] == [3]
    assert torch.equal(torch.rand(4), expected_rng[0])
    np.testing.assert_array_equal(np.random.rand(3), expected_rng[1])
    assert random.random() == expected_rng[2]
    assert torch.equal(fresh.heads.class_head.bias, model.heads.class_head.bias)
    assert sched2.last_epoch == sched.last_epoch == 1
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert set(s1) == set(s2)
    for pid in s1:
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(torch.as_tensor(s1[pid][key]), torch.as_tensor(s2[pid][key])), (pid, key)
    # Training goes on identically from the restored state.
    _step_with_fixed_grads(model, opt)
    _step_with_fixed_grads(fresh, opt2)
    for (name, a), b in zip(model.heads.named_parameters(), fresh.heads.parameters()):
        assert torch.equal(a, b), name


def test_training_checkpoint_keep_every(tiny_model, tmp_path):
    model = copy.deepcopy(tiny_model)
    opt, sched = _optimizer_with_state(model)
    run = tmp_path / "run"
    for step in range(1, 8):
        save_training_checkpoint(run, step, model, opt, sched, {}, keep=2, keep_every=3)
    # the last two, plus the multiples of 3 that pruning would otherwise remove
    assert sorted(os.listdir(run / "checkpoints")) == ["step-0000003", "step-0000006", "step-0000007"]
    with pytest.raises(ValueError, match="keep_every"):
        save_training_checkpoint(run, 8, model, opt, sched, {}, keep_every=-1)


def _temp_dir(root, name):
    path = root / name
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"partial")
    return path


def _dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_directories_removed_by_next_save(tiny_model, tmp_path):
    model = copy.deepcopy(tiny_model)
    opt, sched = _optimizer_with_state(model)
    run = tmp_path / "run"
    for step in (1, 2):
        save_training_checkpoint(run, step, model, opt, sched, {})
    root = run / "checkpoints"
    before = {p.name: p.read_bytes() for p in (root / "step-0000002").iterdir()}
    _temp_dir(root, ".tmp-step-0000100-x1y2z3ab")  # killed writer, name without a pid
    _temp_dir(root, f".tmp-step-0000101-{_dead_pid()}-abcd1234")  # killed writer, pid gone
    _temp_dir(root, f".tmp-step-0000102-{os.getpid()}-abcd1234")  # this process, not writing now
    live = _temp_dir(root, f".tmp-step-0000103-{os.getppid()}-abcd1234")  # another live process may be writing
    save_training_checkpoint(run, 3, model, opt, sched, {})
    assert sorted(os.listdir(root)) == [live.name, "step-0000002", "step-0000003"]
    assert {p.name: p.read_bytes() for p in (root / "step-0000002").iterdir()} == before
    assert (live / "model.safetensors").read_bytes() == b"partial"


def test_remove_stale_temp_directories(tmp_path):
    run = tmp_path / "run"
    _temp_dir(run / "checkpoints", "step-0000001")
    _temp_dir(run / "checkpoints", ".tmp-step-0000002-x1y2z3ab")
    (run / "checkpoints" / ".tmp-notes").write_text("a file, not a checkpoint write")
    assert ckpt.remove_stale_temps(run) == [run / "checkpoints" / ".tmp-step-0000002-x1y2z3ab"]
    assert sorted(os.listdir(run / "checkpoints")) == [".tmp-notes", "step-0000001"]
    assert ckpt.remove_stale_temps(tmp_path / "no-run") == []


def test_latest_checkpoint_missing(tmp_path):
    with pytest.raises(CheckpointError):
        latest_checkpoint(tmp_path)


def test_training_checkpoint_failure_keeps_previous(tiny_model, tmp_path, monkeypatch):
    model = copy.deepcopy(tiny_model)
    opt, sched = _optimizer_with_state(model)
    run = tmp_path / "run"
    save_training_checkpoint(run, 1, model, opt, sched, {})
    before = {p.name: p.read_bytes() for p in (run / "checkpoints" / "step-0000001").iterdir()}
    latest_before = (run / "latest.json").read_bytes()

    calls = {"n": 0}

    def fail_second(tensors, filename, metadata=None):  # model file ok, optimizer file crashes
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("crash")
        real_save_file(tensors, filename, metadata=metadata)

    monkeypatch.setattr(ckpt, "save_file", fail_second)
    with pytest.raises(RuntimeError, match="crash"):
        save_training_checkpoint(run, 2, model, opt, sched, {})
    assert sorted(os.listdir(run / "checkpoints")) == ["step-0000001"]  # its temporary directory removed
    assert (run / "latest.json").read_bytes() == latest_before
    assert {p.name: p.read_bytes() for p in (run / "checkpoints" / "step-0000001").iterdir()} == before
