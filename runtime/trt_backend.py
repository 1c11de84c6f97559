"""TensorRT backend: runs the bundle's serialized engines (``export/build_engine.py``).

Written against the TensorRT 10 Python API (``trt.Runtime.deserialize_cuda_engine``, named I/O
tensors, ``IExecutionContext.set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3``;
TensorRT docs, "Python API: Performing Inference"). Importable without TensorRT or a CUDA
binding; constructing the backend raises ImportError naming what is missing. One execution
context per engine, used under a lock, so a Grounder shared by threads is safe.
"""
from __future__ import annotations

import threading

import numpy as np

from .bundle import Bundle, BundleError, check_grounder_inputs
from .cuda_memory import open_cuda


class _Engine:
    """One deserialized engine, its execution context and growable device buffers."""

    def __init__(self, trt, runtime, path, cuda):
        self.trt, self.cuda = trt, cuda
        with cuda:
            self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
            if self.engine is None:
                raise BundleError(f"TensorRT could not deserialize {path} (built for another TensorRT or GPU?)")
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, capacity in bytes)
        self.lock = threading.Lock()

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, cap = self.buffers.get(name, (0, 0))
        if nbytes > cap:
            if ptr:
                self.cuda.free(ptr)
            ptr, cap = self.cuda.alloc(nbytes), nbytes
            self.buffers[name] = (ptr, cap)
        return ptr

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self.lock, self.cuda:
            for name in self.inputs:
                host = np.ascontiguousarray(feeds[name], dtype=self.dtypes[name])
                if not self.context.set_input_shape(name, tuple(host.shape)):
                    raise ValueError(f"input {name} shape {host.shape} is outside the engine's optimization profile")
                ptr = self._buffer(name, host.nbytes)
                self.cuda.to_device(ptr, host)
                self.context.set_tensor_address(name, ptr)
                feeds[name] = host  # keep the host copy alive until the stream is synchronized
            results = {}
            for name in self.outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                results[name] = np.empty(shape, dtype=self.dtypes[name])
                self.context.set_tensor_address(name, self._buffer(name, results[name].nbytes))
            if not self.context.execute_async_v3(self.cuda.stream_handle):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            for name in self.outputs:
                self.cuda.to_host(results[name], self.buffers[name][0])
            self.cuda.synchronize()
        return results


class TensorRTBackend:
    """Runs ``text_encoder.<precision>.engine`` and ``grounder.<precision>.engine``.

    Args:
        bundle: an opened bundle whose manifest lists engines (``manifest.engines``).
        precision: "fp16" or "int8"; default the first engine set listed.
        verify: check engine SHA-256 against the manifest.

    Raises:
        ImportError: TensorRT or a CUDA binding (cuda-python / pycuda) is missing.
        BundleError: no engine for that precision in the bundle, or a tampered engine file.
    """

    name = "tensorrt"

    def __init__(self, bundle: Bundle, precision: str | None = None, verify: bool = True):
        engines = bundle.manifest.engines
        if not engines:
            raise BundleError(f"{bundle.path} has no TensorRT engines: build them with export/build_engine.py")
        precision = precision or next(iter(engines))
        if precision not in engines:
            raise BundleError(f"{bundle.path} has engines for {sorted(engines)}, not {precision!r}")
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise ImportError("the tensorrt backend needs TensorRT 10 (JetPack's python3-libnvinfer "
                              "or `pip install tensorrt` on x86_64 CUDA machines)") from exc
        entry = engines[precision]
        paths = {g: bundle.file(entry[g]["file"], verify) for g in ("text_encoder", "grounder")}
        self.cuda = open_cuda()
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.text_engine = _Engine(trt, self.runtime, paths["text_encoder"], self.cuda)
        self.grounder_engine = _Engine(trt, self.runtime, paths["grounder"], self.cuda)
        self.grounder_outputs = bundle.manifest.graphs["grounder"].outputs
        self.precision = precision

    def encode_text(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """(B, L) int64 ids and mask -> (B, L, 384) float32 token features."""
        out = self.text_engine.run({"input_ids": input_ids, "attention_mask": attention_mask})
        return out["text_features"].astype(np.float32, copy=False)

    def ground(self, image: np.ndarray, text_features: np.ndarray, text_mask: np.ndarray) -> dict[str, np.ndarray]:
        """Same contract as :meth:`OnnxRuntimeBackend.ground`."""
        check_grounder_inputs(image, text_features, text_mask)
        out = self.grounder_engine.run({"image": image, "text_features": text_features, "text_mask": text_mask})
        return {k: out[k].astype(np.float32, copy=False) for k in self.grounder_outputs}
