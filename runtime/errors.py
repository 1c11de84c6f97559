"""The package's exception base class and the command-line error rule; installs as
``instancevg.runtime.errors`` and imports nothing beyond the standard library (no torch), so the
torch-free runtime, the training package and the export tools can all share it.

Every exception class the package defines (``instancevg``, ``instancevg.runtime``,
``instancevg.export``) derives from :class:`InstanceVGError` and keeps its builtin base
(``ValueError`` for bad input values, ``RuntimeError`` for a missing dependency, an unusable file or a
failed step), so ``except InstanceVGError`` catches all of them and existing ``except ValueError``
/ ``except RuntimeError`` code keeps working.

Exit-status rule of the ``instancevg`` command and the ``export/`` tools: 0 on success; 1 when a
check ran and failed (parity mismatch, TensorRT-incompatible operator); 2 on bad input or an error
raised by the package (:data:`CLI_ERRORS`), reported by :func:`report_error` as one line
``error: ...`` on stderr, without a traceback.
"""
from __future__ import annotations

import sys

__all__ = ["CLI_ERRORS", "EXIT_ERROR", "EXIT_FAILED", "EXIT_OK", "InstanceVGError", "report_error"]


class InstanceVGError(Exception):
    """Base class of every exception defined by InstanceVG-edge.

    Catch it to handle any failure the package reports on purpose (bad image, unreadable
    checkpoint or bundle, missing model package, failed export or engine build); each subclass
    also derives from the builtin it has always been (``ValueError`` or ``RuntimeError``).
    """


EXIT_OK = 0
EXIT_FAILED = 1  # a check ran and failed
EXIT_ERROR = 2  # bad input, or an error raised by the package

# What a command line reports as one ``error: ...`` line and exit status 2.
CLI_ERRORS = (InstanceVGError, ValueError, OSError)


def report_error(exc: BaseException | str, prog: str | None = None, file=None) -> int:
    """Print ``exc`` as one line ``[PROG: ]error: MESSAGE`` (whitespace collapsed) on stderr.

    Returns:
        :data:`EXIT_ERROR` (2), for ``return report_error(exc)`` in a ``main``.
    """
    msg = " ".join(str(exc).split()) or type(exc).__name__
    print(f"{prog}: error: {msg}" if prog else f"error: {msg}", file=sys.stderr if file is None else file)
    return EXIT_ERROR
