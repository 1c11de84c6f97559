"""docs/DESIGN.md "Where things live" matches the tree: every path it names exists, and every
package folder of the repository is named (itself or through a parent row)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Where things live"


def _rows() -> list[str]:
    text = (ROOT / "docs" / "DESIGN.md").read_text()
    assert SECTION in text, f"docs/DESIGN.md has no {SECTION!r} section"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", body, flags=re.M)


def test_every_named_path_exists():
    rows = _rows()
    assert len(rows) >= 10
    missing = [p for p in rows if not (ROOT / p).exists()]
    assert not missing, f"docs/DESIGN.md names paths that do not exist: {missing}"


def test_every_package_folder_is_named():
    rows = [p.rstrip("/") for p in _rows()]
    packages = sorted(str(d.parent.relative_to(ROOT)) for top in ("instancevg", "kernels", "export", "runtime")
                      for d in (ROOT / top).rglob("__init__.py"))
    unnamed = [p for p in packages
               if not any(p == r or p.startswith(r + "/") or r.startswith(p + "/") for r in rows)]
    assert not unnamed, f"package folders missing from docs/DESIGN.md 'Where things live': {unnamed}"
