"""`instancevg` command line: ground, make-data, train, eval, pack (one module per subcommand).

Every user-facing failure (missing or corrupt image, empty expression, unreadable checkpoint,
missing dataset, missing model package: any :class:`~instancevg.runtime.errors.InstanceVGError`,
``ValueError`` or ``OSError``) prints one line ``instancevg: error: ...`` and exits with status 2.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from . import evaluate, ground, make_data, pack, train


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the `instancevg` command."""
    from .. import __version__

    p = argparse.ArgumentParser(prog="instancevg", description="Generalized visual grounding (InstanceVG-edge): "
                                "every object a phrase refers to (zero, one or many) as boxes, scores and masks.")
    p.add_argument("--version", action="version", version=f"instancevg {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    for command in (ground, make_data, train, evaluate, pack):
        command.add_parser(sub)
    return p


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings on the command line as ``instancevg: warning: ...``, one line each."""
    print(f"instancevg: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `instancevg` console script."""
    from ..runtime.errors import CLI_ERRORS, report_error

    args = build_parser().parse_args(argv)
    shown, warnings.showwarning = warnings.showwarning, _one_line_warning
    try:
        return args.func(args)
    except CLI_ERRORS as exc:  # InstanceVGError (CheckpointError, BackboneUnavailableError, ...), ValueError, OSError
        return report_error(exc, prog="instancevg")
    finally:
        warnings.showwarning = shown
