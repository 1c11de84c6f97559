"""`instancevg ground`: ground expressions in one image with the shipped (or a given) model."""
from __future__ import annotations

import json
from pathlib import Path


def add_parser(sub) -> None:
    """Add the subcommand to the `instancevg` subparsers ``sub``."""
    g = sub.add_parser("ground", help="ground an expression in an image with the shipped (or a given) model",
                       description="Ground one or more referring expressions in one image. Prints each kept "
                                   "instance (box xyxy in pixels, score, mask area) or 'no target'; --json prints "
                                   "one document of schema instancevg.ground/1.")
    g.add_argument("--image", required=True, help="JPEG/PNG/... file")
    g.add_argument("--text", required=True, action="append",
                   help="referring expression; repeat for several in the same image (one backbone pass)")
    g.add_argument("--out", help="write an overlay PNG here, creating its folder (several expressions: NAME-1.png, "
                                 "NAME-2.png, ...); default: no overlay")
    g.add_argument("--json", action="store_true",
                   help='print {"schema": "instancevg.ground/1", "image", "checkpoint", "results": [one per --text]}')
    g.add_argument("--checkpoint", help="model .safetensors or training checkpoint dir (default: shipped model)")
    g.add_argument("--device", default="auto", help="auto (default: cuda when available), cpu, cuda or cuda:N")
    g.set_defaults(func=run)


def run(args) -> int:
    """Run the subcommand; returns the exit status (errors propagate to :func:`instancevg.cli.main`)."""
    from ..api import DEFAULT_WEIGHTS, InstanceVG, image_array
    from ..device import resolve_device
    from ..overlay import draw_overlay, save_overlay
    from ..runtime.result import ground_document
    from ..runtime.expressions import check_expression

    device = resolve_device(args.device)
    for i, text in enumerate(args.text, 1):
        check_expression(text, "--text" if len(args.text) == 1 else f"--text {i}")
    image = image_array(args.image)
    model = InstanceVG.from_pretrained(args.checkpoint, device=device)
    results = model.ground(image, list(args.text), channel_order="rgb")  # one backbone pass for all
    if args.json:
        doc = ground_document(results, args.image, args.checkpoint or DEFAULT_WEIGHTS)
        print(json.dumps(doc, indent=2))
    else:
        for result in results:
            _print_result(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        for result, out in zip(results, _overlay_paths(args.out, len(results))):
            path = save_overlay(out, draw_overlay(image, result))
            if not args.json:
                print(f"overlay written to {path}")
    return 0


def _overlay_paths(out: str, n: int) -> list[Path]:
    """One overlay path per expression: ``out`` itself for one, ``stem-1.png``... for several."""
    out = Path(out)
    return [out] if n == 1 else [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, n + 1)]


def _print_result(result) -> None:
    """The text form of one GroundingResult: "no target" or one line per instance."""
    if result.no_target:
        print(f'"{result.text}": no target')
        return
    print(f'"{result.text}": {len(result)} instance(s)')
    for i, inst in enumerate(result.to_dict()["instances"]):
        x0, y0, x1, y1 = inst["box_xyxy"]
        print(f"  [{i}] box=({x0:.1f}, {y0:.1f}, {x1:.1f}, {y1:.1f}) score={inst['score']:.3f} "
              f"mask_area={inst['mask_area']} px")
