"""Copy-paste composition: new scenes with exact masks from real instances (training split only).

Ghiasi et al., "Simple Copy-Paste is a Strong Data Augmentation Method for Instance Segmentation",
CVPR 2021: objects are cut from one image by their masks and pasted, rescaled and flipped, onto
another; objects underneath keep only their visible part. Here a scene is a background -- another
training photo with all its annotations (70 %), or a ``skimage.data`` texture with no COCO object
in it (brick, grass, gravel) -- and 1-4 pasted instances, each scaled to cover 2-20 % of the
canvas, flipped half of the time, placed uniformly and blended through a Gaussian-softened mask
edge. Later pastes occlude earlier objects; every object's mask is its visible part, and its
visible fraction goes to the expression generator (mostly hidden objects are never a target).

With ``groups`` (the ``copy-paste-groups`` source) every scene pastes 2-4 instances of one
category instead (the category uniform over the categories that have a pasteable instance, each
instance drawn from that category's instances, repeats allowed), so phrases about groups ("both
zebras", "all the cups") get new layouts and counts from the same photos: issue 26 measured that
group phrases reached on the training photos do not carry over to new ones.

The composer is given the training split's images only, so validation photos are never a source
or a background. A scene is a pure function of its ``rng``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ...image_io import load_image
from ..readers.coco import CocoImage
from .coco_expressions import MIN_TARGET_AREA

__all__ = ["CopyPasteComposer", "ComposedScene", "TEXTURE_BACKGROUNDS"]

# skimage.data photos without any COCO object (never coffee/chelsea/astronaut/motorcycle: those
# are the README's real-photo checks).
TEXTURE_BACKGROUNDS = ("brick", "grass", "gravel")
PHOTO_BACKGROUND_RATE = 0.7
AREA_RANGE = (0.02, 0.20)
EDGE_SIGMA = 1.0


@dataclass
class ComposedScene:
    """A composed image and its objects.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        masks: (K, H, W) bool visible masks.
        categories: K category names.
        crowd: K crowd flags (background photo objects keep theirs; pasted ones are never crowd).
        visible_fraction: K fractions of each object's mask left visible.
    """

    image: np.ndarray
    masks: np.ndarray
    categories: list[str]
    crowd: list[bool]
    visible_fraction: list[float]


@lru_cache(maxsize=None)
def _texture(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


class CopyPasteComposer:
    """Draws composed scenes from a list of training images.

    Args:
        images: object records of the training split (sources and photo backgrounds).
        max_paste: most instances pasted into one scene.
        groups: paste 2..``max_paste`` instances of one category per scene (module docstring).

    Raises:
        ValueError: when no image has an object that can be pasted (non-crowd, >= 1 % of its image),
            or ``groups`` with ``max_paste`` < 2.
    """

    def __init__(self, images: list[CocoImage], max_paste: int = 4, groups: bool = False):
        self.images, self.max_paste, self.groups = images, max_paste, groups
        self.sources = [(i, k) for i, im in enumerate(images) for k, o in enumerate(im.objects)
                        if not o.iscrowd and o.area >= MIN_TARGET_AREA * im.width * im.height]
        if not self.sources:
            raise ValueError("copy-paste: no non-crowd object covering >= 1 % of its image to paste")
        if groups and max_paste < 2:
            raise ValueError(f"copy-paste groups need max_paste >= 2, got {max_paste}")
        by_category: dict[str, list[tuple[int, int]]] = {}
        for i, k in self.sources:
            by_category.setdefault(images[i].objects[k].category, []).append((i, k))
        self.by_category = [by_category[c] for c in sorted(by_category)]

    def _background(self, rng: np.random.Generator):
        if rng.random() < PHOTO_BACKGROUND_RATE:
            im = self.images[int(rng.integers(len(self.images)))]
            masks = im.masks()
            return (load_image(im.image_path), list(masks), [o.category for o in im.objects],
                    [o.iscrowd for o in im.objects])
        tex = _texture(TEXTURE_BACKGROUNDS[int(rng.integers(len(TEXTURE_BACKGROUNDS)))])
        h, w = (360, 480) if rng.random() < 0.5 else (480, 360)
        y0 = int(rng.integers(0, max(1, tex.shape[0] - h // 2)))
        x0 = int(rng.integers(0, max(1, tex.shape[1] - w // 2)))
        crop = tex[y0:y0 + h // 2 + tex.shape[0] // 3, x0:x0 + w // 2 + tex.shape[1] // 3]
        return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR), [], [], []

    def compose(self, rng: np.random.Generator) -> ComposedScene:
        """One scene drawn from ``rng`` (see the module docstring)."""
        canvas, masks, cats, crowd = self._background(rng)
        canvas = canvas.copy()
        hgt, wid = canvas.shape[:2]
        initial = [float(m.sum()) for m in masks]
        if self.groups:
            pool = self.by_category[int(rng.integers(len(self.by_category)))]
            count = int(rng.integers(2, self.max_paste + 1))
        else:
            pool, count = self.sources, int(rng.integers(1, self.max_paste + 1))
        for _ in range(count):
            i, k = pool[int(rng.integers(len(pool)))]
            im = self.images[i]
            obj = im.objects[k]
            x0, y0, x1, y1 = (int(round(float(v))) for v in obj.box)
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(im.width, max(x1, x0 + 1)), min(im.height, max(y1, y0 + 1))
            src = load_image(im.image_path)[y0:y1, x0:x1]
            mask = im.mask(k)[y0:y1, x0:x1]
            area = float(mask.sum())
            if area < 16:
                continue
            frac = float(np.exp(rng.uniform(np.log(AREA_RANGE[0]), np.log(AREA_RANGE[1]))))
            scale = np.sqrt(frac * hgt * wid / area)
            scale = min(scale, 0.95 * wid / src.shape[1], 0.95 * hgt / src.shape[0])
            ow, oh = max(2, int(round(src.shape[1] * scale))), max(2, int(round(src.shape[0] * scale)))
            patch = cv2.resize(src, (ow, oh), interpolation=cv2.INTER_LINEAR)
            alpha = cv2.resize(mask.astype(np.float32), (ow, oh), interpolation=cv2.INTER_LINEAR)
            if rng.random() < 0.5:
                patch, alpha = patch[:, ::-1], alpha[:, ::-1]
            px, py = int(rng.integers(0, wid - ow + 1)), int(rng.integers(0, hgt - oh + 1))
            hard = np.zeros((hgt, wid), bool)
            hard[py:py + oh, px:px + ow] = alpha > 0.5
            if hard.sum() < 16:
                continue
            soft = cv2.GaussianBlur(np.ascontiguousarray(alpha), (0, 0), EDGE_SIGMA)[..., None]
            region = canvas[py:py + oh, px:px + ow].astype(np.float32)
            canvas[py:py + oh, px:px + ow] = np.clip(soft * patch + (1 - soft) * region + 0.5, 0, 255).astype(np.uint8)
            masks = [m & ~hard for m in masks] + [hard]
            cats.append(obj.category)
            crowd.append(False)
            initial.append(float(hard.sum()))
        visible = [float(m.sum()) / a if a else 0.0 for m, a in zip(masks, initial)]
        stack = np.stack(masks) if masks else np.zeros((0, hgt, wid), bool)
        return ComposedScene(canvas, stack, cats, crowd, visible)

