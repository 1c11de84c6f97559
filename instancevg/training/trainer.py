"""Trainer (`instancevg train`): AdamW or Adam with a lower backbone lr, warm-up then step or
cosine decay, grad-norm clipping, bf16/fp16 autocast (CUDA, and CPUs with native bf16), DDP
through torchrun (gloo on CPU, nccl on CUDA; GT count averaged over ranks, validation sharded),
validation on each source, a loss/metric curve PNG, atomic checkpoints and exact resume.
Options: :mod:`instancevg.training.train_config`; data sources: :mod:`instancevg.data.sources`.

Exact resume: the sample drawn at global step s, rank r, batch slot j is the fixed global
index ``(s * world + r) * batch + j``, loaded with the global RNGs seeded from (seed, index)
(:class:`SeededSamples`, the same in the main process and in any loader worker); checkpoints
restore weights, optimizer, scheduler, step and the training process's RNGs (torch CPU and CUDA,
NumPy, Python), and the loader draws its base seed from a generator of its own, so a resumed
run continues with the same samples, augmentations, dropout masks and updates.
"""
from __future__ import annotations

import io
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info
from tqdm import tqdm

from ..runtime.atomic_io import atomic_write_bytes, atomic_write_json
from ..checkpoint import latest_checkpoint, load_training_checkpoint, remove_stale_temps, save_training_checkpoint
from ..data.dataset import GroundingCollate
from ..data.sources import (DataSpec, describe_sources, eval_dataset, finite_length,
                            train_dataset, validation_sources)
from ..evaluation.evaluate import evaluate, headline
from .losses import LOSS_WEIGHTINGS, grounding_loss
from .text_cache import TextFeatureCache
from .mask_grounding import mask_words, word_masking_ids
from ..modeling.model import InstanceVGModel
from .train_config import TrainConfig, autocast_dtype, config_dict, lr_lambda, resolve_epochs

SAMPLE_SALT = 0x726E67  # sample RNG seeds: SeedSequence([seed, g, SAMPLE_SALT])


class GlobalIndexSampler(Sampler[int]):
    """Yields the global sample indices of steps [start, steps) for one rank (see module doc)."""

    def __init__(self, start: int, steps: int, batch: int, rank: int, world: int):
        self.start, self.steps, self.batch, self.rank, self.world = start, steps, batch, rank, world

    def __len__(self) -> int:
        return (self.steps - self.start) * self.batch

    def __iter__(self):
        for s in range(self.start, self.steps):
            base = (s * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)


def seed_global_rngs(seed: int, g: int) -> None:
    """Seed Python's, NumPy's and torch's CPU global RNGs from ``(seed, g)``, each differently.

    Raises:
        ValueError: a negative ``seed`` or ``g``.
    """
    words = np.random.SeedSequence([seed, g, SAMPLE_SALT]).generate_state(6)
    random.seed(int(words[0]) << 32 | int(words[1]))
    np.random.seed(words[2:4])
    torch.default_generator.manual_seed(int(words[4]) << 32 | int(words[5]))


class SeededSamples(Dataset):
    """``base[g]`` loaded with the global RNGs seeded by :func:`seed_global_rngs` from
    ``(seed, g)``, so whatever random augmentation a source draws from them, sample g gets the
    same draw in a fresh run, a resumed one, the main process or any loader worker.

    In the main process (``num_workers=0``) the RNG states are put back after each sample, so
    loading data does not move the training step's stream (dropout).
    """

    def __init__(self, base: Dataset, seed: int):
        self.base, self.seed = base, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, g: int):
        if get_worker_info() is not None:  # a worker's global RNGs serve only its samples
            seed_global_rngs(self.seed, g)
            return self.base[g]
        saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            seed_global_rngs(self.seed, g)
            return self.base[g]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (default) or Adam with three lr groups: the rest at ``lr``, the backbone at
    ``lr * backbone_lr_mult``, trainable text-encoder layers at ``lr * text_lr_mult``."""
    groups = {"rest": [], "backbone": [], "text": []}
    for n, p in model.named_parameters():
        if p.requires_grad:
            groups["backbone" if n.startswith("backbone.") else "text" if n.startswith("text_encoder.") else "rest"].append(p)
    mult = {"rest": 1.0, "backbone": cfg.backbone_lr_mult, "text": cfg.text_lr_mult}
    params = [{"params": ps, "lr": cfg.lr * mult[k]} for k, ps in groups.items() if ps or k != "text"]
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return kind(params, betas=tuple(cfg.adam_betas), eps=cfg.adam_eps, weight_decay=cfg.weight_decay,
                amsgrad=cfg.amsgrad)


def set_train_mode(model: torch.nn.Module, cfg: TrainConfig) -> None:
    """``model.train()``, with the backbone's BatchNorm layers back in eval mode when
    ``backbone_bn == "frozen"`` (running statistics fixed, affine parameters still trained)."""
    model.train()
    if cfg.backbone_bn == "frozen":
        for m in model.backbone.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def _num_gt(targets: list[dict], device: torch.device, world: int) -> float:
    """The batch's GT count; under DDP the mean over ranks (DETR's all-reduced ``num_boxes``)."""
    n = float(sum(t["boxes"].shape[0] for t in targets))
    if world > 1:
        count = torch.tensor([n], device=device)
        torch.distributed.all_reduce(count)
        n = float(count.item()) / world
    return n


def validation_specs(cfg: TrainConfig) -> list[DataSpec]:
    """``cfg.val_data``, or each training source whose kind has a ``val`` split
    (:func:`instancevg.data.sources.validation_sources`; copy-paste has none).

    Raises:
        ValueError: a bad SPEC, or a source that cannot validate itself (a COCO file without
            ``split.json``, whose ``val`` would be its training images).
    """
    if cfg.val_data:
        return [DataSpec.parse(s) for s in cfg.val_data]
    return validation_sources([DataSpec.parse(s) for s in cfg.data])


def build_datasets(cfg: TrainConfig, model_config):
    """(training stream indexed by global index, {label: validation dataset with full-size masks})."""
    train = train_dataset([DataSpec.parse(s) for s in cfg.data], model_config, cfg.seed, cfg.sampling())
    val = {str(spec): eval_dataset(spec, model_config, "val", limit=cfg.val_samples)
           for spec in validation_specs(cfg)}
    return train, val


# The parts of a model file that belong to its backbone variant: the trunk and the class prior's
# ImageNet classifier (``ModelConfig.backbone``).
BACKBONE_SPECIFIC = ("backbone.", "class_prior.conv_head.", "class_prior.bn.", "class_prior.fc.")


def weights_for_backbone(weights: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights of a file trained on another EfficientNet-Lite variant that fit ``model``: without
    the trunk and the prior's classifier (the model's own ImageNet ones stay) and without any
    weight whose shape differs (e.g. the neck's input projections of lite2's wider C3..C5; they
    start fresh)."""
    own = model.state_dict()
    return {k: v for k, v in weights.items()
            if not k.startswith(BACKBONE_SPECIFIC) and (k not in own or own[k].shape == v.shape)}


def init_from_report(source: str, missing: list[str], dropped: list[str], imagenet_backbone: str | None) -> str:
    """The line ``instancevg train --init-from`` prints about the weights the file did not give.

    Args:
        source: the ``--init-from`` file.
        missing: model keys the file lacks (or whose shape differs); ``dropped``: file keys the
            model has no use for (:func:`instancevg.checkpoint.load_weights`).
        imagenet_backbone: the backbone whose ImageNet file the model loaded before the file's
            weights (its trunk and classifier keys then come from there), or None when it loaded none.
    """
    from_imagenet = [k for k in missing if imagenet_backbone and k.startswith(BACKBONE_SPECIFIC)]
    fresh = [k for k in missing if k not in from_imagenet]
    imagenet = (f"{len(from_imagenet)} weights from {imagenet_backbone}'s ImageNet file "
                f"({_module_names(from_imagenet)}), " if from_imagenet else "")
    return (f"--init-from {source}: {imagenet}{len(fresh)} weights start fresh ({_module_names(fresh)}), "
            f"{len(dropped)} unused ({_module_names(dropped)})")


def _module_names(keys: list[str]) -> str:
    """'a.b.c.weight', 'a.b.d.bias' -> 'a.b' (the modules the keys belong to, two levels deep)."""
    return ", ".join(sorted({".".join(k.split(".")[:2]) for k in keys})) or "-"


def _distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def _by_source(val: dict) -> dict[str, dict]:
    """A history entry's validation metrics by source (entries before sources were named: one, "val")."""
    return val if all(isinstance(v, dict) for v in val.values()) else {"val": val}


def _val_sources(val_entries: list[dict]) -> list[str]:
    return list(dict.fromkeys(k for h in val_entries for k in _by_source(h["val"])))


def write_curve(history: list[dict], path: Path) -> None:
    """Plot training loss and validation metrics to a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [h for h in history if "loss" in h]
    val = [h for h in history if "val" in h]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        steps = np.array([h["step"] for h in train])
        loss = np.array([h["loss"] for h in train])
        axes[0].plot(steps, loss, alpha=0.3, label="loss")
        k = max(1, len(loss) // 30)
        if len(loss) >= k:
            smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
            axes[0].plot(steps[k - 1:], smooth, label=f"loss (mean of {k})")
        axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_title("training loss")
    if train:
        axes[0].legend()
    sources = _val_sources(val)
    names = ("GREC Pr@(F1=1,IoU>=0.5)", "GREC N-acc", "GRES gIoU") if len(sources) > 1 else (
        "GREC Pr@(F1=1,IoU>=0.5)", "GREC N-acc", "GRES cIoU", "GRES gIoU")
    for source in sources:
        points = [(h["step"], _by_source(h["val"])[source]) for h in val if source in _by_source(h["val"])]
        prefix = f"{source}: " if len(sources) > 1 else ""
        for name in names:
            axes[1].plot([p[0] for p in points], [p[1][name] for p in points], marker="o", label=prefix + name)
    axes[1].set_ylim(0, 1)
    axes[1].set_xlabel("step")
    axes[1].set_title("validation")
    if val:
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _fingerprint(model) -> list[float]:
    with torch.no_grad():
        return [float(p.double().sum()) for p in model.parameters() if p.requires_grad][:64]


def _out_of_time(t0: float, limit_s: float | None, device: torch.device, world: int) -> bool:
    """Whether the training time budget is spent; under DDP rank 0's clock decides for all."""
    if limit_s is None:
        return False
    flag = torch.tensor([float(time.time() - t0 >= limit_s)], device=device)
    if world > 1:
        torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, stop_at: int | None = None,
          time_limit_s: float | None = None) -> dict:
    """Run (or resume) training; returns the last validation metrics, ``{source: headline}``.

    ``stop_at`` ends the run after that global step (after its checkpoint), as an interruption
    would; ``resume=True`` later continues exactly. ``time_limit_s`` does the same at the first
    step that ends after that many seconds of training (for machines lent for a fixed time);
    all DDP ranks stop at the same step.

    Raises:
        FloatingPointError: if the loss becomes NaN/inf (with the step and loss parts).
        FileNotFoundError / CheckpointError: for a missing dataset or an unresumable run.
    """
    rank, world, local = _distributed()
    if cfg.device == "auto":
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    run = Path(cfg.out)
    run.mkdir(parents=True, exist_ok=True)
    if rank == 0:  # the only checkpoint writer, and not writing yet
        remove_stale_temps(run)

    model_config = cfg.model_config()
    train_set, val_sets = build_datasets(cfg, model_config)
    cfg = resolve_epochs(cfg, finite_length(train_set), world)
    init = None
    if cfg.init_from and not resume:
        from ..checkpoint import read_model_file

        init = read_model_file(cfg.init_from)
    # ImageNet weights are only needed when no other weights will overwrite them (with --init-from,
    # the class prior's classifier or another backbone's trunk may be what the file lacks).
    pretrained = not resume and (init is None or model_config.class_prior
                                 or init[0].backbone != model_config.backbone)
    model = InstanceVGModel(model_config, load_pretrained=pretrained).to(device)
    if init is not None:
        from ..checkpoint import load_weights

        file_config, weights, _ = init
        if file_config.backbone != model_config.backbone:
            weights = weights_for_backbone(weights, model)
        fresh, dropped = load_weights(model, weights, source=cfg.init_from, partial=True)
        if rank == 0 and (fresh or dropped):  # a config option or backbone the file was trained without
            print(init_from_report(cfg.init_from, fresh, dropped, model_config.backbone if pretrained else None))
    optimizer = build_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    history: list[dict] = []
    start = 0
    if resume:
        state = load_training_checkpoint(latest_checkpoint(run), model, optimizer, scheduler)
        start, history = int(state["step"]), state.get("history", [])
    if rank == 0:  # on resume too: `--resume RUN --steps N` records the new length
        atomic_write_json(run / "train_config.json", config_dict(cfg))
        atomic_write_json(run / "data_sources.json", describe_sources([DataSpec.parse(s) for s in cfg.data],
                                                                      validation_specs(cfg)))

    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    loader = DataLoader(
        SeededSamples(train_set, cfg.seed), batch_size=cfg.batch_size,
        sampler=GlobalIndexSampler(start, cfg.steps, cfg.batch_size, rank, world),
        num_workers=cfg.num_workers, collate_fn=GroundingCollate(model_config),
        persistent_workers=False, prefetch_factor=4 if cfg.num_workers else None, pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed),  # its base-seed draw leaves the global RNG alone
    )
    amp_dtype = autocast_dtype(cfg, device)
    use_amp = amp_dtype is not None
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    set_train_mode(model, cfg)
    last_val: dict = {}
    bar = tqdm(total=cfg.steps, initial=start, desc="train", disable=not progress or rank != 0, dynamic_ncols=True)
    t0 = time.time()
    step = start
    end = min(cfg.steps, stop_at) if stop_at else cfg.steps
    collate = loader.collate_fn
    masking = word_masking_ids(collate.tokenizer.tokenizer) if model_config.mask_grounding else None
    # A wholly frozen MiniLM is a fixed function of the ids: encode each distinct expression once.
    text_cache = TextFeatureCache(model.encode_text) if model.text_encoder.frozen else None
    matcher_weights = cfg.matcher_weights()
    for step, batch in zip(range(start, end), loader):
        ids, mask = batch["input_ids"], batch["attention_mask"]
        extra = {}
        if masking:  # MagNet's Mask Grounding: the same expressions with some words masked, drawn from (seed, step)
            masked = mask_words(ids, mask, *masking, torch.Generator().manual_seed(cfg.seed * 1_000_003 + step))
            extra = {"masked_input_ids": masked.to(device),
                     "target_union": torch.stack([t["union"] for t in batch["targets"]]).to(device)}
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            if text_cache is not None:
                extra["text_features"] = text_cache(ids.to(device), mask.to(device))
            out = ddp_model(batch["images"].to(device, non_blocking=True), ids.to(device), mask.to(device), **extra)
        losses = grounding_loss(out, batch["targets"], LOSS_WEIGHTINGS[cfg.loss_weighting], matcher_weights,
                                num_gt=_num_gt(batch["targets"], device, world))
        loss = losses["loss"]
        if not torch.isfinite(loss):
            parts = {k: float(v) for k, v in losses.items()}
            raise FloatingPointError(f"non-finite loss at step {step}: {parts}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        done = step + 1
        timed_out = _out_of_time(t0, time_limit_s, device, world)
        if timed_out:
            end = done
        if rank == 0:
            bar.update(1)
            if done % cfg.log_every == 0 or done == cfg.steps:
                entry = {"step": done, "lr": scheduler.get_last_lr()[0],
                         "sec_per_step": (time.time() - t0) / max(1, done - start)}
                entry.update({k: round(float(v.detach()), 5) for k, v in losses.items()})
                if text_cache is not None:
                    entry["text_cache_hit_rate"] = round(text_cache.hits / max(1, text_cache.hits + text_cache.misses), 4)
                history.append(entry)
                bar.set_postfix(loss=f"{entry['loss']:.3f}")
        if done % cfg.val_every == 0 or done == cfg.steps:  # every rank validates its shard
            last_val = {label: headline(evaluate(model, val_set, batch_size=cfg.batch_size, device=device,
                                                 progress=False, rank=rank, world=world))
                        for label, val_set in val_sets.items()}
            set_train_mode(model, cfg)  # evaluate() restores plain train mode
            if rank == 0:
                for label, values in last_val.items():
                    tqdm.write(f"step {done} val {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))
                history.append({"step": done, "val": last_val})
                write_curve(history, run / "curve.png")
        if rank == 0:
            if done % cfg.ckpt_every == 0 or done in (cfg.steps, end):
                save_training_checkpoint(run, done, model, optimizer, scheduler, {"history": history},
                                         keep_every=cfg.keep_every)
                atomic_write_json(run / "history.json", history)
        if timed_out:
            if rank == 0:
                tqdm.write(f"time limit of {time_limit_s:.0f} s reached at step {done}; continue with --resume {run}")
            break
    bar.close()
    if world > 1:
        prints = [None] * world
        torch.distributed.all_gather_object(prints, _fingerprint(model))
        if rank == 0:
            atomic_write_json(run / "ddp_check.json", {"world_size": world, "fingerprints": prints})
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    elif rank == 0 and step + 1 == cfg.steps:
        write_curve(history, run / "curve.png")
    return last_val
