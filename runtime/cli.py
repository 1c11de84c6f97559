"""``instancevg-runtime``: the commands a target device runs, with the runtime wheel alone.

    instancevg-runtime ground --bundle B --image photo.jpg --text "the cup" [--out overlay.png]
    instancevg-runtime build-engine --bundle B --fp16          # TensorRT engines (on the device)
    instancevg-runtime loop --bundle B --source 0 --text "the red mug"   # camera loop with tracking
    instancevg-runtime --version

Every error is one line on stderr with exit status 2 (``loop`` also ends with 1 when a camera
disconnects).
"""
from __future__ import annotations

import argparse
import json
import sys

from . import engine_build, loop
from .errors import CLI_ERRORS, report_error


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("instancevg-runtime", "instancevg-edge"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "unknown"


def _ground(args: argparse.Namespace) -> int:
    """One image, one or more expressions: print the instances (or ``--json``), write ``--out``."""
    import cv2

    from .atomic_io import atomic_write_bytes
    from .draw import draw_results
    from .grounder import Grounder
    from .result import ground_document

    try:
        frame = cv2.imread(args.image, cv2.IMREAD_COLOR)
        if frame is None:
            raise ValueError(f"cannot read image {args.image!r} (missing, or not an image OpenCV decodes)")
        grounder = Grounder.from_bundle(args.bundle, backend=args.backend)
        results = grounder.ground(frame, args.text)
        if args.out:
            ok, png = cv2.imencode(".png", draw_results(frame, results, channel_order="bgr"))
            if not ok:
                raise OSError(f"cannot encode the overlay for {args.out}")
            atomic_write_bytes(args.out, png.tobytes())
    except (*CLI_ERRORS, ImportError, TypeError) as exc:
        return report_error(exc)
    if args.json:
        print(json.dumps(ground_document(results, args.image, args.bundle)))
    else:
        for r in results:
            print(f"{r.text}: " + ("no target" if r.no_target else
                                   "; ".join(f"box {[round(float(v)) for v in b]} score {s:.2f}"
                                             for b, s in zip(r.boxes, r.scores))))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``instancevg-runtime`` console script."""
    p = argparse.ArgumentParser(prog="instancevg-runtime", description=__doc__.split("\n\n")[0])
    p.add_argument("--version", action="version", version=f"instancevg-runtime {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("ground", help="ground expressions in one image")
    g.add_argument("--bundle", required=True)
    g.add_argument("--image", required=True)
    g.add_argument("--text", action="append", required=True, help="referring expression (repeatable)")
    g.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "onnxruntime"])
    g.add_argument("--out", default=None, help="write the overlay PNG here")
    g.add_argument("--json", action="store_true", help="print the instancevg.ground/1 JSON document")
    engine_build.add_arguments(sub.add_parser("build-engine", help="build TensorRT engines into a bundle"))
    loop.add_arguments(sub.add_parser("loop", help="camera / video loop with tracking"))
    args = p.parse_args(argv)
    if args.command == "ground":
        return _ground(args)
    if args.command == "build-engine":
        return engine_build.run(args)
    return loop.run(args)


if __name__ == "__main__":
    sys.exit(main())
