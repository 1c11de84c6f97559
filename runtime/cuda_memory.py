"""Device buffers and a CUDA stream for the TensorRT backend, through cuda-python
(``cuda.bindings.runtime``, or the older ``cuda.cudart``) or, where that is missing, pycuda.

Importable without either; :func:`open_cuda` raises a clear ImportError when neither is there.
"""
from __future__ import annotations

import numpy as np


class _CudaPython:
    """cuda-python runtime API (CUDA runtime docs: cudaMalloc, cudaMemcpyAsync, cudaStreamSynchronize)."""

    name = "cuda-python"

    def __init__(self):
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart
        self.cudart = cudart
        self.stream = self._check(cudart.cudaStreamCreate())

    def _check(self, ret):
        err, *rest = ret if isinstance(ret, tuple) else (ret,)
        if err != self.cudart.cudaError_t.cudaSuccess:
            raise RuntimeError(f"CUDA runtime error: {err}")
        return rest[0] if rest else None

    @property
    def stream_handle(self) -> int:
        return int(self.stream)

    def alloc(self, nbytes: int) -> int:
        return int(self._check(self.cudart.cudaMalloc(max(int(nbytes), 1))))

    def free(self, ptr: int) -> None:
        self._check(self.cudart.cudaFree(ptr))

    def to_device(self, ptr: int, host: np.ndarray) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.cudart.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, kind, self.stream))

    def to_host(self, host: np.ndarray, ptr: int) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.cudart.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, kind, self.stream))

    def synchronize(self) -> None:
        self._check(self.cudart.cudaStreamSynchronize(self.stream))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _PyCuda:
    """pycuda driver API on the primary context of device 0 (pushed for each use)."""

    name = "pycuda"

    def __init__(self):
        import pycuda.driver as drv

        drv.init()
        self.drv = drv
        self.context = drv.Device(0).retain_primary_context()
        with self:
            self.stream = drv.Stream()
        self._allocs: dict[int, object] = {}

    @property
    def stream_handle(self) -> int:
        return int(self.stream.handle)

    def alloc(self, nbytes: int) -> int:
        mem = self.drv.mem_alloc(max(int(nbytes), 1))
        self._allocs[int(mem)] = mem
        return int(mem)

    def free(self, ptr: int) -> None:
        self._allocs.pop(ptr).free()

    def to_device(self, ptr: int, host: np.ndarray) -> None:
        self.drv.memcpy_htod_async(ptr, host, self.stream)

    def to_host(self, host: np.ndarray, ptr: int) -> None:
        self.drv.memcpy_dtoh_async(host, ptr, self.stream)

    def synchronize(self) -> None:
        self.stream.synchronize()

    def __enter__(self):
        self.context.push()
        return self

    def __exit__(self, *exc):
        self.context.pop()
        return False


def open_cuda():
    """A CUDA stream + allocator: cuda-python if installed, else pycuda.

    Raises:
        ImportError: neither cuda-python nor pycuda is installed.
    """
    try:
        return _CudaPython()
    except ImportError:
        pass
    try:
        return _PyCuda()
    except ImportError as exc:
        raise ImportError("the TensorRT backend needs device buffers from cuda-python "
                          "(`pip install cuda-python`) or pycuda") from exc
