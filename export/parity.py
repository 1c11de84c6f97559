"""PyTorch vs ONNX Runtime parity of an exported bundle on held-out samples.

    python export/parity.py --bundle BUNDLE [--checkpoint C] [--data procedural|SPEC] [--n 50]

Criteria: boxes within 1e-3 (cxcywh, normalised) on the kept instances, the same kept
query indices and no-target decisions (score > threshold), and mask IoU >= 0.99 for the union
mask and every kept instance mask at the original image size. Both sides are post-processed by
the runtime's ``postprocess_one`` so only the graphs differ; the union-mask IoU of ONNX Runtime +
runtime post-processing against PyTorch + ``instancevg.postprocess`` (the fused/unfused mask
head) is reported as the end-to-end figure.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

BOX_TOL = 1e-3
MIN_MASK_IOU = 0.99


PROCEDURAL = "procedural"  # --data default: procedural:0, the procedural benchmark rendered in memory, no files needed


def load_test_dataset(config, data: str | Path = PROCEDURAL, n: int = 50, split: str = "test"):
    """The first ``n`` samples of a held-out split, as evaluation items with full-size masks.

    Args:
        config: the model's :class:`~instancevg.config.ModelConfig` (input size, mask size).
        data: a data SPEC as ``instancevg eval --data`` takes (:mod:`instancevg.data.sources`):
            ``"procedural"`` (default, = ``procedural:0``): the procedural benchmark's split rendered
            in memory by ``render_sample(0, i, split)``, the same samples ``instancevg make-data
            --seed 0`` writes; ``procedural:SEED``; a directory holding ``dataset.json``;
            ``coco:INSTANCES.json:IMAGES``, ``grefcoco:ROOT``...
        n: number of samples. split: split name.

    Raises:
        ValueError: a bad SPEC (a bare path without ``dataset.json`` included) or split.
        FileNotFoundError: a SPEC's files are missing.
    """
    from instancevg.data.sources import DataSpec, eval_dataset

    return eval_dataset(DataSpec.parse(str(data)), config, split, limit=n)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _sessions(bundle: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return (ort.InferenceSession(str(bundle / "text_encoder.onnx"), opts, providers=["CPUExecutionProvider"]),
            ort.InferenceSession(str(bundle / "grounder.onnx"), opts, providers=["CPUExecutionProvider"]))


@torch.no_grad()
def check_parity(model, bundle: str | Path, dataset, box_tol: float = BOX_TOL, min_iou: float = MIN_MASK_IOU) -> dict:
    """Compare the PyTorch model with the bundle's ONNX graphs under ONNX Runtime (CPU).

    Args:
        model: the :class:`InstanceVGModel` that was exported (eval mode).
        bundle: bundle directory.
        dataset: evaluation items with full-size masks (:func:`load_test_dataset`).

    Returns:
        dict with ``n``, ``max_box_diff_kept`` and ``max_box_diff_all`` (normalised cxcywh),
        ``max_score_diff``, ``kept_instances`` (PyTorch side, queries above the threshold before
        NMS, summed), ``kept_mismatches`` (samples whose set of queries above the threshold, or
        number kept after NMS, differs),
        ``no_target_mismatches``, ``min_union_iou``, ``min_instance_iou``, ``mean_union_iou``,
        ``min_e2e_union_iou`` (against ``instancevg.postprocess``),
        ``failures`` (sample indices failing a criterion) and ``passed``.
    """
    from instancevg.runtime.postprocess import postprocess_one

    from instancevg.data.dataset import GroundingCollate
    from instancevg.postprocess import postprocess

    cfg = model.config
    te, gr = _sessions(Path(bundle))
    collate = GroundingCollate(cfg)
    thr = cfg.score_threshold
    stats = {"n": 0, "max_box_diff_kept": 0.0, "max_box_diff_all": 0.0, "max_score_diff": 0.0,
             "kept_mismatches": 0, "no_target_mismatches": 0, "kept_instances": 0, "min_union_iou": 1.0,
             "min_instance_iou": 1.0,
             "union_ious": [], "min_e2e_union_iou": 1.0, "failures": []}
    for idx in range(len(dataset)):
        batch = collate([dataset[idx]])
        img, ids, mask = batch["images"], batch["input_ids"], batch["attention_mask"]
        ref = model(img, ids, mask)
        feats = te.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        scores, boxes, inst, glob, _ = gr.run(None, {"image": img.numpy(), "text_features": feats,
                                                     "text_mask": mask.numpy()})
        size = batch["targets"][0]["orig_size"]
        text = batch["texts"][0]
        args = (text, size, cfg.decision)
        r_ref = postprocess_one(ref.scores[0].numpy(), ref.pred_boxes[0].numpy(),
                                ref.pred_masks[0].numpy(), ref.global_mask[0].numpy(), *args)
        r_onx = postprocess_one(scores[0], boxes[0], inst[0], glob[0], *args)
        r_torch = postprocess(ref, 0, *args)  # the PyTorch side
        e2e_iou = _iou(r_torch.union_mask, r_onx.union_mask)
        keep_ref = set(np.flatnonzero(ref.scores[0].numpy() > thr).tolist())
        keep_onx = set(np.flatnonzero(scores[0] > thr).tolist())
        box_diff = np.abs(boxes[0] - ref.pred_boxes[0].numpy())
        kept = sorted(keep_ref | keep_onx)
        diff_kept = float(box_diff[kept].max()) if kept else 0.0
        union_iou = _iou(r_ref.union_mask, r_onx.union_mask)
        inst_iou = min((_iou(a, b) for a, b in zip(r_ref.masks, r_onx.masks)), default=1.0)
        same_kept = keep_ref == keep_onx and len(r_ref) == len(r_onx)  # above threshold, and after NMS
        ok = (same_kept and r_ref.no_target == r_onx.no_target and diff_kept <= box_tol
              and union_iou >= min_iou and inst_iou >= min_iou and e2e_iou >= min_iou)
        stats["n"] += 1
        stats["max_box_diff_kept"] = max(stats["max_box_diff_kept"], diff_kept)
        stats["max_box_diff_all"] = max(stats["max_box_diff_all"], float(box_diff.max()))
        score_diff = float(np.abs(scores[0] - ref.scores[0].numpy()).max())
        stats["max_score_diff"] = max(stats["max_score_diff"], score_diff)
        stats["kept_instances"] += len(keep_ref)
        stats["kept_mismatches"] += not same_kept
        stats["no_target_mismatches"] += r_ref.no_target != r_onx.no_target
        stats["min_union_iou"] = min(stats["min_union_iou"], union_iou)
        stats["min_instance_iou"] = min(stats["min_instance_iou"], inst_iou)
        stats["union_ious"].append(union_iou)
        stats["min_e2e_union_iou"] = min(stats["min_e2e_union_iou"], e2e_iou)
        if not ok:
            stats["failures"].append(idx)
    stats["mean_union_iou"] = float(np.mean(stats.pop("union_ious"))) if stats["n"] else 1.0
    stats["passed"] = stats["n"] > 0 and not stats["failures"]
    return stats


def format_report(r: dict) -> str:
    """One line per figure of :func:`check_parity`."""
    return "\n".join([
        f"parity on {r['n']} held-out samples: {'PASS' if r['passed'] else 'FAIL'}",
        (f"  max |box diff| kept / all queries (normalised): {r['max_box_diff_kept']:.2e}"
         f" / {r['max_box_diff_all']:.2e} (tolerance {BOX_TOL:g})"),
        f"  max |score diff|: {r['max_score_diff']:.2e}",
        (f"  kept instances (PyTorch): {r['kept_instances']}, kept-set mismatches: {r['kept_mismatches']}, "
         f"no-target mismatches: {r['no_target_mismatches']}"),
        (f"  mask IoU: union min {r['min_union_iou']:.4f} mean {r['mean_union_iou']:.4f}, "
         f"instance min {r['min_instance_iou']:.4f} (required >= {MIN_MASK_IOU})"),
        f"  end-to-end union IoU vs instancevg.postprocess: min {r['min_e2e_union_iou']:.4f}",
        f"  failing samples: {r['failures'] or 'none'}",
    ])


def main(argv: list[str] | None = None) -> int:
    """CLI: exit 0 when parity holds, 1 when it does not, 2 on bad arguments or files (one line
    ``error: ...`` on stderr)."""
    from instancevg.runtime.bundle import Bundle
    from instancevg.runtime.errors import CLI_ERRORS, report_error

    from instancevg.api import DEFAULT_WEIGHTS
    from instancevg.checkpoint import load_model

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", required=True)
    p.add_argument("--checkpoint", default=None, help="the exported checkpoint (default: shipped model)")
    p.add_argument("--data", default=PROCEDURAL,
                   help="data SPEC as for `instancevg eval`: procedural (default: procedural:0, rendered in memory), "
                        "procedural:SEED, a make-data directory, coco:INSTANCES.json:IMAGES, grefcoco:ROOT, ...")
    p.add_argument("--n", type=int, default=50, help="samples (default 50)")
    args = p.parse_args(argv)
    try:
        Bundle.open(args.bundle)  # a missing or broken bundle fails here, before the model loads
        model = load_model(args.checkpoint or DEFAULT_WEIGHTS, "cpu")
        data = load_test_dataset(model.config, args.data, args.n)
        report = check_parity(model, args.bundle, data)
    except CLI_ERRORS as exc:  # BundleError, CheckpointError, FileNotFoundError, ValueError, ...
        return report_error(exc)
    print(format_report(report))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
