"""Uniform averaging of the weights of several checkpoints of one run (checkpoint averaging).

Averaging the weights of checkpoints taken along the low-learning-rate tail of a run lands nearer
the centre of the flat region SGD wanders in, and usually generalises a little better than any one
of them: Izmailov et al., "Averaging Weights Leads to Wider Optima and Better Generalization"
(UAI 2018, SWA, Sec. 3), and checkpoint averaging in Vaswani et al., "Attention Is All You Need"
(2017, Sec. 6.1). ``instancevg pack --checkpoint A --checkpoint B ...`` uses it.

BatchNorm running statistics are averaged like the weights (no recomputation pass, unlike SWA's
``update_bn``): the backbone trains at a tenth of the learning rate, so its statistics barely move
between the checkpoints being averaged. Integer buffers (``num_batches_tracked``) are taken from the
last checkpoint.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import CheckpointError, read_model_file
from .config import ModelConfig


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of state dicts.

    Args:
        states: one or more state dicts with the same keys, shapes and dtypes. Floating tensors are
            averaged in float64 and cast back to their dtype; other tensors (integer buffers) are
            taken from the last state.

    Returns:
        a new state dict (the inputs are not modified).

    Raises:
        ValueError: no state, or states whose keys, shapes or dtypes differ (the message names the
            first offending key).
    """
    if not states:
        raise ValueError("average_states needs at least one state dict")
    keys = set(states[0])
    for i, st in enumerate(states[1:], start=1):
        if set(st) != keys:
            diff = sorted(keys.symmetric_difference(st))
            raise ValueError(f"state {i} has different keys from state 0 (e.g. {diff[0]!r})")
    out = {}
    for k in sorted(keys):
        ref = states[0][k]
        for i, st in enumerate(states[1:], start=1):
            if st[k].shape != ref.shape or st[k].dtype != ref.dtype:
                raise ValueError(f"{k!r}: state {i} has shape {tuple(st[k].shape)} {st[k].dtype}, "
                                 f"state 0 has {tuple(ref.shape)} {ref.dtype}")
        if ref.is_floating_point():
            acc = torch.zeros(ref.shape, dtype=torch.float64)
            for st in states:
                acc += st[k].to(torch.float64)
            out[k] = (acc / len(states)).to(ref.dtype)
        else:
            out[k] = states[-1][k].clone()
    return out


def average_checkpoints(paths: list[str | Path]) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Read model checkpoints of one architecture and average their weights.

    Args:
        paths: model ``.safetensors`` files or training checkpoint directories
            (``RUN/checkpoints/step-N``), in training order (integer buffers come from the last).

    Returns:
        (config, averaged state dict); the config is that of every input.

    Raises:
        CheckpointError: an unreadable checkpoint, or checkpoints whose model configs differ.
        ValueError: no path, or weights that differ in keys, shapes or dtypes.
    """
    if not paths:
        raise ValueError("average_checkpoints needs at least one checkpoint")
    configs, states = [], []
    for p in paths:
        config, state, _ = read_model_file(p)
        if configs and config.to_dict() != configs[0].to_dict():
            raise CheckpointError(f"{p} has a different model config from {paths[0]}; only checkpoints of "
                                  "one architecture can be averaged")
        configs.append(config)
        states.append(state)
    return configs[0], average_states(states)
