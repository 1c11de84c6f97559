"""Camera or video loop on the torch-free runtime: ground (and by default track) expressions in
every frame, draw the answer, show it and/or write it as a video.

    instancevg-runtime loop --bundle BUNDLE --source 0 --text "the red mug" [--text "all cups"]
    instancevg-runtime loop --bundle BUNDLE --source clip.mp4 --text "the person" --out overlay.mp4 --no-show

``--source`` is a camera index (``0``) or a video path / URL. Press ``q`` or Esc in the window to
stop. With a headless OpenCV (``opencv-python-headless``, no window support) nothing is shown and
the annotated video is written instead (``--out``, default ``outputs/robot_loop.mp4``).

Faults are reported in one line each on stderr and the loop goes on where it can:

* a frame that is empty or black (all pixels under 8/255) is skipped (the tracker keeps its
  tracks); the message is printed once per run of such frames;
* a read that takes longer than ``--stall-s`` seconds (a camera that hangs) is reported;
* a new frame size is reported, the tracker starts afresh and the video writer keeps its size;
* a camera that returns no frame is retried ``--retries`` times (0.1 s apart), then the loop ends
  cleanly with exit status 1 ("camera disconnected"); a video file that ends gives status 0.

``--json`` prints one JSON line per frame (``frame``, ``grounded``, and per expression
``text``, ``no_target``, ``instances`` with ``track_id``, ``box_xyxy``, ``score``) for a robot
program to read from a pipe.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from .draw import draw_results
from .errors import CLI_ERRORS, report_error
from .frames import FrameError, check_frame

HEADLESS_OUT = "outputs/robot_loop.mp4"
BLACK_LEVEL = 8  # a frame whose brightest pixel is under this is "black"


def opencv_has_gui() -> bool:
    """False for a headless OpenCV build (``opencv-python-headless``: ``GUI: NONE`` in its build
    information), where ``cv2.imshow`` raises "The function is not implemented"."""
    import cv2

    found = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return bool(found) and found.group(1).upper() != "NONE"


def frame_fault(frame) -> str | None:
    """Why a frame read from a camera cannot be grounded, or None when it can: ``"empty"`` (None
    or zero-size), ``"not a BGR image"`` (not (H, W, 3) uint8) or ``"black"``."""
    if frame is None or not getattr(frame, "size", 0):
        return "empty"
    try:
        check_frame(frame)
    except FrameError:
        return "not a BGR image"
    if int(frame.max()) < BLACK_LEVEL:
        return "black"
    return None


def frame_document(index: int, results) -> dict:
    """One ``--json`` line: ``{"frame", "grounded", "results": [{"text", "no_target", "instances":
    [{"track_id", "box_xyxy", "score"}]}]}`` (track ids only from a tracker)."""
    out = []
    for r in results:
        ids = getattr(r, "track_ids", None)
        out.append({"text": r.text, "no_target": bool(r.no_target), "instances": [
            {**({"track_id": int(ids[i])} if ids is not None else {}),
             "box_xyxy": [round(float(v), 1) for v in r.boxes[i]], "score": round(float(r.scores[i]), 4)}
            for i in range(len(r.boxes))]})
    return {"frame": index, "grounded": bool(getattr(results[0], "grounded", True)), "results": out}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The loop's command-line arguments on ``p``."""
    p.add_argument("--bundle", required=True, help="exported bundle directory")
    p.add_argument("--source", default="0", help="camera index or video file / URL (default 0)")
    p.add_argument("--text", action="append", required=True, help="referring expression (repeatable)")
    p.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "onnxruntime"])
    p.add_argument("--no-track", action="store_true", help="per-frame grounding, no tracker")
    p.add_argument("--every", type=int, default=1, help="with tracking: run the network on every N-th frame")
    p.add_argument("--lost-after", type=int, default=None, help="tracker: misses before an object is dropped")
    p.add_argument("--confirm", type=int, default=None, help="tracker: matches before an object is reported")
    p.add_argument("--out", default=None, help="also write the overlay video here (mp4)")
    p.add_argument("--no-show", action="store_true", help="no window (headless robots)")
    p.add_argument("--json", action="store_true", help="print one JSON line per frame on stdout")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0 = until the stream ends)")
    p.add_argument("--retries", type=int, default=20, help="camera reads retried before giving up (default 20)")
    p.add_argument("--stall-s", type=float, default=2.0, help="report a read slower than this (default 2 s)")
    p.add_argument("--spinning", action="store_true",
                   help="ONNX Runtime threads spin-wait: faster when these cores run nothing else")


def run(args: argparse.Namespace) -> int:
    """Run the loop; 0 at the end of a video or ``--max-frames``, 1 when a camera disconnects,
    2 for a bad bundle, expression or source (one line on stderr)."""
    import cv2

    from .grounder import Grounder

    try:
        grounder = Grounder.from_bundle(args.bundle, backend=args.backend, spinning=args.spinning)
        grounder.encode_text(args.text)  # checks and caches the instructions once
        settings = {k: v for k, v in (("lost_after", args.lost_after), ("confirm", args.confirm)) if v is not None}
        tracker = None if args.no_track else grounder.track(args.text, every=args.every, **settings)
    except (*CLI_ERRORS, ImportError, TypeError) as exc:  # BundleError, bad settings, no ONNX Runtime / TensorRT
        return report_error(exc)
    if not args.no_show and not opencv_has_gui():
        args.no_show = True
        args.out = args.out or HEADLESS_OUT
        print(f"OpenCV here is headless (no window support): writing the annotated video to {args.out} instead",
              file=sys.stderr)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    camera = args.source.isdigit()
    cap = cv2.VideoCapture(int(args.source) if camera else args.source)
    if not cap.isOpened():
        return report_error(f"cannot open video source {args.source!r}")
    writer, n, fps, t_prev, status = None, 0, 0.0, time.perf_counter(), 0
    size, fault, failures = None, None, 0
    try:
        while True:
            t_read = time.perf_counter()
            ok, frame = cap.read()
            waited = time.perf_counter() - t_read
            if waited > args.stall_s:
                print(f"warning: the source stalled for {waited:.1f} s", file=sys.stderr)
            if not ok:
                if not camera:
                    break  # end of the video
                failures += 1
                if failures > args.retries:
                    print(f"error: camera {args.source} disconnected (no frame after {args.retries} retries)",
                          file=sys.stderr)
                    status = 1
                    break
                time.sleep(0.1)
                continue
            failures = 0
            why = frame_fault(frame)
            if why is not None:
                if why != fault:
                    print(f"warning: skipping {why} frames from {args.source}", file=sys.stderr)
                fault = why
                continue
            fault = None
            if size is not None and frame.shape[:2] != size:
                print(f"warning: frame size changed from {size[1]}x{size[0]} to {frame.shape[1]}x{frame.shape[0]}; "
                      "tracks start afresh", file=sys.stderr)
            size = frame.shape[:2]
            results = tracker.update(frame) if tracker is not None else grounder.ground(frame, args.text)
            now = time.perf_counter()
            fps = 0.9 * fps + 0.1 / max(now - t_prev, 1e-6) if n else 1.0 / max(now - t_prev, 1e-6)
            t_prev = now
            if args.json:
                print(json.dumps(frame_document(n, results)), flush=True)
            if args.out or not args.no_show:
                vis = draw_results(frame, results, channel_order="bgr")
                cv2.putText(vis, f"{fps:.1f} fps", (8, vis.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                            (255, 255, 255), 1)
                if args.out:
                    if writer is None:
                        out_size = (vis.shape[1], vis.shape[0])
                        writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"mp4v"), 15.0, out_size)
                    if (vis.shape[1], vis.shape[0]) != out_size:
                        vis = cv2.resize(vis, out_size, interpolation=cv2.INTER_AREA)
                    writer.write(vis)
                if not args.no_show:
                    cv2.imshow("InstanceVG-edge", vis)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
            n += 1
            if args.max_frames and n >= args.max_frames:
                break
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
        if not args.no_show:
            cv2.destroyAllWindows()
    print(f"{n} frames, {fps:.1f} fps (backend {grounder.backend_name})", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """``instancevg-runtime loop``."""
    p = argparse.ArgumentParser(prog="instancevg-runtime loop", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))
