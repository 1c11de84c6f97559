"""Tracker cost (pytest-benchmark): ``tracker.update`` on a frame the network runs on and on a
frame carried by optical flow (``every=5``), on the shipped bundle. Quality figures (IDF1, MOTA,
answer changes, soak) come from ``benchmarks/tracking_videos.py`` and
``benchmarks/tracking_soak.py``; results in benchmarks/RESULTS.md ("Tracking").

    python -m pytest benchmarks/test_tracking.py --benchmark-columns=median,iqr,rounds
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import pytest
import skimage.data

pytest.importorskip("onnxruntime", reason="runtime benchmarks need onnxruntime")

from instancevg.runtime import Grounder

THREADS = int(os.environ.get("INSTANCEVG_BENCH_THREADS", "2"))


@pytest.fixture(scope="module")
def grounder(tmp_path_factory) -> Grounder:
    if os.environ.get("INSTANCEVG_BUNDLE"):
        return Grounder.from_bundle(Path(os.environ["INSTANCEVG_BUNDLE"]), threads=THREADS)
    from instancevg.api import DEFAULT_WEIGHTS
    from instancevg.checkpoint import load_model
    from instancevg.export.export_onnx import export_bundle

    bundle = export_bundle(load_model(DEFAULT_WEIGHTS), tmp_path_factory.mktemp("bench") / "edge",
                           checkpoint=DEFAULT_WEIGHTS)
    return Grounder.from_bundle(bundle, threads=THREADS)


@pytest.fixture(scope="module")
def frames():
    photo = cv2.resize(cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR), (640, 480))
    return [cv2.warpAffine(photo, cv2.getRotationMatrix2D((320, 240), 0, 1.0 + 0.002 * i), (640, 480))
            for i in range(10)]


@pytest.mark.parametrize("every", [1, 5])
def test_track_update(benchmark, grounder, frames, every):
    tracker = grounder.track(["the white cup", "the spoon"], every=every)
    for f in frames[:5]:  # warm up: tracks exist, the next frame is grounded (every=1) or carried (every=5)
        tracker.update(f)
    state = {"i": 5}

    def step():
        r = tracker.update(frames[state["i"] % len(frames)])
        state["i"] += 1
        return r

    out = benchmark(step)
    assert len(out) == 2 and all(r.image_size == (480, 640) for r in out)
