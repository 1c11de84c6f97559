"""The Triton kernels compile for an H100-class GPU (sm_90) without one: ``tools/compile_kernels.py``
lowers them through Triton's NVIDIA backend and its bundled ptxas, which the interpreter-based
kernel tests never do."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

triton = pytest.importorskip("triton", reason="compiling the kernels needs triton")
ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("compile_kernels", ROOT / "tools" / "compile_kernels.py")
compile_kernels = sys.modules["compile_kernels"] = importlib.util.module_from_spec(_spec)  # dataclasses need it
_spec.loader.exec_module(compile_kernels)


def _has_nvidia_backend() -> bool:
    try:
        from triton.backends.compiler import GPUTarget  # noqa: F401
    except ImportError:
        return False
    return compile_kernels.nvidia_tool("ptxas") is not None


pytestmark = pytest.mark.skipif(not _has_nvidia_backend(),
                                reason="this Triton build has no NVIDIA backend with a bundled ptxas")


def _env(tmp_path) -> dict:
    """Not interpreted, and with an empty Triton cache, so that every kernel really compiles."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
    return env


def _run(tmp_path, *args):
    env = _env(tmp_path)
    out = tmp_path / "compiled.json"
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "compile_kernels.py"), "--json", str(out), *args],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=900, check=False)
    return res, (json.loads(out.read_text()) if out.exists() else None)


def test_every_kernel_compiles_for_sm90(tmp_path):
    # fp32 forward + backward (training), bf16 forward (mixed precision) and the mask head:
    # each kernel once per dtype family the model uses, to keep CI short.
    res, report = _run(tmp_path, "--dtype", "fp32")
    assert res.returncode == 0, res.stdout + res.stderr
    kernels = {r["kernel"] for r in report["results"]}
    assert kernels == {"_msda_fwd_kernel", "_msda_bwd_kernel", "_fused_mask_head_kernel"}
    for r in report["results"]:
        assert r["ok"] and r["cubin_bytes"] > 0 and r["ptx_bytes"] > 0, r
        assert r["registers"] is None or 0 < r["registers"] <= 255, r
    assert report["arch"] == 90
    res, report = _run(tmp_path, "--dtype", "bf16", "--kernel", "_msda_fwd_kernel")
    assert res.returncode == 0 and all(r["ok"] for r in report["results"]), res.stdout + res.stderr


def test_signatures_match_the_kernels():
    # The tool describes each kernel's arguments by hand; a kernel that gains or loses one must
    # fail here rather than be compiled with a shifted signature. (Under TRITON_INTERPRET=1 the
    # kernels are InterpretedFunctions, which carry the same arg_names.)
    from instancevg.kernels.mask_head import triton as mask_head_triton
    from instancevg.kernels.msda import triton as msda_triton

    assert list(compile_kernels.msda_signature("fp16", False)) == msda_triton._msda_fwd_kernel.arg_names
    assert list(compile_kernels.msda_signature("fp16", True)) == msda_triton._msda_bwd_kernel.arg_names
    assert list(compile_kernels.mask_head_signature("fp16")) == mask_head_triton._fused_mask_head_kernel.arg_names


def test_a_compile_error_is_reported_not_raised(tmp_path):
    # BLOCK_D = 30 is not a power of two, which tl.arange rejects at compile time.
    code = ("import sys; sys.path.insert(0, 'tools'); import compile_kernels as c; "
            "r = c.compile_case(c.Case('_msda_fwd_kernel', 'fp16', "
            "{'L': 3, 'P': 4, 'BLOCK_Q': 32, 'BLOCK_D': 30}, 4), 90); print(r.ok, '|', r.error)")
    env = _env(tmp_path)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
                         check=False)
    assert res.returncode == 0, res.stderr
    ok, error = res.stdout.strip().splitlines()[-1].split(" | ", 1)
    assert ok == "False" and error.strip(), res.stdout
