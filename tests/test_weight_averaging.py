"""Checkpoint averaging (instancevg.training.weight_averaging) and `instancevg pack` with several checkpoints."""

import copy
import dataclasses
import json

import pytest
import torch

import instancevg.training.weight_averaging as wa
from instancevg.checkpoint import (
    CheckpointError,
    load_model,
    model_state,
    read_model_file,
    save_model,
)
from instancevg.cli import main
from instancevg.training.weight_averaging import average_checkpoints, average_states


def _perturbed(model, seed):
    """A copy of ``model`` with every floating parameter and buffer shifted by seeded noise and
    the integer buffers set to ``seed``."""
    out = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(out.parameters()) + list(out.buffers()):
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=g))
            else:
                t.fill_(seed)
    return out


def _saved(models, tmp_path, as_dirs=False):
    paths = []
    for i, m in enumerate(models):
        if as_dirs:  # the layout of a training checkpoint, RUN/checkpoints/step-N/model.safetensors
            d = tmp_path / f"step-{i:07d}"
            d.mkdir()
            save_model(m, d / "model.safetensors")
            paths.append(d)
        else:
            paths.append(tmp_path / f"m{i}.safetensors")
            save_model(m, paths[-1])
    return paths


def test_average_states_mean_in_float64():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3), "h": torch.tensor([40000.0], dtype=torch.float16)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(7), "h": torch.tensor([40000.0], dtype=torch.float16)}
    c = {"w": torch.tensor([5.0, 1.0]), "n": torch.tensor(9), "h": torch.tensor([40000.0], dtype=torch.float16)}
    out = average_states([a, b, c])
    assert torch.equal(out["w"], torch.tensor([3.0, 3.0]))
    # 3 x 40000 overflows fp16 (max 65504): only a wider accumulator gives the mean back
    assert out["h"].dtype == torch.float32 and out["h"].item() == 40000.0
    assert out["n"].item() == 9  # integer buffers: the last state's
    assert a["w"].tolist() == [1.0, 2.0]  # inputs untouched


def test_average_states_mixes_fp16_and_fp32():
    out = average_states([{"w": torch.tensor([1.0])}, {"w": torch.tensor([2.0], dtype=torch.float16)}])
    assert out["w"].dtype == torch.float32 and out["w"].item() == 1.5


def test_average_states_single_is_identity():
    a = {"w": torch.randn(3, 4)}
    assert torch.equal(average_states([a])["w"], a["w"])


@pytest.mark.parametrize("other, match", [
    ({"w": torch.zeros(2), "extra": torch.zeros(1)}, "different keys"),
    ({"w": torch.zeros(3)}, "shape"),
    ({"w": torch.zeros(2, dtype=torch.int64)}, "int64"),
])
def test_average_states_mismatch(other, match):
    with pytest.raises(ValueError, match=match):
        average_states([{"w": torch.zeros(2)}, other])


def test_average_states_empty():
    with pytest.raises(ValueError, match="at least one"):
        average_states([])


@pytest.mark.parametrize("as_dirs", [False, True])
def test_average_checkpoints(tiny_model, tmp_path, as_dirs):
    models = [_perturbed(tiny_model, s) for s in (1, 2)]
    config, state = average_checkpoints(_saved(models, tmp_path, as_dirs))
    assert config.to_dict() == tiny_model.config.to_dict()
    s0, s1 = model_state(models[0]), model_state(models[1])
    assert state.keys() == s0.keys()
    n_float = 0
    for k, v in state.items():
        if v.is_floating_point():
            assert torch.allclose(v, (s0[k] + s1[k]) / 2, atol=1e-6), k
            n_float += 1
        else:
            assert torch.equal(v, s1[k]), k  # the last checkpoint's integer buffer
    assert n_float > 0 and not torch.allclose(state["heads.class_head.weight"], s0["heads.class_head.weight"])


def test_average_checkpoints_config_mismatch(tiny_model, tmp_path):
    other = copy.deepcopy(tiny_model)
    other.config = dataclasses.replace(other.config, score_threshold=0.5)
    paths = _saved([tiny_model, other], tmp_path)
    with pytest.raises(CheckpointError, match="score_threshold"):
        average_checkpoints(paths)


def test_average_checkpoints_rejects_the_same_file_twice(tiny_model, tmp_path):
    (d,) = _saved([tiny_model], tmp_path, as_dirs=True)
    with pytest.raises(ValueError, match="twice"):
        average_checkpoints([d, d / "model.safetensors"])


def test_average_checkpoints_names_files_on_weight_mismatch(tiny_model, tmp_path, monkeypatch):
    paths = _saved([tiny_model, tiny_model], tmp_path)
    real = wa.read_model_file

    def drop_a_key(p):  # the second file lacks one tensor
        config, state, meta = real(p)
        if str(p) == str(paths[1]):
            state.pop("heads.class_head.bias")
        return config, state, meta

    monkeypatch.setattr(wa, "read_model_file", drop_a_key)
    with pytest.raises(ValueError, match="m1.safetensors.*heads.class_head.bias"):
        average_checkpoints(paths)


def test_pack_cli_averages_to_fp16(tiny_model, tmp_path, capsys):
    models = [_perturbed(tiny_model, s) for s in (3, 4, 5)]
    paths = _saved(models, tmp_path, as_dirs=True)
    out = tmp_path / "avg.safetensors"
    argv = ["pack", "--out", str(out), "--fp16"]
    for p in paths:
        argv += ["--checkpoint", str(p)]
    assert main(argv) == 0
    assert "average of 3 checkpoints" in capsys.readouterr().out
    _, stored, meta = read_model_file(out)
    assert stored["heads.class_head.weight"].dtype == torch.float16
    assert json.loads(meta["source"]) == [str(p) for p in paths]
    packed, states = model_state(load_model(out)), [model_state(m) for m in models]
    for k, v in packed.items():
        if v.is_floating_point():
            want = sum(s[k] for s in states) / 3
            assert torch.allclose(v, want, rtol=2e-3, atol=2e-3), k  # fp16 storage
        else:
            assert torch.equal(v, states[-1][k]), k


def test_pack_cli_single_checkpoint_is_not_averaged(tiny_model, tmp_path, monkeypatch):
    def fail(paths):
        raise AssertionError("one checkpoint must be packed as is")

    monkeypatch.setattr(wa, "average_checkpoints", fail)
    src, out = tmp_path / "m.safetensors", tmp_path / "p.safetensors"
    save_model(tiny_model, src)
    assert main(["pack", "--checkpoint", str(src), "--out", str(out)]) == 0
    _, state, meta = read_model_file(out)
    want = model_state(tiny_model)
    assert all(torch.equal(state[k], want[k]) for k in want)
    assert json.loads(meta["source"]) == str(src)


def test_pack_cli_sets_the_consistency_rule(tiny_model, tmp_path):
    src = tmp_path / "m.safetensors"
    model = copy.deepcopy(tiny_model)
    model.config = dataclasses.replace(model.config, consistency="off")
    save_model(model, src)
    kept, changed = tmp_path / "kept.safetensors", tmp_path / "clip.safetensors"
    assert main(["pack", "--checkpoint", str(src), "--out", str(kept)]) == 0
    assert main(["pack", "--checkpoint", str(src), "--out", str(changed), "--consistency", "mask_box"]) == 0
    assert load_model(kept).config.consistency == "off"
    assert load_model(changed).config.consistency == "mask_box"
    with pytest.raises(SystemExit):
        main(["pack", "--checkpoint", str(src), "--out", str(changed), "--consistency", "clip"])


def test_pack_cli_unreadable_checkpoint(tiny_model, tmp_path, capsys):
    (good,) = _saved([tiny_model], tmp_path)
    bad = tmp_path / "missing.safetensors"
    out = tmp_path / "avg.safetensors"
    assert main(["pack", "--checkpoint", str(good), "--checkpoint", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("instancevg: error:") and "checkpoint not found" in err and err.count("\n") == 1
    assert not out.exists()
