"""Evaluation loop: GREC, GRES, REC and RES metrics over a dataset (`instancevg eval`)."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from ..data.dataset import GroundingCollate
from .scorer import GroundingScorer, headline
from ..postprocess import postprocess

__all__ = ["evaluate", "format_table", "headline"]  # headline: instancevg.evaluation.scorer


@torch.no_grad()
def evaluate(model, dataset: Dataset, batch_size: int = 8, device: str | torch.device = "cpu",
             num_workers: int = 0, progress: bool = True, rank: int = 0, world: int = 1) -> dict:
    """Run the model over ``dataset`` (items built with ``full_masks=True``) and compute metrics
    with :class:`~instancevg.evaluation.scorer.GroundingScorer` (the scoring shared with
    ``export/evaluate_bundle.py``).

    GREC scores the final prediction (queries above the threshold after duplicate suppression,
    as the reference's ``filtered_boxes``; the evaluator applies its own >= 0.7); GRES uses the
    post-processed union mask and no-target decision (no score > 0.7). REC/RES are computed on
    the single-target samples only (classic REC/RES as special cases).

    With ``world`` > 1 (DDP) rank r evaluates items r, r + world, ...; the counters are then summed
    over ranks (``all_gather_object``) and every rank returns the metrics of the whole dataset.

    Returns:
        ``{"GREC": {...}, "GRES": {...}, "REC": {...}, "RES": {...}, "n_samples": N,
        "no-target FP": no-target samples answered with a kept box (confident false positives),
        "REC per category": {name: {"n", "Acc@0.5"}}, "consistency": {...}}``; the
        per-category table covers samples whose target carries ``categories`` (COCO-label
        sources); ``consistency`` is :class:`~instancevg.evaluation.consistency.ConsistencyEvaluator`
        over every kept instance (box vs. its mask's box, reference point inside its mask).
    """
    config = model.config
    if world > 1:
        dataset = Subset(dataset, range(rank, len(dataset), world))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=GroundingCollate(config))
    scorer = GroundingScorer()
    was_training = model.training
    model.eval()
    for batch in tqdm(loader, desc="eval", disable=not progress, leave=False):
        out = model(batch["images"].to(device), batch["input_ids"].to(device), batch["attention_mask"].to(device))
        for i, target in enumerate(batch["targets"]):
            r = postprocess(out, i, batch["texts"][i], target["orig_size"], config.decision, config.kernels)
            h, w = target["orig_size"]
            points = out.reference_points[i, r.extra["kept_queries"]].float().cpu().numpy() * (w, h)
            categories = target.get("categories")
            scorer.update(r, target["boxes_xyxy"].numpy(), target["union_full"],
                          categories[0] if categories else None, points, target.get("granularity"))
    model.train(was_training)
    if world > 1:  # every rank ends with the counters of all shards, merged in rank order
        shards = [None] * world
        torch.distributed.all_gather_object(shards, scorer)
        scorer = GroundingScorer()
        for shard in shards:
            scorer.merge(shard)
    return scorer.compute()


def format_table(metrics: dict) -> str:
    """Two-column text table of :func:`headline` values (fractions shown as percentages)."""
    rows = headline(metrics)
    width = max(len(k) for k in rows)
    lines = [f"{'metric':<{width}}  value", "-" * (width + 9)]
    lines += [f"{k:<{width}}  {100 * v:6.2f}" for k, v in rows.items()]
    lines.append(f"{'samples':<{width}}  {metrics['n_samples']:6d}")
    if "no-target FP" in metrics:
        lines.append(f"{'no-target FP (kept box)':<{width}}  {metrics['no-target FP']:6d}")
    c = metrics.get("consistency")
    if c and c["instances"]:
        lines.append(f"consistency of {c['instances']} kept instances: box/mask-box IoU >= 0.5 "
                     f"{100 * c['box/mask-box IoU>=0.5']:.1f} %, mean IoU {c['mean box/mask-box IoU']:.3f}, "
                     f"reference point in mask {100 * c['point in mask']:.1f} %")
        lines.append("  box/mask-box IoU histogram: " + ", ".join(f"{k} {v}" for k, v in c["IoU histogram"].items()))
    for name, res in metrics.get("RES per granularity", {}).items():
        lines.append(f"{name}-level expressions ({res['n_samples']}): mIoU {100 * res['mIoU']:.2f}, "
                     f"oIoU {100 * res['oIoU']:.2f}")
    return "\n".join(lines)
