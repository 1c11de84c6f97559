"""Atomic file writes: write to a temporary file in the destination's directory, flush it to
disk, then move it over the destination with ``os.replace``. Readers see the old file or the
new one, never a partial one, and a failed write leaves the old file untouched."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on normal exit it replaces ``path``.

    The new file keeps the old file's permission bits (0o644 for a new file, rather than
    mkstemp's 0o600). On an exception the temporary file is removed and ``path`` is unchanged.

    Raises:
        FileNotFoundError: if the destination directory does not exist.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write '{path}': directory '{parent}' does not exist")
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | Path, obj) -> None:
    """JSON (indent 2, sorted keys, trailing newline) written atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; on normal exit it becomes ``path``.

    For multi-file artefacts (an ONNX bundle): the directory is filled completely, then moved
    into place with ``os.replace``. An existing ``path`` is first renamed aside and removed only
    after the new directory is in place, so a failure at any point leaves either the old
    directory or the new one at ``path``, never a partial one (a crash between the two renames
    leaves the old one under ``.NAME.old-*`` beside it). On an exception the temporary directory
    is removed and ``path`` is unchanged.

    Missing parent directories are created (``outputs/bundles/edge`` on a fresh clone).

    Raises:
        NotADirectoryError: if ``path`` or one of its parents exists and is not a directory.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(f"cannot write '{path}': '{parent}' (or a folder above it) is a file") from None
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"cannot write a directory at '{path}': a file is there")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=parent))
            os.replace(path, old / path.name)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old / path.name, path)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
