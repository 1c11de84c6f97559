"""The exported bundle on disk: ``manifest.json`` plus the files it lists with their SHA-256.

Layout (written by ``export/export_onnx.py``, see docs/DESIGN.md "Edge path")::

    BUNDLE/manifest.json        format, input size, mean/std, thresholds, tensor names, opset,
                                dynamic axes, versions, {file: {sha256, bytes}}
    BUNDLE/text_encoder.onnx    (B, L) ids + mask -> (B, L, 384) token features
    BUNDLE/grounder.onnx        image (1 or B) + token features + mask (B) -> scores, boxes,
                                mask logits of the B expressions
    BUNDLE/tokenizer.json       MiniLM WordPiece tokenizer (``tokenizers`` format)
    BUNDLE/*.engine             optional TensorRT engines (``export/build_engine.py``)

This module is torch-free: the runtime reads bundles with it and the exporter writes the
checksums with :func:`file_entries`.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import InstanceVGError

# /2: grounder.onnx takes one image for a batch of expressions ("image_batch" axis, 1 or B).
FORMAT = "instancevg-edge-bundle/2"
MANIFEST_NAME = "manifest.json"
REQUIRED_FILES = ("text_encoder.onnx", "grounder.onnx", "tokenizer.json")


class BundleError(InstanceVGError, RuntimeError):
    """A bundle is missing, incomplete, tampered with (checksum mismatch) or of another format."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_entries(directory: str | Path) -> dict[str, dict]:
    """``{name: {"sha256", "bytes"}}`` for every regular file in ``directory`` except the manifest."""
    directory = Path(directory)
    return {
        p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name != MANIFEST_NAME
    }


def check_grounder_inputs(image, text_features, text_mask) -> None:
    """Check the batch axes of one ``grounder.onnx`` call (see ``export/graphs.py``).

    Args:
        image: (Bi, 3, S, S) array; text_features: (B, L, C) array; text_mask: (B, L) array.

    Raises:
        ValueError: image is not 4-D, Bi is neither 1 (one image shared by all B expressions)
            nor B (one image per expression), or text_features and text_mask disagree on B or L.
            The graph does not reject a wrong Bi (its answer is then undefined), and ONNX
            Runtime reports shape mismatches as its own errors, or broadcasts a batch of 1.
    """
    if len(image.shape) != 4 or len(text_features.shape) != 3:
        raise ValueError(f"grounder inputs must be image (Bi, 3, S, S) and text_features (B, L, C), got shapes "
                         f"{tuple(image.shape)} and {tuple(text_features.shape)}")
    bi, (b, n) = image.shape[0], text_features.shape[:2]
    if tuple(text_mask.shape) != (b, n):
        raise ValueError(f"text_mask shape {tuple(text_mask.shape)} does not match text_features (B, L) = {(b, n)}")
    if bi not in (1, b):
        raise ValueError(f"grounder image batch {bi} must be 1 (shared by all {b} expressions) or {b} "
                         "(one image per expression)")


def _number(manifest: dict, where: str, field: str, positive: bool = False) -> float:
    """``manifest[...][field]`` as a finite float, or a BundleError naming the field."""
    value = manifest.get(field) if isinstance(manifest, dict) else None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and value <= 0):
        raise BundleError(f"{where}: field {field!r} must be a {'positive ' if positive else ''}number, got {value!r}")
    return float(value)


def _section(manifest: dict, key: str, mpath: Path) -> dict:
    value = manifest.get(key)
    if not isinstance(value, dict):
        raise BundleError(f"{mpath}: field {key!r} is missing or not an object (got {type(value).__name__})")
    return value


def check_manifest(manifest: dict, mpath: Path) -> None:
    """Check the manifest fields the runtime reads, so that a hand-edited or truncated manifest
    fails with the field's name instead of a KeyError at first use.

    Checked: ``files`` (every required file listed with a 64-hex ``sha256``), ``input.image_size``
    (positive integer), ``input.mean`` / ``input.std`` (3 numbers, std > 0), ``thresholds.score``
    and ``thresholds.mask`` (numbers), ``max_text_len`` (positive integer), and
    ``graphs.grounder.outputs`` (a list).

    Raises:
        BundleError: naming the manifest and the first missing or malformed field.
    """
    files = _section(manifest, "files", mpath)
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise BundleError(f"{mpath} does not list {missing}")
    for name, entry in files.items():
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            raise BundleError(f"{mpath}: files[{name!r}] needs a 'sha256' of 64 hex digits, got {digest!r}")
    inp = _section(manifest, "input", mpath)
    size = inp.get("image_size")
    if not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
        raise BundleError(f"{mpath}: field 'input.image_size' must be a positive integer, got {size!r}")
    for key in ("mean", "std"):
        values = inp.get(key)
        if not (isinstance(values, list) and len(values) == 3):
            raise BundleError(f"{mpath}: field 'input.{key}' must be a list of 3 numbers, got {values!r}")
        for v in values:
            _number({key: v}, f"{mpath} input.{key}", key, positive=key == "std")
    thresholds = _section(manifest, "thresholds", mpath)
    for key in ("score", "mask"):
        _number(thresholds, f"{mpath} thresholds", key)
    length = manifest.get("max_text_len")
    if not (isinstance(length, int) and not isinstance(length, bool) and length >= 3):
        raise BundleError(f"{mpath}: field 'max_text_len' must be an integer >= 3, got {length!r}")
    outputs = _section(manifest, "graphs", mpath).get("grounder", {})
    if not (isinstance(outputs, dict) and isinstance(outputs.get("outputs"), list)):
        raise BundleError(f"{mpath}: field 'graphs.grounder.outputs' is missing or not a list")


@dataclass(frozen=True)
class Bundle:
    """A bundle directory and its parsed manifest.

    Attributes:
        path: the bundle directory.
        manifest: the parsed ``manifest.json`` (see module docstring).
    """

    path: Path
    manifest: dict

    @classmethod
    def open(cls, path: str | Path) -> Bundle:
        """Read ``path/manifest.json`` and check its format and that the required files are listed.

        Raises:
            BundleError: no such directory, no or unreadable manifest, another format, a
                required file not listed, or a missing or malformed field (:func:`check_manifest`).
        """
        path = Path(path)
        if not path.is_dir():
            raise BundleError(f"bundle directory not found: {path}")
        mpath = path / MANIFEST_NAME
        if not mpath.is_file():
            raise BundleError(f"{path} is not a bundle: {MANIFEST_NAME} is missing")
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, ValueError) as exc:
            raise BundleError(f"cannot read {mpath}: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            fmt = manifest.get("format") if isinstance(manifest, dict) else None
            raise BundleError(f"{mpath} has format {fmt!r}, expected {FORMAT!r}: re-export the bundle with "
                              "this version's export/export_onnx.py (then re-run export/quantize.py and "
                              "export/build_engine.py for INT8 bundles and TensorRT engines)")
        check_manifest(manifest, mpath)
        return cls(path, manifest)

    def file(self, name: str, verify: bool = True) -> Path:
        """Path of a listed file, after checking it exists and (``verify``) its SHA-256.

        Raises:
            BundleError: the file is not in the manifest, is missing, or its checksum differs
                (the file was modified or corrupted after export).
        """
        entry = self.manifest["files"].get(name)
        if entry is None:
            raise BundleError(f"{name} is not listed in {self.path / MANIFEST_NAME}")
        p = self.path / name
        if not p.is_file():
            raise BundleError(f"bundle file missing: {p}")
        if verify:
            digest = sha256_file(p)
            if digest != entry["sha256"]:
                raise BundleError(
                    f"checksum mismatch for {p}: sha256 {digest[:16]}... but the manifest says "
                    f"{entry['sha256'][:16]}... (file modified or corrupted after export)"
                )
        return p
