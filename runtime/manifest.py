"""``Manifest``: a bundle's ``manifest.json``, read, checked and written in one place.

The exporter (``export/export_onnx.py``) makes one, the quantizer (``export/quantize.py``) and the
engine builder (``runtime/engine_build.py``) derive new ones with :func:`dataclasses.replace`,
and :class:`~instancevg.runtime.bundle.Bundle` reads one; nobody edits the JSON as a dict. Field
meanings: docs/DESIGN.md "Manifest". The JSON layout is format ``instancevg-edge-bundle/2``:
the :class:`~instancevg.runtime.decision.Decision` is stored under ``thresholds``, the other
fields under their own names; top-level keys this version does not know are kept in ``extra``
and written back unchanged.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .atomic_io import atomic_write_json
from .decision import Decision
from .errors import InstanceVGError
from .real_number import is_real_number

__all__ = ["FORMAT", "MANIFEST_NAME", "REQUIRED_FILES", "BundleError", "InputSpec", "GraphSpec", "Manifest",
           "file_entries", "sha256_file"]

# /2: grounder.onnx takes one image for a batch of expressions ("image_batch" axis, 1 or B).
FORMAT = "instancevg-edge-bundle/2"
MANIFEST_NAME = "manifest.json"
REQUIRED_FILES = ("text_encoder.onnx", "grounder.onnx", "tokenizer.json")
_HEX = frozenset("0123456789abcdef")


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
    return {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST_NAME}


def _number(value, where: str, positive: bool = False) -> float:
    if not is_real_number(value) or (positive and value <= 0):
        raise BundleError(f"{where} must be a {'positive ' if positive else ''}number, got {value!r}")
    return float(value)


def _integer(value, where: str, minimum: int) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
        raise BundleError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def _object(d: dict, key: str, where: str) -> dict:
    value = d.get(key)
    if not isinstance(value, dict):
        raise BundleError(f"{where}: field {key!r} is missing or not an object (got {type(value).__name__})")
    return value


@dataclass(frozen=True)
class InputSpec:
    """What ``grounder.onnx``'s ``image`` input expects.

    Attributes:
        image_size: S, the square side in pixels.
        mean, std: per-channel RGB normalisation, ``(x / 255 - mean) / std``.
        layout, color, dtype, normalize, resize: descriptive strings (NCHW, RGB, float32, ...).
    """

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    layout: str = "NCHW"
    color: str = "RGB"
    dtype: str = "float32"
    normalize: str = "(x / 255 - mean) / std"
    resize: str = "bilinear (cv2.INTER_LINEAR), no letterbox"

    @classmethod
    def from_dict(cls, d: dict, where: str) -> InputSpec:
        """Raises BundleError naming ``input.<field>`` when it is missing or malformed."""
        size = _integer(d.get("image_size"), f"{where}: field 'input.image_size'", 1)
        stats = {}
        for key in ("mean", "std"):
            values = d.get(key)
            if not (isinstance(values, list) and len(values) == 3):
                raise BundleError(f"{where}: field 'input.{key}' must be a list of 3 numbers, got {values!r}")
            stats[key] = tuple(_number(v, f"{where}: field 'input.{key}'", positive=key == "std") for v in values)
        known = {f.name for f in fields(cls)} - {"image_size", "mean", "std"}
        return cls(size, stats["mean"], stats["std"], **{k: str(v) for k, v in d.items() if k in known})


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph of the bundle: its file, input and output names, and how many GELUs the
    exporter reordered into ONNX Runtime's fusable pattern."""

    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    gelu_reordered: int = 0

    @classmethod
    def from_dict(cls, d, where: str) -> GraphSpec:
        """Raises BundleError when ``file`` is not a string or ``inputs`` / ``outputs`` not lists."""
        if not isinstance(d, dict) or not isinstance(d.get("file"), str):
            raise BundleError(f"{where} needs a 'file' name")
        for key in ("inputs", "outputs"):
            if not isinstance(d.get(key), list):
                raise BundleError(f"{where}.{key} is missing or not a list")
        return cls(d["file"], tuple(d["inputs"]), tuple(d["outputs"]), int(d.get("gelu_reordered", 0)))


@dataclass(frozen=True)
class Manifest:
    """A bundle's manifest (docs/DESIGN.md "Manifest").

    Attributes:
        input: the image input (:class:`InputSpec`).
        decision: score / mask thresholds, NMS IoU and box/mask rule (JSON key ``thresholds``).
        max_text_len: token budget L of the text encoder, >= 3.
        graphs: ``{"text_encoder": GraphSpec, "grounder": GraphSpec}``.
        files: ``{name: {"sha256", "bytes"}}`` of every file but the manifest.
        precision: ``fp32`` or ``int8`` (Q/DQ grounder).
        model: ``{"config", "checkpoint", "checkpoint_sha256"}`` of the exported model.
        mask_size, num_queries, text_dim: output sizes (None in hand-made manifests).
        boxes: the box convention, ``"cxcywh normalised to [0, 1]"``.
        opset, exporter, dynamic_axes, versions: how the graphs were made.
        engines: ``{precision: {tensorrt, device, workspace_mib, built, <graph>: {...}}}``.
        quantization: INT8 bundles only: tool, formats and calibration (``export/quantize.py``).
        extra: top-level keys this version does not know, kept on a rewrite.
        format: always :data:`FORMAT` (others are refused on read).
    """

    input: InputSpec
    decision: Decision
    max_text_len: int
    graphs: dict
    files: dict = field(default_factory=dict)
    precision: str = "fp32"
    model: dict = field(default_factory=dict)
    mask_size: int | None = None
    num_queries: int | None = None
    text_dim: int | None = None
    boxes: str = "cxcywh normalised to [0, 1]"
    opset: int | None = None
    exporter: str = ""
    dynamic_axes: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    engines: dict = field(default_factory=dict)
    quantization: dict | None = None
    extra: dict = field(default_factory=dict)
    format: str = FORMAT

    @classmethod
    def from_dict(cls, d: dict, where: str = MANIFEST_NAME) -> Manifest:
        """Check and parse the JSON form, so that a hand-edited or truncated manifest fails with
        the field's name instead of a KeyError at first use.

        Checked: ``format``; ``files`` (every required file listed with a 64-hex ``sha256``);
        ``input.image_size`` (positive integer), ``input.mean`` / ``input.std`` (3 numbers, std > 0);
        ``thresholds`` (:meth:`Decision.from_manifest`); ``max_text_len`` (integer >= 3);
        ``graphs.text_encoder`` / ``graphs.grounder`` (file, inputs and outputs lists).

        Raises:
            BundleError: naming ``where`` and the first missing or malformed field, or the format
                with the way out (re-export) when it is not :data:`FORMAT`.
        """
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            fmt = d.get("format") if isinstance(d, dict) else None
            raise BundleError(f"{where} has format {fmt!r}, expected {FORMAT!r}: re-export the bundle with "
                              "this version's export/export_onnx.py (then re-run export/quantize.py and "
                              "export/build_engine.py for INT8 bundles and TensorRT engines)")
        files = _object(d, "files", where)
        missing = [name for name in REQUIRED_FILES if name not in files]
        if missing:
            raise BundleError(f"{where} does not list {missing}")
        for name, entry in files.items():
            digest = entry.get("sha256") if isinstance(entry, dict) else None
            if not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= _HEX):
                raise BundleError(f"{where}: files[{name!r}] needs a 'sha256' of 64 hex digits, got {digest!r}")
        inp = InputSpec.from_dict(_object(d, "input", where), where)
        try:
            decision = Decision.from_manifest(_object(d, "thresholds", where), where)
        except ValueError as err:
            raise BundleError(str(err)) from None
        length = _integer(d.get("max_text_len"), f"{where}: field 'max_text_len'", 3)
        graphs_d = _object(d, "graphs", where)
        graphs = {name: GraphSpec.from_dict(graphs_d.get(name), f"{where}: field 'graphs.{name}'")
                  for name in ("text_encoder", "grounder")}
        known = {f.name for f in fields(cls)} - {"decision", "extra", "input", "graphs", "files", "max_text_len"}
        rest = {k: v for k, v in d.items() if k in known and k != "format"}
        extra = {k: v for k, v in d.items() if k not in known | {"thresholds", "input", "graphs", "files",
                                                                 "max_text_len", "format"}}
        if rest.get("engines") is None:
            rest["engines"] = {}
        return cls(input=inp, decision=decision, max_text_len=length, graphs=graphs, files=files,
                   extra=extra, **rest)

    def to_dict(self) -> dict:
        """The JSON form (key order as the exporter has always written it)."""
        d = {"format": self.format, "precision": self.precision, "model": self.model,
             "input": {**asdict(self.input), "mean": list(self.input.mean), "std": list(self.input.std)},
             "mask_size": self.mask_size, "num_queries": self.num_queries, "text_dim": self.text_dim,
             "max_text_len": self.max_text_len, "thresholds": self.decision.to_manifest(), "boxes": self.boxes,
             "opset": self.opset, "exporter": self.exporter,
             "graphs": {name: {"file": g.file, "inputs": list(g.inputs), "outputs": list(g.outputs),
                               "gelu_reordered": g.gelu_reordered} for name, g in self.graphs.items()},
             "dynamic_axes": self.dynamic_axes, "versions": self.versions, "engines": self.engines}
        if self.quantization is not None:
            d["quantization"] = self.quantization
        d.update(self.extra)
        d["files"] = self.files
        return d

    @classmethod
    def read(cls, directory: str | Path) -> Manifest:
        """Read and check ``directory/manifest.json``.

        Raises:
            BundleError: no such file, unreadable JSON, or a field :meth:`from_dict` refuses.
        """
        path = Path(directory) / MANIFEST_NAME
        if not path.is_file():
            raise BundleError(f"{directory} is not a bundle: {MANIFEST_NAME} is missing")
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BundleError(f"cannot read {path}: {exc}") from exc
        return cls.from_dict(d, str(path))

    def write(self, directory: str | Path) -> Manifest:
        """Checksum every file of ``directory`` into ``files`` and write ``manifest.json``
        atomically (a reader sees the old or the new manifest, never a torn one).

        Returns:
            the manifest as written (with the new ``files``).
        """
        written = replace(self, files=file_entries(directory))
        atomic_write_json(Path(directory) / MANIFEST_NAME, written.to_dict())
        return written
