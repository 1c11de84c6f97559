"""Build TensorRT engines from a bundle: the design card's command, run from a checkout.

    python export/build_engine.py [--bundle BUNDLE] (--fp16 | --int8) [--out DIR] [--workspace MiB]
        [--timing-cache FILE] [--max-batch 8] [--opt-batch 1] [--opt-text-len 16]

The builder is the runtime's (:mod:`instancevg.runtime.engine_build`, also ``instancevg-runtime
build-engine`` from the wheel alone); this script imports only the runtime. Without ``--bundle``
it first exports the shipped model to ``--out`` (default ``bundles/instancevg_edge``), which needs
the full package with PyTorch; on a device that has only the runtime wheel, pass ``--bundle``.
Exit status 0 when the engines are written, 2 on any error (one line on stderr).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from instancevg.runtime.engine_build import add_arguments, run

DEFAULT_OUT = Path("bundles/instancevg_edge")


def export_shipped_model(out: Path | None) -> Path:
    """Export the shipped model to ``out`` (default ``bundles/instancevg_edge``) and return it.

    Raises:
        ImportError: the full package (PyTorch, the exporter) is not installed.
    """
    try:
        from instancevg.api import DEFAULT_WEIGHTS
        from instancevg.checkpoint import load_model
        from instancevg.export.export_onnx import export_bundle
    except ImportError as exc:
        raise ImportError(f"exporting the shipped model needs the full package ({exc}); on a device with "
                          "only instancevg-runtime pass --bundle") from None
    bundle = out or DEFAULT_OUT
    bundle.parent.mkdir(parents=True, exist_ok=True)
    export_bundle(load_model(DEFAULT_WEIGHTS), bundle, checkpoint=DEFAULT_WEIGHTS)
    print(f"exported the shipped model to {bundle}")
    return bundle


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p, bundle_required=False)
    return run(p.parse_args(argv), export_default=export_shipped_model)


if __name__ == "__main__":
    sys.exit(main())
