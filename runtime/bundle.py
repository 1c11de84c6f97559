"""The exported bundle on disk: ``manifest.json`` plus the files it lists with their SHA-256.

Layout (written by ``export/export_onnx.py``, see docs/DESIGN.md "Edge path")::

    BUNDLE/manifest.json        format, input size, mean/std, thresholds, tensor names, opset,
                                dynamic axes, versions, {file: {sha256, bytes}}
    BUNDLE/text_encoder.onnx    (B, L) ids + mask -> (B, L, 384) token features
    BUNDLE/grounder.onnx        image (1 or B) + token features + mask (B) -> scores, boxes,
                                mask logits of the B expressions
    BUNDLE/tokenizer.json       MiniLM WordPiece tokenizer (``tokenizers`` format)
    BUNDLE/*.engine             optional TensorRT engines (``export/build_engine.py``)

This module is torch-free: the runtime reads bundles with it; the manifest itself is
:class:`~instancevg.runtime.manifest.Manifest`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .manifest import FORMAT, MANIFEST_NAME, REQUIRED_FILES, BundleError, Manifest, file_entries, sha256_file

__all__ = ["FORMAT", "MANIFEST_NAME", "REQUIRED_FILES", "Bundle", "BundleError", "check_grounder_inputs",
           "file_entries", "sha256_file"]


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


@dataclass(frozen=True)
class Bundle:
    """A bundle directory and its parsed manifest.

    Attributes:
        path: the bundle directory.
        manifest: the checked ``manifest.json`` (:class:`~instancevg.runtime.manifest.Manifest`).
    """

    path: Path
    manifest: Manifest

    @classmethod
    def open(cls, path: str | Path) -> Bundle:
        """Read ``path/manifest.json`` and check its format and that the required files are listed.

        Raises:
            BundleError: no such directory, no or unreadable manifest, another format, a
                required file not listed, or a missing or malformed field (:meth:`Manifest.from_dict`).
        """
        path = Path(path)
        if not path.is_dir():
            raise BundleError(f"bundle directory not found: {path}")
        return cls(path, Manifest.read(path))

    def file(self, name: str, verify: bool = True) -> Path:
        """Path of a listed file, after checking it exists and (``verify``) its SHA-256.

        Raises:
            BundleError: the file is not in the manifest, is missing, or its checksum differs
                (the file was modified or corrupted after export).
        """
        entry = self.manifest.files.get(name)
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
