"""What every reader shares: :func:`read_json`, the one way a reader opens a JSON file (a missing
or malformed file raises a one-line error that names it), and :func:`say`, the loader summary
line on stderr."""
from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["read_json", "say"]


def say(message: str) -> None:
    """Print a loader summary line on stderr (stdout stays free for ``--json`` output)."""
    print(message, file=sys.stderr, flush=True)


def read_json(path: str | Path, what: str, hint: str = ""):
    """Read a JSON file (UTF-8).

    Args:
        path: the file.
        what: what the file is, for the error message (``"COCO instances file"``).
        hint: appended to the not-found message (how to create the file), e.g.
            ``" (create it with `instancevg make-data --out DIR`)"``.

    Returns:
        the parsed JSON value (dict, list, ...).

    Raises:
        FileNotFoundError: the file does not exist (``"{what} not found: {path}{hint}"``).
        ValueError: the file is not valid UTF-8 JSON (``"{path}: not valid JSON: ..."``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}{hint}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
