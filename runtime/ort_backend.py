"""ONNX Runtime backend: one InferenceSession per graph of the bundle.

``InferenceSession.run`` is thread-safe (ONNX Runtime docs, "Thread safety"), so sessions are
shared by all threads of a :class:`Grounder`.
"""
from __future__ import annotations

import numpy as np

from .bundle import Bundle, check_grounder_inputs


def session_options(threads: int | None = None, spinning: bool = False):
    """ORT session options: full graph optimisation, sequential execution, ``threads`` intra-op
    threads (None: ONNX Runtime's default, one per physical core).

    ``spinning`` (ORT's ``session.intra_op.allow_spinning``) is off by default: spinning worker
    threads keep a core busy between calls, which starves the caller's own pre- and
    post-processing (and any other process) on a machine with few cores; it helps only when
    nothing else competes for them (benchmarks/RESULTS.md has the figures). Turn it on only
    where the grounder has the cores to itself.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


class OnnxRuntimeBackend:
    """Runs ``text_encoder.onnx`` and ``grounder.onnx`` with ONNX Runtime.

    Args:
        bundle: an opened :class:`Bundle` (files are checksum-verified here).
        threads: intra-op threads per session (None = ONNX Runtime's default).
        spinning: let idle ORT worker threads spin-wait (see :func:`session_options`); for a
            machine whose cores are reserved for the grounder.
        providers: ORT execution providers (default: CUDA when the installed onnxruntime has it,
            then CPU).
        verify: check SHA-256 of the ONNX files against the manifest.

    Raises:
        ImportError: onnxruntime is not installed. BundleError: missing or tampered file.
    """

    name = "onnxruntime"

    def __init__(self, bundle: Bundle, threads: int | None = None, providers: list[str] | None = None,
                 verify: bool = True, spinning: bool = False):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ImportError("the onnxruntime backend needs `pip install onnxruntime` "
                              "(onnxruntime-gpu on CUDA machines)") from exc
        if providers is None:
            available = ort.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        opts = session_options(threads, spinning)
        self.text_session = ort.InferenceSession(str(bundle.file("text_encoder.onnx", verify)), opts,
                                                 providers=providers)
        self.grounder_session = ort.InferenceSession(str(bundle.file("grounder.onnx", verify)), opts,
                                                     providers=providers)
        self.grounder_outputs = bundle.manifest.graphs["grounder"].outputs
        self.providers = self.grounder_session.get_providers()

    def encode_text(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """(B, L) int64 ids and mask -> (B, L, 384) float32 token features."""
        return self.text_session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    def ground(self, image: np.ndarray, text_features: np.ndarray, text_mask: np.ndarray) -> dict[str, np.ndarray]:
        """Run ``grounder.onnx`` on B expressions -> its outputs by name (``export/graphs.py``).

        Args:
            image: (1, 3, S, S) float32, shared by all B expressions, or (B, 3, S, S), one each.
            text_features: (B, L, 384) float32. text_mask: (B, L) int64.

        Raises:
            ValueError: see :func:`instancevg.runtime.bundle.check_grounder_inputs`.
        """
        check_grounder_inputs(image, text_features, text_mask)
        outs = self.grounder_session.run(None, {"image": image, "text_features": text_features,
                                                "text_mask": text_mask})
        return dict(zip(self.grounder_outputs, outs))
