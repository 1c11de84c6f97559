"""Ground fixed phrases in ``skimage.data`` photos and write one overlay sheet (model card figure).

    python tools/overlay_sheet.py [--checkpoint C] --out instancevg/weights/skimage_sheet.png

Each row is one photo: a phrase naming what is in it and a phrase naming something absent (the
answer should be "no target"). The text form of every answer is printed too.
"""
from __future__ import annotations

import argparse
import os

import cv2
import numpy as np

# (photo in skimage.data's folder, phrase with a target, phrase without one)
CHECKS = (
    ("coffee.png", "the cup", "the dog"),
    ("chelsea.png", "the cat", "the car"),
    ("astronaut.png", "the person", "the dog"),
    ("motorcycle_left.png", "the motorcycle", "the cat"),
    ("camera.png", "the man", "the dog"),
    ("coffee.png", "the white cup", "the cat"),   # the README's first command
)
TILE = 360


def main(argv: list[str] | None = None) -> int:
    import skimage

    from instancevg.api import InstanceVG, image_array
    from instancevg.runtime.atomic_io import atomic_write_bytes
    from instancevg.overlay import draw_overlay

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", help="model file or checkpoint dir (default: the shipped model)")
    p.add_argument("--out", required=True, help="PNG sheet to write")
    args = p.parse_args(argv)
    model = InstanceVG.from_pretrained(args.checkpoint, device="cpu")
    rows = []
    for name, present, absent in CHECKS:
        image = image_array(os.path.join(skimage.data.data_dir, name))
        tiles = []
        for result in model.ground(image, [present, absent], channel_order="rgb"):
            kept = "no target" if result.no_target else ", ".join(f"{s:.2f}" for s in result.scores)
            print(f"{name}: {result.text!r} -> {kept}")
            tile = draw_overlay(image, result)
            scale = TILE / max(tile.shape[:2])
            tile = cv2.resize(tile, (round(tile.shape[1] * scale), round(tile.shape[0] * scale)),
                              interpolation=cv2.INTER_AREA)
            pad = np.full((TILE, TILE, 3), 255, np.uint8)
            pad[:tile.shape[0], :tile.shape[1]] = tile
            tiles.append(pad)
        rows.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(rows, axis=0)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    atomic_write_bytes(args.out, png.tobytes())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
