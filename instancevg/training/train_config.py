"""Training options (``RUN/train_config.json``), named recipes, ``--config FILE.yaml`` /
``--set key=value`` overrides, the learning-rate schedule and the autocast precision."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from ..config import ModelConfig, get_preset
from ..data.generators.coco_expressions import ExpressionMix
from ..data.sampling import TrainSampling
from ..data.sources import DataSpec
from .losses import LOSS_WEIGHTINGS
from .matcher import MatcherWeights

__all__ = ["TrainConfig", "RECIPES", "PRECISIONS", "apply_overrides", "parse_set", "read_config_file",
           "autocast_dtype", "lr_lambda", "resolve_epochs"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULES = ("step", "cosine")
OPTIMIZERS = ("adamw", "adam")
BACKBONE_BN = ("train", "frozen")
MAX_SCALE_JITTER = 3.0  # zoom factors within [1/4, 4]


@dataclass
class TrainConfig:
    """Options of one training run (saved in RUN/train_config.json).

    ``data`` lists training sources as SPECs (``instancevg.data.sources``: ``KIND:PATH[:EXTRA][@WEIGHT]``,
    several make a weighted mixture); ``val_data`` the validation sources (default: each training
    source that has a ``val`` split, copy-paste excluded). ``precision``: ``auto`` is bf16 autocast
    on CUDA (fp16 where bf16 is unsupported) and on CPUs with native bf16 (AVX-512 BF16 / AMX),
    fp32 elsewhere; ``fp32``, ``bf16`` and ``fp16`` (CUDA only) force one. ``amp: false`` is fp32.

    Schedule: linear warm-up over ``warmup_steps``, then ``step`` (x ``decay_gamma`` at each of
    ``decay_steps``, default 80 % of ``steps``) or ``cosine`` (to ``min_lr_ratio`` x lr at
    ``steps``). With ``epochs`` set, ``steps``, ``warmup_steps`` and ``decay_steps`` are derived
    from the training set's size (``warmup_epochs``, ``decay_epochs``; finite sources only).
    ``model`` overrides fields of the preset's ModelConfig (``--set mask_dim=256``);
    ``loss_weighting`` names a :data:`instancevg.training.losses.LOSS_WEIGHTINGS` entry; ``backbone_bn``
    ``frozen`` keeps the backbone's BatchNorm statistics fixed (eval mode; affine still trained).
``hflip`` is the probability of mirroring a real-photo training sample (COCO, copy-paste and
released-dataset sources; "left" and "right" swap in its expression, or the expression is
generated on the mirrored photo); procedural sources are never mirrored. ``scale_jitter`` zooms a
COCO or copy-paste photo in (crop) or out (pad) by a factor drawn log-uniformly up to
``1 + scale_jitter`` before its expression is generated (0, the default, is off). ``multi_target_weight``
makes generated expressions (COCO, copy-paste) that refer to several objects that many times likelier;
``wrong_count_weight`` weighs their count phrases that refer to nothing against the other no-target
kinds (1.0 uniform, where about half of all count phrases are no-target), ``similar_absent_weight``
the absent categories that share a COCO supercategory with one in the photo ("the dog" beside a
cat; 0 = never): :class:`~instancevg.data.generators.coco_expressions.ExpressionMix`.
``point_in_box_cost`` is the matching cost of giving a target to a query whose reference point
lies outside its box (:class:`~instancevg.training.matcher.MatcherWeights`; 0, the default, is off).

    Raises:
        ValueError: ``keep_every`` < 0 or not a multiple of ``ckpt_every``, no data source, a bad SPEC, or an unknown precision,
            schedule, optimizer, loss weighting, backbone_bn or model field.
    """

    data: list[str]
    out: str
    preset: str = "edge"
    steps: int = 20000
    batch_size: int = 8
    lr: float = 5e-4
    backbone_lr_mult: float = 0.1
    weight_decay: float = 1e-4
    warmup_steps: int = 300
    decay_steps: list[int] = field(default_factory=list)  # default: at 80 % of steps
    decay_gamma: float = 0.1
    clip_grad_norm: float = 1.0
    val_every: int = 500
    val_samples: int = 200
    ckpt_every: int = 250
    keep_every: int = 0  # also keep every checkpoint whose step is a multiple of this (0: only the last 2)
    log_every: int = 20
    num_workers: int = 2
    seed: int = 0
    amp: bool = True
    device: str = "auto"
    init_from: str | None = None
    val_data: list[str] = field(default_factory=list)
    precision: str = "auto"
    schedule: str = "step"
    min_lr_ratio: float = 0.01
    epochs: float | None = None
    warmup_epochs: float | None = None
    decay_epochs: list[float] = field(default_factory=list)
    optimizer: str = "adamw"
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    amsgrad: bool = False
    loss_weighting: str = "design"
    backbone_bn: str = "train"
    text_lr_mult: float = 0.1
    hflip: float = 0.5
    scale_jitter: float = 0.0
    multi_target_weight: float = 1.0
    wrong_count_weight: float = 1.0
    similar_absent_weight: float = 0.0
    point_in_box_cost: float = 0.0
    model: dict = field(default_factory=dict)
    recipe: str | None = None

    def __post_init__(self):
        if isinstance(self.data, str):  # a run directory from before data sources were lists
            self.data = [self.data]
        if not self.data:
            raise ValueError("no training data source (--data SPEC)")
        for spec in [*self.data, *self.val_data]:
            DataSpec.parse(spec)
        self.adam_betas = tuple(self.adam_betas)
        for name, allowed in (("precision", PRECISIONS), ("schedule", SCHEDULES), ("optimizer", OPTIMIZERS),
                              ("loss_weighting", tuple(LOSS_WEIGHTINGS)), ("backbone_bn", BACKBONE_BN)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        if self.keep_every < 0:
            raise ValueError(f"keep_every must be >= 0 (0 keeps only the last 2 checkpoints), got {self.keep_every}")
        if self.keep_every and self.keep_every % self.ckpt_every:
            raise ValueError(f"keep_every ({self.keep_every}) must be a multiple of ckpt_every ({self.ckpt_every}): "
                             f"checkpoints are written every ckpt_every steps, so no other step can be kept")
        self.sampling()  # checks the expression mix's weights
        self.matcher_weights()  # checks point_in_box_cost
        if not 0.0 <= self.hflip <= 1.0:
            raise ValueError(f"hflip is a probability in [0, 1], got {self.hflip}")
        if not 0.0 <= self.scale_jitter <= MAX_SCALE_JITTER:
            raise ValueError(f"scale_jitter must be in [0, {MAX_SCALE_JITTER}] (zoom by up to 1 + scale_jitter), "
                             f"got {self.scale_jitter}")
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        self.model_config()  # unknown model fields fail now, not after the data has loaded

    def sampling(self) -> TrainSampling:
        """How the training sources draw and augment samples: ``hflip``, ``scale_jitter`` and the
        expression mix of ``multi_target_weight``, ``wrong_count_weight`` and ``similar_absent_weight``.

        Raises:
            ValueError: a weight of the mix is out of range (:class:`ExpressionMix`).
        """
        mix = ExpressionMix(self.multi_target_weight, self.wrong_count_weight, self.similar_absent_weight)
        return TrainSampling(hflip=self.hflip, scale_jitter=self.scale_jitter, mix=mix)

    def matcher_weights(self) -> MatcherWeights:
        """The matching-cost weights of this run: the defaults with ``point_in_box_cost``.

        Raises:
            ValueError: ``point_in_box_cost`` is negative or not finite.
        """
        return MatcherWeights(point_in_box_cost=self.point_in_box_cost)

    def model_config(self) -> ModelConfig:
        """The preset with ``model`` overrides applied.

        Raises:
            ValueError: unknown preset or ModelConfig field (lists the known ones).
        """
        known = {f.name for f in fields(ModelConfig)}
        unknown = sorted(set(self.model) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig field(s) {unknown}; known: {sorted(known)}")
        return get_preset(self.preset, **self.model)


# Named recipes: TrainConfig fields they set (--recipe NAME; explicit flags and --set still win).
RECIPES: dict[str, dict] = {
    # Dmmm1997/InstanceVG configs/gres/InstanceVG-grefcoco.py (+ tools/train.py, apis/train.py):
    # Adam(lr 5e-4, betas (0.9, 0.98), eps 1e-9, weight decay 0, amsgrad), visual encoder lr x0.1,
    # grad-norm clip 0.15, 16 samples per GPU, 10 epochs, MultiStepLRWarmUp (1 warm-up epoch,
    # x0.1 from epoch 7 of 10), 320x320 input, detection loss x0.1 with auxiliary layers at weight 1.
    "instancevg-grefcoco": dict(
        optimizer="adam", lr=5e-4, adam_betas=(0.9, 0.98), adam_eps=1e-9, weight_decay=0.0, amsgrad=True,
        backbone_lr_mult=0.1, clip_grad_norm=0.15, batch_size=16, epochs=10.0, warmup_epochs=1.0,
        decay_epochs=[6.0], decay_gamma=0.1, schedule="step", loss_weighting="official",
    ),
}


def read_config_file(path: str | Path) -> dict:
    """A YAML (or JSON) mapping of TrainConfig / ModelConfig fields.

    Raises:
        FileNotFoundError: missing file.
        ValueError: not a mapping, or not valid YAML.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of field: value, got {type(data).__name__}")
    return data


def parse_set(items: list[str]) -> dict:
    """``["lr=1e-4", "mask_dim=256"]`` -> ``{"lr": 1e-4, "mask_dim": 256}`` (values read as YAML).

    Raises:
        ValueError: an item without ``=``.
    """
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set takes key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def _coerce(key: str, value, annotation: str):
    """A YAML-read value as its field's scalar type (YAML reads ``1e-4`` as a string).

    Raises:
        ValueError: a value that is not of the field's type.
    """
    kind = str(annotation).split(" ")[0].split("[")[0]
    if value is None or kind not in ("float", "int", "bool"):
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {value!r}") from None
    if kind == "int":
        if number != int(number):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return int(number)
    return number


def apply_overrides(cfg: TrainConfig, overrides: dict) -> TrainConfig:
    """``cfg`` with each key set: a TrainConfig field directly, a ModelConfig field into ``model``.

    Raises:
        ValueError: a key that is neither (the message lists both sets of names), or an invalid value.
    """
    train_fields = {f.name: f.type for f in fields(TrainConfig)}
    model_fields = {f.name: f.type for f in fields(ModelConfig)}
    changes, model = {}, dict(cfg.model)
    for key, value in overrides.items():
        if key in train_fields:
            changes[key] = _coerce(key, value, train_fields[key])
        elif key in model_fields:
            value = _coerce(key, value, model_fields[key])
            model[key] = tuple(value) if isinstance(value, list) else value
        else:
            raise ValueError(f"unknown setting {key!r}: not a TrainConfig field ({sorted(train_fields)}) nor a "
                             f"ModelConfig field ({sorted(model_fields)})")
    return replace(cfg, **changes, model=model)


def recipe_settings(name: str) -> dict:
    """The fields recipe ``name`` sets.

    Raises:
        ValueError: unknown recipe (lists the known ones).
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
    return dict(RECIPES[name], recipe=name)


def resolve_epochs(cfg: TrainConfig, train_size: int | None, world: int) -> TrainConfig:
    """With ``epochs`` set: ``steps``, ``warmup_steps`` and ``decay_steps`` from the training set size
    (sentences), the batch size and the world size; otherwise ``cfg`` unchanged.

    Raises:
        ValueError: ``epochs`` with an endless source (procedural, COCO or copy-paste are drawn on the fly).
    """
    if cfg.epochs is None:
        return cfg
    if not train_size:
        raise ValueError("--epochs needs finite training sources (released datasets or procedural files); "
                         "procedural, coco and copy-paste training streams are endless: use --steps")
    per_epoch = max(1, math.ceil(train_size / (cfg.batch_size * world)))
    return replace(cfg, steps=max(1, round(cfg.epochs * per_epoch)),
                   warmup_steps=round(cfg.warmup_epochs * per_epoch) if cfg.warmup_epochs is not None
                   else cfg.warmup_steps,
                   decay_steps=[round(e * per_epoch) for e in cfg.decay_epochs] or cfg.decay_steps)


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run on ``device`` (None: plain fp32); see :class:`TrainConfig`.

    Raises:
        ValueError: fp16 asked for on the CPU.
    """
    from ..modeling.precision import cpu_supports_bf16

    if not cfg.amp or cfg.precision == "fp32":
        return None
    if cfg.precision == "fp16":
        if device.type != "cuda":
            raise ValueError("precision fp16 needs CUDA; use bf16 or fp32 on the CPU")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if cfg.precision == "bf16" or cpu_supports_bf16():
        return torch.bfloat16
    return None


def lr_lambda(cfg: TrainConfig):
    """step -> lr factor: linear warm-up, then step decay or cosine (see :class:`TrainConfig`)."""
    decay = cfg.decay_steps or [int(0.8 * cfg.steps)]

    def fn(step: int) -> float:
        warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
        if cfg.schedule == "cosine":
            t = min(1.0, max(0.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)))
            return warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))
        return warm * cfg.decay_gamma ** sum(step >= d for d in decay)

    return fn


def config_dict(cfg: TrainConfig) -> dict:
    """Plain-JSON form for train_config.json (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
