"""A robot's loop in a few lines, on the torch-free runtime: follow what a phrase refers to
through camera frames with stable ids (``Grounder.track``), and act on it.

    python examples/robot_loop.py --bundle BUNDLE --source 0 --text "the red mug"

The full loop with drawing, video output and fault handling is the wheel's console script:
``instancevg-runtime loop --bundle BUNDLE --source 0 --text "the red mug"``.
"""
from __future__ import annotations

import argparse
import sys

import cv2

from instancevg.runtime import Grounder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", required=True)
    p.add_argument("--source", default="0", help="camera index or video file")
    p.add_argument("--text", action="append", required=True)
    p.add_argument("--max-frames", type=int, default=0)
    args = p.parse_args(argv)
    tracker = Grounder.from_bundle(args.bundle).track(args.text, every=1)
    cap = cv2.VideoCapture(int(args.source) if args.source.isdigit() else args.source)
    n = 0
    while cap.isOpened() and (not args.max_frames or n < args.max_frames):
        ok, frame = cap.read()
        if not ok:
            break
        for r in tracker.update(frame):  # one TrackedResult per expression
            if r.no_target:
                print(f"frame {n}: {r.text!r}: no target")
            for tid, box, score in zip(r.track_ids, r.boxes, r.scores):
                cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2  # where the robot should look / reach
                print(f"frame {n}: {r.text!r}: object #{tid} at ({cx:.0f}, {cy:.0f}) px, score {score:.2f}")
        n += 1
    cap.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
