"""Soak test of the tracker on the CPU: many frames through ``Grounder.track``, watching memory,
latency and what is left when the object goes away.

The frames are a slow periodic camera path over skimage's coffee photo (the cup stays in view),
then, for the last ``--gone`` frames, skimage's camera photo, which has no cup (and where the
model answers "no target" frame by frame; on the astronaut photo it sees a white cup in a third of
the frames, which the tracker then rightly keeps). Reported:
resident memory (VmRSS) after the warm-up and at the end, median and p99 latency of
``tracker.update`` after the warm-up, and the tracks still reported for the expression at the
end (none expected: the object left), and how many of the last frames the grounder itself
answered with a box. Targets (issue 28): memory grows by <= 5 MB after
warm-up, p99 <= 1.5 x median, no track left.

    python benchmarks/tracking_soak.py --bundle outputs/bundles/edge --frames 10000
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import cv2
import numpy as np
import skimage.data

from instancevg.runtime import Grounder
from instancevg.runtime.tracking import ReferringTracker, TrackerSettings


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux ``/proc/self/status`` VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise OSError("no VmRSS in /proc/self/status")


def frame_at(i: int, photo: np.ndarray) -> np.ndarray:
    """Frame i of a periodic pan / zoom over ``photo`` (period 300 frames)."""
    h, w = photo.shape[:2]
    phase = 2 * np.pi * (i % 300) / 300
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 1.5 * np.sin(phase), 1.0 + 0.04 * (1 - np.cos(phase)))
    m[0, 2] += 0.05 * w * np.sin(phase)
    return cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", required=True)
    p.add_argument("--frames", type=int, default=10000)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--gone", type=int, default=200, help="last frames without the object")
    p.add_argument("--text", default="the white cup")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--every", type=int, default=1)
    args = p.parse_args(argv)
    coffee = cv2.resize(cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR), (320, 240))
    camera = cv2.resize(cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2BGR), (320, 240))
    grounder = Grounder.from_bundle(args.bundle, threads=args.threads)
    raw = []

    def ground(frame, texts):
        out = grounder.ground(frame, texts)
        raw.append(not out[0].no_target)
        return out

    tracker = ReferringTracker(ground, args.text, TrackerSettings(every=args.every),
                               score_threshold=grounder.decision.score)
    times, found, rss0 = [], 0, None
    for i in range(args.frames):
        frame = frame_at(i, coffee if i < args.frames - args.gone else camera)
        t0 = time.perf_counter()
        (r,) = tracker.update(frame)
        dt = time.perf_counter() - t0
        if i == args.warmup:
            rss0 = rss_mib()
        if i >= args.warmup:
            times.append(dt)
        found += i < args.frames - args.gone and not r.no_target
    rss1 = rss_mib()
    t = np.array(times)
    out = {"frames": args.frames, "every": args.every, "rss_after_warmup_mib": round(rss0, 1),
           "rss_end_mib": round(rss1, 1), "rss_growth_mib": round(rss1 - rss0, 2),
           "median_ms": round(1000 * float(np.median(t)), 2), "p99_ms": round(1000 * float(np.percentile(t, 99)), 2),
           "p99_over_median": round(float(np.percentile(t, 99) / np.median(t)), 3),
           "found_share_with_object": round(found / (args.frames - args.gone), 3),
           "tracks_left_after_object_gone": int(len(r.track_ids)),
           "grounder_boxes_on_gone_frames": int(sum(raw[-(args.gone // args.every):]))}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
