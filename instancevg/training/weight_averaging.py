"""Uniform averaging of the weights of several checkpoints of one run (checkpoint averaging).

The method is the checkpoint averaging of Vaswani et al., "Attention Is All You Need" (2017,
Sec. 6.1: the last 5 or 20 checkpoints, written at fixed intervals). Why it tends to help is argued
by Izmailov et al., "Averaging Weights Leads to Wider Optima and Better Generalization" (UAI 2018,
Sec. 3, SWA): an average of weights along the end of a run lies nearer the centre of the flat region
SGD wanders in than any one of them. ``instancevg pack --checkpoint A --checkpoint B ...`` uses it;
``instancevg train --keep-every N`` keeps the checkpoints to average.

BatchNorm running statistics (the backbone's) are averaged like the weights. SWA instead
recomputes them for the averaged weights (``update_bn``), because averaged weights need not produce
the averaged statistics; here that is an approximation whose effect is measured on the validation
split, not assumed. Integer buffers (``num_batches_tracked``) are taken from the last checkpoint.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import CheckpointError, model_file, read_model_file
from ..config import ModelConfig


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of state dicts.

    Args:
        states: one or more state dicts with the same keys and shapes. Floating tensors (any
            floating dtype, fp16 and fp32 may be mixed) are averaged in float64; other tensors
            (integer buffers) are taken from the last state and must have the same dtype in all.

    Returns:
        a new state dict: floating tensors as float32, others as given (the inputs are not modified).

    Raises:
        ValueError: no state, or states whose keys, shapes or dtype kinds differ (the message names
            the first offending key and the state's position in the list).
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
            t = st[k]
            same_kind = t.dtype == ref.dtype or (t.is_floating_point() and ref.is_floating_point())
            if t.shape != ref.shape or not same_kind:
                raise ValueError(f"{k!r}: state {i} has shape {tuple(t.shape)} {t.dtype}, "
                                 f"state 0 has {tuple(ref.shape)} {ref.dtype}")
        if ref.is_floating_point():
            acc = torch.zeros(ref.shape, dtype=torch.float64)
            for st in states:
                acc += st[k].to(torch.float64)
            out[k] = (acc / len(states)).to(torch.float32)
        else:
            out[k] = states[-1][k].clone()
    return out


def average_checkpoints(paths: list[str | Path]) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Read model checkpoints of one run and average their weights (:func:`average_states`).

    Args:
        paths: model ``.safetensors`` files or training checkpoint directories
            (``RUN/checkpoints/step-N``), in training order (integer buffers come from the last).

    Returns:
        (config, averaged state dict, floating tensors float32); the configs are all equal.

    Raises:
        CheckpointError: an unreadable checkpoint, or checkpoints whose model configs differ (the
            message names the fields).
        ValueError: no path, the same checkpoint given twice, or weights that differ in keys,
            shapes or dtype kinds (the message names both files).
    """
    if not paths:
        raise ValueError("average_checkpoints needs at least one checkpoint")
    resolved = [model_file(p).resolve() for p in paths]
    for i, f in enumerate(resolved):
        if f in resolved[:i]:
            raise ValueError(f"{paths[i]} is given twice; each checkpoint may be averaged once")
    first, states = None, []
    for p in paths:
        config, state, _ = read_model_file(p)
        this = config.to_dict()
        first = this if first is None else first
        fields = sorted(f for f in first.keys() | this.keys() if first.get(f) != this.get(f))
        if fields:
            raise CheckpointError(f"{p} and {paths[0]} have different model configs ({', '.join(fields)}); "
                                  "only checkpoints of one run can be averaged")
        states.append(state)
    try:
        averaged = average_states(states)
    except ValueError as exc:
        names = ", ".join(f"state {i} = {p}" for i, p in enumerate(paths))
        raise ValueError(f"cannot average {names}: {exc}") from None
    return config, averaged  # every config equals the first
