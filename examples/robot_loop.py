"""Camera (or video file) loop: ground one or more expressions in every frame and draw the
result with OpenCV, using only the torch-free runtime.

    python examples/robot_loop.py --bundle BUNDLE --source 0 --text "the red mug" [--text "all cups"]
    python examples/robot_loop.py --bundle BUNDLE --source clip.mp4 --text "the person" --out overlay.mp4 --no-show

``--source`` is a camera index (``0``) or a video path. Press ``q`` or Esc to stop. With a
headless OpenCV (``opencv-python-headless``, which has no window support) the loop shows nothing
and writes the annotated video instead (``--out``, default ``outputs/robot_loop.mp4``), saying so.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from instancevg.overlay import draw_overlay
from instancevg.runtime import Grounder
from instancevg.runtime.errors import CLI_ERRORS, report_error

HEADLESS_OUT = "outputs/robot_loop.mp4"


def draw(frame: np.ndarray, results, fps: float) -> np.ndarray:
    """Overlay every expression's masks, boxes and scores (``instancevg.overlay.draw_overlay``,
    the drawing ``instancevg ground --overlay`` uses) and the loop rate on a BGR frame.

    Args:
        frame: (H, W, 3) uint8 BGR. results: ``Grounder.ground`` output for this frame.
        fps: loop rate shown in the bottom-left corner.
    Returns:
        a new (H, W, 3) uint8 BGR image.
    """
    out = cv2.cvtColor(draw_overlay(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), results), cv2.COLOR_RGB2BGR)
    cv2.putText(out, f"{fps:.1f} fps", (8, out.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    return out


def opencv_has_gui() -> bool:
    """False for a headless OpenCV build (``opencv-python-headless``: ``GUI: NONE`` in its build
    information), where ``cv2.imshow`` raises "The function is not implemented"."""
    found = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return bool(found) and found.group(1).upper() != "NONE"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", required=True, help="exported bundle directory")
    p.add_argument("--source", default="0", help="camera index or video file")
    p.add_argument("--text", action="append", required=True, help="referring expression (repeatable)")
    p.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "onnxruntime"])
    p.add_argument("--out", default=None, help="also write the overlay video here (mp4)")
    p.add_argument("--no-show", action="store_true", help="no window (headless robots)")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0 = until the stream ends)")
    p.add_argument("--spinning", action="store_true",
                   help="ONNX Runtime threads spin-wait: faster when these cores run nothing else")
    args = p.parse_args(argv)
    try:
        grounder = Grounder.from_bundle(args.bundle, backend=args.backend, spinning=args.spinning)
        grounder.encode_text(args.text)  # cache the instructions once
    except (*CLI_ERRORS, ImportError) as exc:  # BundleError, ValueError, OSError, no ONNX Runtime / TensorRT
        return report_error(exc)
    if not args.no_show and not opencv_has_gui():
        args.no_show = True
        args.out = args.out or HEADLESS_OUT
        print(f"OpenCV here is headless (no window support): writing the annotated video to {args.out} instead",
              file=sys.stderr)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(int(args.source) if args.source.isdigit() else args.source)
    if not cap.isOpened():
        return report_error(f"cannot open video source {args.source!r}")
    writer, n, fps, t_prev = None, 0, 0.0, time.perf_counter()
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            results = grounder.ground(frame, args.text)
            now = time.perf_counter()
            fps = 0.9 * fps + 0.1 / max(now - t_prev, 1e-6) if n else 1.0 / max(now - t_prev, 1e-6)
            t_prev = now
            vis = draw(frame, results, fps)
            if args.out:
                if writer is None:
                    h, w = vis.shape[:2]
                    writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (w, h))
                writer.write(vis)
            if not args.no_show:
                cv2.imshow("InstanceVG-edge", vis)
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
            n += 1
            if args.max_frames and n >= args.max_frames:
                break
    finally:
        cap.release()
        if writer is not None:
            writer.release()
        if not args.no_show:
            cv2.destroyAllWindows()
    print(f"{n} frames, {fps:.1f} fps (backend {grounder.backend_name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
