"""The runtime's camera / video loop (``instancevg-runtime loop``): a video made here runs through
it with tracking, and a camera that sends black, empty and resized frames, stalls, then
disconnects is reported line by line while the loop survives."""
import json
import os

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the bundle fixture needs onnxruntime (pip install -e '.[test]')")
skimage_data = pytest.importorskip("skimage.data", reason="the video is made from a scikit-image photo")

from instancevg.runtime import cli, loop
from videos import pan_video


def test_loop_on_a_video_prints_json_and_writes_the_overlay(tiny_bundle, tmp_path, capsys):
    video = pan_video(tmp_path / "pan.mp4")
    out = tmp_path / "out" / "overlay.mp4"
    rc = cli.main(["loop", "--bundle", str(tiny_bundle), "--source", str(video), "--text", "the cup",
                   "--text", "all mugs", "--no-show", "--json", "--out", str(out), "--every", "2"])
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["frame"] for d in lines] == list(range(8))
    assert [d["grounded"] for d in lines] == [True, False] * 4
    assert all([r["text"] for r in d["results"]] == ["the cup", "all mugs"] for d in lines)
    for d in lines:
        for r in d["results"]:
            assert r["no_target"] == (not r["instances"])
            assert all(isinstance(i["track_id"], int) for i in r["instances"])
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    cap.release()


class FlakyCamera:
    """cv2.VideoCapture stand-in: good frames, black ones, an empty one, a new size, then nothing."""

    def __init__(self, *_):
        good = np.full((64, 80, 3), 120, np.uint8)
        good[20:40, 30:50] = (40, 60, 200)
        self.frames = [good, np.zeros_like(good), np.zeros_like(good), np.zeros((0, 0, 3), np.uint8),
                       good, np.full((48, 100, 3), 150, np.uint8)]

    def isOpened(self):
        return True

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def release(self):
        pass


def test_camera_faults_are_reported_and_the_loop_survives(tiny_bundle, monkeypatch, capsys):
    monkeypatch.setattr(cv2, "VideoCapture", FlakyCamera)
    monkeypatch.setattr(loop.time, "sleep", lambda s: None)
    rc = cli.main(["loop", "--bundle", str(tiny_bundle), "--source", "0", "--text", "the red cube", "--no-show",
                   "--json", "--retries", "3"])
    captured = capsys.readouterr()
    frames = [json.loads(line) for line in captured.out.splitlines()]
    err = captured.err.splitlines()
    assert rc == 1  # the camera disconnected
    assert len(frames) == 3  # the two good frames and the resized one were grounded
    assert sum("skipping black frames" in line for line in err) == 1
    assert sum("skipping empty frames" in line for line in err) == 1
    assert any("frame size changed from 80x64 to 100x48" in line for line in err)
    assert any("camera 0 disconnected" in line for line in err)


def test_loop_errors_are_one_line(tiny_bundle, tmp_path, capsys):
    assert cli.main(["loop", "--bundle", str(tmp_path / "none"), "--text", "x", "--no-show"]) == 2
    assert cli.main(["loop", "--bundle", str(tiny_bundle), "--source", str(tmp_path / "no.mp4"), "--text", "x",
                     "--no-show"]) == 2
    assert cli.main(["loop", "--bundle", str(tiny_bundle), "--text", "x", "--every", "0", "--no-show"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)


def test_frame_faults():
    assert loop.frame_fault(None) == "empty"
    assert loop.frame_fault(np.zeros((4, 4, 3), np.uint8)) == "black"
    assert loop.frame_fault(np.zeros((4, 4), np.uint8)) == "not a BGR image"
    assert loop.frame_fault(np.full((4, 4, 3), 9, np.uint8)) is None


def test_ground_command(tiny_bundle, tmp_path, capsys):
    photo = os.path.join(skimage_data.data_dir, "coffee.png")
    out = tmp_path / "o.png"
    assert cli.main(["ground", "--bundle", str(tiny_bundle), "--image", photo, "--text", "the cup", "--json",
                     "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "instancevg.ground/1" and doc["results"][0]["text"] == "the cup"
    assert cv2.imread(str(out)).shape[:2] == tuple(doc["results"][0]["image_size"])
    assert cli.main(["ground", "--bundle", str(tiny_bundle), "--image", str(tmp_path / "none.jpg"),
                     "--text", "x"]) == 2
