"""Checkpoint averaging (instancevg.weight_averaging) and `instancevg pack` with several checkpoints."""

import copy
import json

import pytest
import torch

import instancevg.checkpoint as ckpt
from instancevg.checkpoint import (
    CheckpointError,
    load_model,
    model_state,
    read_model_file,
    save_model,
)
from instancevg.cli import main
from instancevg.weight_averaging import average_checkpoints, average_states


def _perturbed(model, seed):
    """A copy of ``model`` with every floating parameter and buffer shifted by seeded noise."""
    out = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(out.parameters()) + list(out.buffers()):
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=g))
    return out


def test_average_states_mean_and_integer_buffers():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3), "h": torch.tensor([1.0], dtype=torch.float16)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(7), "h": torch.tensor([2.0], dtype=torch.float16)}
    c = {"w": torch.tensor([5.0, 1.0]), "n": torch.tensor(9), "h": torch.tensor([4.0], dtype=torch.float16)}
    out = average_states([a, b, c])
    assert torch.allclose(out["w"], torch.tensor([3.0, 3.0]))
    assert out["h"].dtype == torch.float16 and out["h"].item() == pytest.approx(7.0 / 3.0, abs=1e-3)
    assert out["n"].item() == 9  # integer buffers: the last state's
    assert a["w"].tolist() == [1.0, 2.0]  # inputs untouched


def test_average_states_single_is_identity():
    a = {"w": torch.randn(3, 4)}
    assert torch.equal(average_states([a])["w"], a["w"])


@pytest.mark.parametrize("other, match", [
    ({"w": torch.zeros(2), "extra": torch.zeros(1)}, "different keys"),
    ({"w": torch.zeros(3)}, "shape"),
    ({"w": torch.zeros(2, dtype=torch.float16)}, "float16"),
])
def test_average_states_mismatch(other, match):
    with pytest.raises(ValueError, match=match):
        average_states([{"w": torch.zeros(2)}, other])


def test_average_states_empty():
    with pytest.raises(ValueError, match="at least one"):
        average_states([])


def test_average_checkpoints_files(tiny_model, tmp_path):
    models = [_perturbed(tiny_model, s) for s in (1, 2)]
    paths = []
    for i, m in enumerate(models):
        paths.append(tmp_path / f"m{i}.safetensors")
        save_model(m, paths[-1])
    config, state = average_checkpoints(paths)
    assert config.to_dict() == tiny_model.config.to_dict()
    s0, s1 = model_state(models[0]), model_state(models[1])
    key = "heads.class_head.weight"
    assert torch.allclose(state[key], (s0[key] + s1[key]) / 2, atol=1e-6)
    assert not torch.allclose(state[key], s0[key])


def test_average_checkpoints_config_mismatch(tiny_model, tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_model(tiny_model, a)
    cfg = dict(tiny_model.config.to_dict(), score_threshold=0.5)
    ckpt.save_file(model_state(tiny_model), str(b), metadata={"format": ckpt.FORMAT, "config": json.dumps(cfg)})
    with pytest.raises(CheckpointError, match="different model config"):
        average_checkpoints([a, b])


def test_pack_cli_averages(tiny_model, tmp_path, capsys):
    models = [_perturbed(tiny_model, s) for s in (3, 4, 5)]
    paths = []
    for i, m in enumerate(models):
        paths.append(tmp_path / f"m{i}.safetensors")
        save_model(m, paths[-1])
    out = tmp_path / "avg.safetensors"
    argv = ["pack", "--out", str(out)]
    for p in paths:
        argv += ["--checkpoint", str(p)]
    assert main(argv) == 0
    assert "average of 3 checkpoints" in capsys.readouterr().out
    packed = load_model(out)
    states = [model_state(m) for m in models]
    for k, v in model_state(packed).items():
        if v.is_floating_point():
            want = sum(s[k] for s in states) / 3
            assert torch.allclose(v, want, atol=1e-5), k
    _, _, meta = read_model_file(out)
    assert json.loads(meta["source"]) == [str(p) for p in paths]


def test_pack_cli_single_fp16(tiny_model, tmp_path):
    src, out = tmp_path / "m.safetensors", tmp_path / "p.safetensors"
    save_model(tiny_model, src)
    assert main(["pack", "--checkpoint", str(src), "--out", str(out), "--fp16"]) == 0
    _, state, meta = read_model_file(out)
    assert state["heads.class_head.weight"].dtype == torch.float16
    assert json.loads(meta["source"]) == str(src)


def test_pack_cli_unreadable_checkpoint(tiny_model, tmp_path, capsys):
    good = tmp_path / "m.safetensors"
    save_model(tiny_model, good)
    bad = tmp_path / "missing.safetensors"
    out = tmp_path / "avg.safetensors"
    assert main(["pack", "--checkpoint", str(good), "--checkpoint", str(bad), "--out", str(out)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert not out.exists()
