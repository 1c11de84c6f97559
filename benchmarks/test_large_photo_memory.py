"""Peak memory of `instancevg ground` on a 100-megapixel photo against a 0.24-megapixel one.

``python -m pytest benchmarks/test_large_photo_memory.py --benchmark-columns=median`` runs the
command in a subprocess per photo and stores its peak resident set size (``ru_maxrss`` of the
child, MiB) in the benchmark's ``extra_info`` and prints it. The grounding API downscales a photo
whose longer side exceeds 4096 px at load (JPEG: decoded at a reduced scale), so the peak should
stay within a small multiple of the small photo's, not grow with the pixel count.
"""
from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    y, x = np.mgrid[0:10000, 0:10000]
    img = np.stack([(x // 40) % 256, (y // 40) % 256, ((x + y) // 80) % 256], -1).astype(np.uint8)
    del x, y
    for suffix in (".png", ".jpg"):
        cv2.imwrite(str(root / f"huge{suffix}"), img)
    return {"coffee-600x400": os.path.join(skimage.data.data_dir, "coffee.png"),
            "huge-10000x10000.png": str(root / "huge.png"), "huge-10000x10000.jpg": str(root / "huge.jpg")}


def _peak_rss_mib(image: str, out: str) -> float:
    code = ("import resource, subprocess, sys; "
            "subprocess.run([sys.executable, '-m', 'instancevg.cli', 'ground', '--image', sys.argv[1], '--text', "
            "'the cup', '--out', sys.argv[2]], check=True, capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", code, image, out], capture_output=True, text=True, check=True)
    return int(proc.stdout.strip()) / 1024.0  # ru_maxrss is in KiB on Linux


@pytest.mark.parametrize("name", ["coffee-600x400", "huge-10000x10000.png", "huge-10000x10000.jpg"])
def test_ground_peak_rss(benchmark, photos, name, tmp_path):
    peak = benchmark.pedantic(_peak_rss_mib, args=(photos[name], str(tmp_path / "overlay.png")), rounds=1,
                              iterations=1)
    benchmark.extra_info["peak_rss_mib"] = round(peak, 1)
    overlay = cv2.imread(str(tmp_path / "overlay.png"))
    print(f"\n{name}: peak RSS {peak:.0f} MiB, overlay {overlay.shape[1]}x{overlay.shape[0]}")
    assert max(overlay.shape[:2]) <= 4096
    assert peak > 0
