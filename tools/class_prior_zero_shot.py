"""Zero-shot check of the ImageNet class prior (``instancevg.modeling.class_prior``), no training.

For every image of a COCO split and every category with exactly one instance there (at least
1 % of the image), the expression ``"the {category}"`` is scored against the image's instances
(same threshold): an instance's score is the prior map (stride 32, bilinearly resized to the
image) averaged over its mask. Reports how often the referred instance ranks first, against
chance (the mean of 1 / number of instances). ``--checkpoint`` takes the backbone from a model file
(to see how far fine-tuning moved C5 away from what the ImageNet classifier reads); the default
is EfficientNet-Lite0's ImageNet backbone.

    python tools/class_prior_zero_shot.py --instances ../shared/data/coco-real/instances.json --split val
"""
from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from instancevg.config import get_preset
from instancevg.data.readers.coco import CocoInstances
from instancevg.preprocess import preprocess_image
from instancevg.image_io import load_image
from instancevg.modeling.model import InstanceVGModel
from instancevg.modeling.text_encoder import TextTokenizer


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", required=True)
    ap.add_argument("--images", default=None)
    ap.add_argument("--split", default="val")
    ap.add_argument("--checkpoint", default=None, help="take the backbone from this model file")
    ap.add_argument("--min-area", type=float, default=0.01)
    args = ap.parse_args(argv)

    config = replace(get_preset("edge"), class_prior=True)
    model = InstanceVGModel(config).eval()
    if args.checkpoint:
        from instancevg.checkpoint import read_model_file

        _, state, _ = read_model_file(args.checkpoint)
        model.backbone.load_state_dict({k[len("backbone."):]: v.float() for k, v in state.items()
                                        if k.startswith("backbone.")})
    tok = TextTokenizer(config.max_text_len)
    hits, chance = [], []
    for im in CocoInstances(args.instances, args.images).load_split(args.split):
        image = load_image(im.image_path)
        masks = im.masks()
        keep = [k for k, o in enumerate(im.objects) if not o.iscrowd and masks[k].mean() >= args.min_area]
        if len(keep) < 2:
            continue
        cats = [im.objects[k].category for k in keep]
        unique = [c for c in dict.fromkeys(cats) if cats.count(c) == 1]
        if not unique:
            continue
        x = preprocess_image(image, config.image_size, config.image_mean, config.image_std)[None]
        with torch.no_grad():
            c5 = model.backbone(x)[3]
            ids, mask = tok([f"the {c}" for c in unique])
            prior = model.class_prior(c5.expand(len(unique), -1, -1, -1), model.encode_text(ids, mask), mask)
            prior = F.interpolate(prior[:, None], size=image.shape[:2], mode="bilinear", align_corners=False)[:, 0]
        m = torch.from_numpy(masks[keep]).float()
        score = (prior[:, None] * m[None]).flatten(2).sum(-1) / m.flatten(1).sum(-1)[None]  # (E, K)
        for e, c in enumerate(unique):
            hits.append(cats[int(score[e].argmax())] == c)
            chance.append(1 / len(keep))
    print(f"{args.split}: {len(hits)} references, referred instance first {100 * np.mean(hits):.1f} % "
          f"(chance {100 * np.mean(chance):.1f} %), backbone: {args.checkpoint or 'ImageNet'}")


if __name__ == "__main__":
    main()
