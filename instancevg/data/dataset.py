"""Torch datasets over the procedural benchmark (drawn on the fly from (seed, index)) and over
gRefCOCO-style JSON records, plus the batch collate function."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import ModelConfig
from ..image_io import load_image
from ..text_encoder import TextTokenizer
from .grefcoco import expand_expressions, load_grounding_json
from .procedural import render_sample
from .transforms import prepare_targets, preprocess_image


def dataset_info(data_dir: str | Path) -> dict:
    """The ``info`` block of ``DIR/dataset.json``.

    Raises:
        FileNotFoundError: if DIR/dataset.json does not exist.
        ValueError: if it is not valid JSON.
    """
    path = Path(data_dir) / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: create it with `instancevg make-data --out {data_dir}`")
    try:
        with open(path) as f:
            return json.load(f).get("info", {})
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc


def _item(image: np.ndarray, text: str, boxes: np.ndarray, masks: np.ndarray, config: ModelConfig, sample_id: str,
          full_masks: bool = False):
    h, w = image.shape[:2]
    target = prepare_targets(boxes, masks, (h, w), config.mask_size)
    target.update(orig_size=(h, w), boxes_xyxy=torch.from_numpy(np.asarray(boxes, np.float32).reshape(-1, 4)),
                  sample_id=sample_id)
    if full_masks:  # evaluation needs the union at the original size
        target["union_full"] = masks.any(0) if len(masks) else np.zeros((h, w), dtype=bool)
    return {
        "image": preprocess_image(image, config.image_size, config.image_mean, config.image_std),
        "text": text,
        "target": target,
    }


class ProceduralGroundingDataset(Dataset):
    """Procedural samples rendered on the fly: item i is ``render_sample(seed, offset + i, split)``.

    Used for training so that no image is written to disk; ``offset`` lets an exact resume or a
    distributed rank continue at any global index.
    """

    def __init__(self, config: ModelConfig, seed: int, split: str, length: int, offset: int = 0,
                 full_masks: bool = False):
        self.config, self.seed, self.split, self.length, self.offset = config, seed, split, length, offset
        self.full_masks = full_masks

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        s = render_sample(self.seed, self.offset + i, self.split)
        return _item(s.image, s.expression, s.boxes, s.masks, self.config, s.sample_id, self.full_masks)


class JsonGroundingDataset(Dataset):
    """One item per (record, expression) of a gRefCOCO / Ref-ZOM / RefCOCO-style JSON split."""

    def __init__(self, config: ModelConfig, json_path: str | Path, split: str, image_root=None,
                 limit: int | None = None, full_masks: bool = False):
        self.config, self.full_masks = config, full_masks
        records = load_grounding_json(json_path, split, image_root=image_root)
        self.items = expand_expressions(records)
        if limit is not None:
            self.items = self.items[:limit]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        record, text = self.items[i]
        image = load_image(record.image_path)
        if image.shape[:2] != (record.height, record.width):
            raise ValueError(
                f"{record.image_path} is {image.shape[1]}x{image.shape[0]} but its record says "
                f"{record.width}x{record.height}"
            )
        return _item(image, text, record.boxes, record.masks(), self.config, str(record.image_id), self.full_masks)


class GroundingCollate:
    """Stack images and tokenize the batch's expressions.

    Returns ``{"images": (B,3,S,S), "input_ids": (B,L), "attention_mask": (B,L), "texts": [...],
    "targets": [target dicts]}``.
    """

    def __init__(self, config: ModelConfig):
        self.tokenizer = TextTokenizer(config.max_text_len)

    def __call__(self, items: list[dict]) -> dict:
        ids, mask = self.tokenizer([it["text"] for it in items])
        return {
            "images": torch.stack([it["image"] for it in items]),
            "input_ids": ids,
            "attention_mask": mask,
            "texts": [it["text"] for it in items],
            "targets": [it["target"] for it in items],
        }
