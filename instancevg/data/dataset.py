"""Torch datasets: the procedural benchmark and COCO-label scenes (drawn on the fly from (seed,
index)), copy-paste compositions, loaded grounding records, plus the batch collate function."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import ModelConfig
from ..image_io import load_image
from ..modeling.text_encoder import TextTokenizer
from .generators.coco_expressions import DEFAULT_MIX, ExpressionMix, candidate_expressions, draw_expression, scene_objects
from .generators.copy_paste import CopyPasteComposer
from .generators.procedural import render_sample
from .generators.procedural_parts import PART_GRANULARITY, render_part_sample
from .mixture import EpochPermutation
from .readers.coco import CocoImage
from .readers.record_json import load_grounding_json
from .readers.records import GroundingRecord, expand_expressions
from .sampling import TrainSampling
from .transforms import hflip, prepare_targets, preprocess_image, swap_left_right

def _item(image: np.ndarray, text: str, boxes: np.ndarray, masks: np.ndarray, config: ModelConfig, sample_id: str,
          full_masks: bool = False, categories: list[str] | None = None, granularity: str | None = None):
    h, w = image.shape[:2]
    target = prepare_targets(boxes, masks, (h, w), config.mask_size)
    target.update(orig_size=(h, w), boxes_xyxy=torch.from_numpy(np.asarray(boxes, np.float32).reshape(-1, 4)),
                  sample_id=sample_id)
    if categories is not None:  # the targets' category names (per-category evaluation)
        target["categories"] = categories
    if granularity is not None:  # "object" / "part" (per-granularity evaluation)
        target["granularity"] = granularity
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


class PartsGroundingDataset(ProceduralGroundingDataset):
    """Part-level procedural samples rendered on the fly: item i is
    ``render_part_sample(seed, offset + i, split)`` (:mod:`instancevg.data.generators.procedural_parts`);
    each target carries ``granularity`` ("part" or "object") for the per-granularity metrics."""

    def __getitem__(self, i: int) -> dict:
        s = render_part_sample(self.seed, self.offset + i, self.split)
        return _item(s.image, s.expression, s.boxes, s.masks, self.config, s.sample_id, self.full_masks,
                     granularity=PART_GRANULARITY[s.kind])


class RecordsDataset(Dataset):
    """One item per (record, expression) of loaded :class:`GroundingRecord` s (any loader).

    ``flip_prob`` > 0 (training) mirrors a sample with that probability, drawn from NumPy's global
    RNG (seeded per global index by the trainer), and swaps "left" and "right" in its expression.
    """

    def __init__(self, config: ModelConfig, records: list[GroundingRecord], limit: int | None = None,
                 full_masks: bool = False, flip_prob: float = 0.0):
        self.config, self.full_masks, self.flip_prob = config, full_masks, flip_prob
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
        boxes, masks = record.boxes, record.masks()
        if self.flip_prob and np.random.random() < self.flip_prob:
            image, boxes, masks = hflip(image, boxes, masks)
            text = swap_left_right(text)
        return _item(image, text, boxes, masks, self.config, str(record.image_id), self.full_masks)


class JsonGroundingDataset(RecordsDataset):
    """:class:`RecordsDataset` over one split of the project's grounding JSON (``dataset.json``)."""

    def __init__(self, config: ModelConfig, json_path: str | Path, split: str, image_root=None,
                 limit: int | None = None, full_masks: bool = False):
        super().__init__(config, load_grounding_json(json_path, split, image_root=image_root), limit, full_masks)


class CyclicDataset(Dataset):
    """Global index g -> ``base[perm_e[g % N]]``, a fresh permutation per epoch e = g // N (computed
    once per epoch, not per item)."""

    def __init__(self, base: Dataset, seed: int):
        self.base, self.order = base, EpochPermutation(len(base), seed)

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, g: int):
        return self.base[self.order(g)]


def scene_expression(image: np.ndarray, masks: np.ndarray, categories, crowd, vocabulary,
                     rng: np.random.Generator, visible=None, mix: ExpressionMix = DEFAULT_MIX):
    """One generated expression for a labelled scene (:mod:`.generators.coco_expressions`).

    Returns:
        ``(Expression, objects)``; the expression's targets index ``objects`` (and ``masks``).

    Raises:
        ValueError: the scene has no candidate expression at all.
    """
    h, w = image.shape[:2]
    objects = scene_objects(image, masks, categories, crowd, visible)
    expr = draw_expression(candidate_expressions(objects, w, h, vocabulary), rng, mix=mix)
    if expr is None:
        raise ValueError("no expression can be generated for this scene")
    return expr, objects


def _expression_item(config: ModelConfig, image: np.ndarray, masks: np.ndarray, expr, categories: list[str],
                     boxes: np.ndarray, sample_id: str, full_masks: bool) -> dict:
    """The model item of a generated expression: ``boxes`` (K, 4) xyxy and ``categories`` are those
    of all K objects of the scene; the expression's targets pick from them."""
    t = list(expr.targets)
    return _item(image, expr.text, np.asarray(boxes, np.float32).reshape(-1, 4)[t], masks[t], config, sample_id,
                 full_masks, categories=[categories[k] for k in t])


class CocoGroundingDataset(Dataset):
    """Grounding samples drawn from COCO-format object records
    (:mod:`instancevg.data.generators.coco_expressions`).

    Item g is image ``perm_e[g % N]`` (``shuffle=True``, training) or ``g % N`` (evaluation), with an
    expression drawn from ``rng([seed, g])``: the same (seed, g) always gives the same sample.

    Args:
        config: model config (input size, mask size).
        images: object records (one split).
        vocabulary: every category name of the dataset (for no-target expressions).
        seed: expression seed.
        length: dataset length (training: 2**62; evaluation: N x expressions per image).
        shuffle: permute images per epoch.
        full_masks: keep the union mask at the original size (evaluation).
        sampling: mirror and zoom the photo before the expression is generated, so "left", sizes and
            counts describe the photo the model sees (objects cut to less than half by a crop are never
            targets), and weigh the expression kinds (:class:`~.sampling.TrainSampling`; training; the
            default draws the evaluation sets and ``make-data --from-coco``).
    """

    def __init__(self, config: ModelConfig, images: list[CocoImage], vocabulary: list[str], seed: int,
                 length: int, shuffle: bool, full_masks: bool = False, sampling: TrainSampling = TrainSampling()):
        if not images:
            raise ValueError("no images to draw grounding samples from")
        self.config, self.images, self.vocabulary, self.seed = config, images, vocabulary, seed
        self.length, self.full_masks, self.sampling = length, full_masks, sampling
        self.order = EpochPermutation(len(images), seed) if shuffle else None

    def __len__(self) -> int:
        return self.length

    def expression(self, g: int):
        """``(CocoImage, image, masks, boxes, Expression)`` of item g: the image record, its (H, W, 3)
        uint8 pixels, (K, H, W) masks, (K, 4) xyxy pixel boxes (all mirrored when the flip drew so),
        and the expression drawn for it, whose targets index ``CocoImage.objects`` (what
        ``make-data --from-coco`` writes)."""
        im = self.images[self.order(g) if self.order else g % len(self.images)]
        image = load_image(im.image_path)
        if image.shape[:2] != (im.height, im.width):
            raise ValueError(f"{im.image_path} is {image.shape[1]}x{image.shape[0]} but the instances file says "
                             f"{im.width}x{im.height}")
        masks, boxes = im.masks(), np.array([o.box for o in im.objects], np.float32).reshape(-1, 4)
        image, boxes, masks, visible = self.sampling.augment(image, boxes, masks, self.seed, g)
        expr, _ = scene_expression(image, masks, [o.category for o in im.objects], [o.iscrowd for o in im.objects],
                                   self.vocabulary, np.random.default_rng([self.seed, g]),
                                   None if visible is None else visible.tolist(), self.sampling.mix)
        return im, image, masks, boxes, expr

    def __getitem__(self, g: int) -> dict:
        im, image, masks, boxes, expr = self.expression(g)
        return _expression_item(self.config, image, masks, expr, [o.category for o in im.objects], boxes,
                                f"coco-{im.image_id}-{g}", self.full_masks)


class CopyPasteDataset(Dataset):
    """Copy-paste compositions (:mod:`instancevg.data.generators.copy_paste`) with generated
    expressions; item g is drawn from ``rng([seed, g])``, then mirrored, zoomed and given an
    expression by ``sampling`` as :class:`CocoGroundingDataset` does. Training only."""

    def __init__(self, config: ModelConfig, composer: CopyPasteComposer, vocabulary: list[str], seed: int,
                 sampling: TrainSampling = TrainSampling()):
        self.config, self.composer, self.vocabulary, self.seed = config, composer, vocabulary, seed
        self.sampling = sampling

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, g: int) -> dict:
        rng = np.random.default_rng([self.seed, g])
        scene = self.composer.compose(rng)
        # The scene's boxes come from its masks after the augmentation (scene_expression), so none go in.
        image, _, masks, kept = self.sampling.augment(scene.image, np.zeros((len(scene.masks), 4), np.float32),
                                                      scene.masks, self.seed, g)
        visible = scene.visible_fraction if kept is None else [v * float(k) for v, k in zip(scene.visible_fraction, kept)]
        expr, objects = scene_expression(image, masks, scene.categories, scene.crowd, self.vocabulary, rng,
                                         visible, self.sampling.mix)
        return _expression_item(self.config, image, masks, expr, scene.categories,
                                np.array([o.box for o in objects], np.float32), f"copy-paste-{g}", False)


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
