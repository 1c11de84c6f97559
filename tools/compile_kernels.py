"""Compile the Triton kernels for a CUDA GPU ahead of time, on a machine without one.

``TRITON_INTERPRET=1`` (what the CPU tests use) runs the kernels' Python semantics but never
lowers them, so it cannot show that a kernel *compiles*: the type checks of code generation, the
layouts of ``tl.dot``, the ``sem=`` of ``tl.atomic_add`` and the register budget only appear when
Triton lowers TTIR -> TTGIR -> LLVM IR -> PTX -> cubin. Triton's NVIDIA backend does all of that
without a GPU (``triton.compile`` with an explicit ``GPUTarget``; ``ptxas`` ships inside the
Triton wheel). This tool does it for every kernel in ``instancevg.kernels``:

* ``_msda_fwd_kernel`` and ``_msda_bwd_kernel`` (MSDeformAttn), in fp32, fp16 and bf16, with
  L = 4 levels (the original specification) and 3 (the shipped decoder), P = 4, Dh = 32, and every
  (BLOCK_Q, num_warps) of the autotuner's ``AUTOTUNE_SPACE`` (``--all-configs``; otherwise
  BLOCK_Q 32 with 4 warps);
* ``_fused_mask_head_kernel`` with the tile plan of an 80x80 -> 320x320 mask.

It then reads each cubin's registers and stack (local memory, where spills go) per thread with
the bundled ``cuobjdump``.
What it cannot show: that the kernels run correctly and fast on the GPU (that is
``benchmarks/test_kernels.py`` on a CUDA machine) or that autotuning picks a good configuration.

Usage::

    python tools/compile_kernels.py [--arch 90] [--all-configs] [--json OUT]

Exit status 0 when everything compiled, 1 when a kernel failed to compile, 2 when Triton or its
NVIDIA backend (with ``ptxas``) is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DTYPES = ("fp32", "fp16", "bf16")  # Triton's names for the torch dtypes the kernels take


@dataclass
class Case:
    """One kernel specialisation to compile."""

    kernel: str
    dtype: str
    constexprs: dict
    num_warps: int


@dataclass
class Compiled:
    """What compiling one :class:`Case` gave."""

    kernel: str
    dtype: str
    constexprs: dict
    num_warps: int
    seconds: float
    ok: bool
    error: str = ""
    ptx_bytes: int = 0
    cubin_bytes: int = 0
    shared_bytes: int = 0
    registers: int | None = None
    stack_bytes: int | None = None


def msda_signature(dtype: str, backward: bool) -> dict:
    """Triton signature of the MSDeformAttn kernels (argument name -> type) for ``dtype`` inputs.
    The backward writes its three gradients in fp32 (see ``MSDeformAttnFunction.backward``)."""
    t = "*" + dtype
    sig = {"value_ptr": t, "shapes_ptr": "*i32", "starts_ptr": "*i32", "loc_ptr": t, "attn_ptr": t}
    if backward:
        sig.update(grad_out_ptr=t, grad_value_ptr="*fp32", grad_loc_ptr="*fp32", grad_attn_ptr="*fp32")
    else:
        sig.update(out_ptr=t)
    sig.update(S="i32", Q="i32", n_heads="i32", d_head="i32", L="constexpr", P="constexpr",
               BLOCK_Q="constexpr", BLOCK_D="constexpr")
    return sig


def mask_head_signature(dtype: str) -> dict:
    """Triton signature of ``_fused_mask_head_kernel`` for ``dtype`` embeddings and logits."""
    t = "*" + dtype
    sig = {"embed_ptr": t, "pixel_ptr": t, "global_ptr": t, "keep_ptr": "*u8", "masks_ptr": "*u8",
           "union_ptr": "*u8"}
    sig.update({k: "i32" for k in ("NQ", "D", "h", "w", "Ho", "Wo")})
    sig.update(scale_y="fp32", scale_x="fp32", thr="fp32")
    sig.update({k: "constexpr" for k in ("NQ_PAD", "BD", "TY", "TX", "BH", "BW")})
    return sig


def cases(all_configs: bool) -> list[Case]:
    """The specialisations to compile: every dtype and level count for both MSDeformAttn kernels
    (all autotune configurations or only BLOCK_Q 32 with 4 warps) and the mask head at 80 -> 320."""
    from instancevg.kernels.mask_head.triton import plan_tiles
    from instancevg.kernels.msda.triton import AUTOTUNE_SPACE

    configs = list(AUTOTUNE_SPACE) if all_configs else [(32, 4)]
    out = []
    for kernel in ("_msda_fwd_kernel", "_msda_bwd_kernel"):
        for dtype in DTYPES:
            for levels in (4, 3):
                for bq, nw in configs:
                    out.append(Case(kernel, dtype, {"L": levels, "P": 4, "BLOCK_Q": bq, "BLOCK_D": 32}, nw))
    ty, tx, bh, bw = plan_tiles(80, 80, 320, 320)
    for dtype in DTYPES:
        out.append(Case("_fused_mask_head_kernel", dtype,
                        {"NQ_PAD": 16, "BD": 16, "TY": ty, "TX": tx, "BH": bh, "BW": bw}, 8))
    return out


def nvidia_tool(name: str) -> Path | None:
    """A binary shipped inside the installed Triton wheel (``ptxas``, ``cuobjdump``), or None."""
    import triton

    p = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name
    return p if p.is_file() else None


def resource_usage(cubin: bytes, kernel: str) -> tuple[int | None, int | None]:
    """(registers per thread, stack bytes per thread) of ``kernel`` in ``cubin``, read with the
    bundled ``cuobjdump --dump-resource-usage``. Stack is local memory: register spills and
    arrays the compiler could not keep in registers. (None, None) without cuobjdump."""
    exe = nvidia_tool("cuobjdump")
    if exe is None:
        return None, None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "k.cubin"
        path.write_bytes(cubin)
        text = subprocess.run([str(exe), "--dump-resource-usage", str(path)], capture_output=True, text=True, check=False).stdout
    m = re.search(rf"Function {re.escape(kernel)}:\s*REG:(\d+) STACK:(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def compile_case(case: Case, arch: int) -> Compiled:
    """Compile one case for ``sm_<arch>``; a compile error is caught and reported, not raised."""
    import triton
    from instancevg.kernels.mask_head import triton as mask_head_triton
    from instancevg.kernels.msda import triton as msda_triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    module = mask_head_triton if case.kernel == "_fused_mask_head_kernel" else msda_triton
    fn = getattr(module, case.kernel)
    if case.kernel == "_fused_mask_head_kernel":
        sig = mask_head_signature(case.dtype)
    else:
        sig = msda_signature(case.dtype, backward=case.kernel == "_msda_bwd_kernel")
    if list(sig) != list(fn.arg_names):
        raise RuntimeError(f"{case.kernel} takes {fn.arg_names}; this tool describes {list(sig)}: update it")
    src = ASTSource(fn=fn, signature=sig, constexprs={(fn.arg_names.index(k),): v for k, v in case.constexprs.items()})
    t0 = time.perf_counter()
    try:
        k = triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": case.num_warps})
    except Exception as exc:  # noqa: BLE001 - any compiler error is the finding
        first = str(exc).strip().splitlines()
        return Compiled(**asdict(case), seconds=time.perf_counter() - t0, ok=False,
                        error=f"{type(exc).__name__}: {first[0] if first else ''}")
    seconds = time.perf_counter() - t0
    regs, stack = resource_usage(k.asm["cubin"], case.kernel)
    return Compiled(**asdict(case), seconds=seconds, ok=True, ptx_bytes=len(k.asm["ptx"]),
                    cubin_bytes=len(k.asm["cubin"]), shared_bytes=int(getattr(k.metadata, "shared", 0)),
                    registers=regs, stack_bytes=stack)


def main(argv: list[str] | None = None) -> int:
    """CLI; see the module docstring for the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", type=int, default=90, help="CUDA compute capability x10 (90: H100/H200, 87: Orin)")
    p.add_argument("--all-configs", action="store_true", help="every (BLOCK_Q, num_warps) of the MSDA autotuner")
    p.add_argument("--kernel", action="append", default=None, help="only this kernel (repeatable)")
    p.add_argument("--dtype", action="append", default=None, choices=DTYPES, help="only this dtype")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    os.environ["TRITON_INTERPRET"] = "0"  # the kernels module picks jit vs interpreter at import
    try:
        import triton
        from triton.backends.compiler import GPUTarget  # noqa: F401
    except ImportError as exc:
        print(f"error: Triton with its NVIDIA backend is needed ({exc})", file=sys.stderr)
        return 2
    if nvidia_tool("ptxas") is None:
        print("error: this Triton has no bundled ptxas (backends/nvidia/bin/ptxas)", file=sys.stderr)
        return 2
    from instancevg.kernels.msda.triton import INTERPRETING

    if INTERPRETING:
        print("error: instancevg.kernels was imported under TRITON_INTERPRET=1; run in a fresh process",
              file=sys.stderr)
        return 2
    todo = [c for c in cases(args.all_configs) if (args.kernel is None or c.kernel in args.kernel)
            and (args.dtype is None or c.dtype in args.dtype)]
    if not todo:
        print("error: no kernel matches --kernel / --dtype", file=sys.stderr)
        return 2
    print(f"Triton {triton.__version__}, target sm_{args.arch}, {len(todo)} specialisations")
    results = []
    for case in todo:
        r = compile_case(case, args.arch)
        results.append(r)
        cx = " ".join(f"{k}={v}" for k, v in r.constexprs.items())
        if r.ok:
            print(f"ok    {r.kernel:24s} {r.dtype:4s} {cx:44s} warps={r.num_warps} {r.seconds:5.1f}s "
                  f"regs={r.registers} stack={r.stack_bytes}B smem={r.shared_bytes}B cubin={r.cubin_bytes // 1024}KiB")
        else:
            print(f"FAIL  {r.kernel:24s} {r.dtype:4s} {cx:44s} warps={r.num_warps} {r.error}")
    if args.json:
        args.json.write_text(json.dumps({"triton": triton.__version__, "arch": args.arch,
                                         "results": [asdict(r) for r in results]}, indent=1))
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} compiled, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
