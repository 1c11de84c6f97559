"""Run the command blocks of README.md and docs/*.md verbatim in a fresh copy of the repository.

    python tools/readme_blocks.py --list          # every block, its file, line and mode
    python tools/readme_blocks.py                 # the blocks marked ci (what tests/test_readme.py runs)
    python tools/readme_blocks.py --all           # every block that this machine can run (before a release)

The pages are README.md, then every ``docs/*.md`` sorted by file name (``pages()``). Every fenced
``bash`` or ``python`` block in them is preceded by a marker line:

* ``<!-- readme: ci -->``: fast; CI runs it (``tests/test_readme.py``).
* ``<!-- readme: manual (WHY) -->``: slow, or needs what CI lacks (TensorRT, a GPU, an exported
  bundle); run by hand with ``--all`` before a release. ``needs tensorrt`` in WHY skips it where
  TensorRT is not importable.

The copy is made from the files git tracks (``git ls-files``), committed to a new repository so
that ``git status`` afterwards shows anything a command left outside the git-ignored folders, and
placed beside a link to ``../shared`` when the real checkout has one. Blocks run in page order,
then in order within a page, in that one copy (a later block, also on a later page, may use what
an earlier one wrote), with bash ``-euo pipefail``, from the copy's root.

A fence in another shell or Python spelling (``sh``, ``shell``, ``console``, ``py``, ...) is an
error, so that no command block escapes the check. Relative Markdown links of every page must
point at files or folders that exist (``broken_links``).

``pip install`` lines are not executed (they would re-point this environment's editable install
at the temporary copy): a ``pip`` on the PATH instead checks that each requirement they name is
already installed at the version they pin, and ``.ci/run`` runs the real install line itself.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!--\s*readme:\s*(ci|manual)\s*(?:\((.*?)\))?\s*-->")
FENCE = re.compile(r"^```(bash|python)\s*$")
# Fences that look like commands but are not exactly FENCE: rejected so that every block is checked.
OTHER_FENCE = re.compile(r"^```\s*(bash|python|sh|shell|zsh|console|shell-session|py|python3|pycon|ipython)\b",
                         re.I)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")

# What a `pip install` line of the README may name, and how this environment must satisfy it.
PIP_SHIM = r'''#!/usr/bin/env python3
"""README check: `pip install ...` verifies instead of installing (see tools/readme_blocks.py)."""
import importlib.metadata as md
import sys

args = sys.argv[1:]
if not args or args[0] != "install":
    sys.exit(f"readme pip shim: only `pip install` is expected in README blocks, got {args}")
for req in args[1:]:
    if req in ("-e", "--quiet", "-q", "--no-deps"):
        continue
    name, _, version = req.partition("==")
    if name in (".",) or name.startswith(".["):
        name = "instancevg-edge"
    for extra in ("[test]", "[export]"):
        name = name.replace(extra, "")
    name = name.strip('"')
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        sys.exit(f"readme pip shim: {req} is not installed in this environment")
    if version and not have.startswith(version):
        sys.exit(f"readme pip shim: {req} asked, {have} installed")
'''


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: its language, text, mode (ci / manual), reason, line and page
    (the file's path relative to the repository root, e.g. ``docs/export.md``)."""

    lang: str
    text: str
    mode: str
    reason: str
    line: int
    page: str = "README.md"

    @property
    def where(self) -> str:
        """``page:line`` of the block's opening fence."""
        return f"{self.page}:{self.line}"


def pages(root: Path = ROOT) -> list[Path]:
    """The pages whose blocks are checked, in the order their blocks run: README.md, then every
    ``docs/*.md`` sorted by file name."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"), key=lambda p: p.name)]


def _page_name(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def readme_blocks(readme: Path = ROOT / "README.md", name: str | None = None) -> list[Block]:
    """Every ``bash`` / ``python`` block of one page with its marker.

    Args:
        readme: the Markdown file.
        name: how errors and blocks name it (default: its path relative to the repository root,
            or its file name when it lies outside).

    Raises:
        ValueError: a block without a marker on one of the two lines before its fence, a fence in
            another shell or Python spelling (``sh``, ``py``, ...), or an unterminated block.
    """
    name = name or _page_name(readme, ROOT)
    lines = readme.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            other = OTHER_FENCE.match(lines[i])
            if other:
                raise ValueError(f"{name}:{i + 1}: fence {lines[i].strip()!r}: write command blocks as "
                                 "```bash or ```python (nothing after it) so that they are checked")
            i += 1
            continue
        marker = next((m for m in (MARKER.search(lines[j]) for j in range(max(0, i - 2), i)) if m), None)
        if marker is None:
            raise ValueError(f"{name}:{i + 1}: a {fence.group(1)} block without a "
                             "<!-- readme: ci --> or <!-- readme: manual (why) --> marker before it")
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise ValueError(f"{name}:{i + 1}: unterminated block")
        blocks.append(Block(fence.group(1), "\n".join(lines[i + 1:end]) + "\n", marker.group(1),
                            marker.group(2) or "", i + 1, name))
        i = end + 1
    return blocks


def all_blocks(root: Path = ROOT) -> list[Block]:
    """The blocks of every page (``pages``), in run order; raises as ``readme_blocks``."""
    return [b for page in pages(root) for b in readme_blocks(page, _page_name(page, root))]


def broken_links(root: Path = ROOT) -> list[str]:
    """``page:line: target`` for every relative Markdown link of a page (``[text](target)``) whose
    file or folder does not exist. Web links, mail links and in-page anchors are not checked; a
    ``#anchor`` after a path is ignored. Links inside fenced blocks are skipped."""
    bad = []
    for page in pages(root):
        in_fence = False
        for n, line in enumerate(page.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_fence = not in_fence
                continue
            if in_fence:
                continue
            for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):   # code spans are not links
                if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
                    continue
                path = target.split("#", 1)[0]
                if not (page.parent / path).exists():
                    bad.append(f"{_page_name(page, root)}:{n}: {target}")
    return bad


def fresh_copy(dest: Path) -> Path:
    """A fresh-clone-like copy of this checkout's tracked files at ``dest/repo``, committed to a
    new git repository, with ``dest/shared`` linking to ``../shared`` when that exists.

    Returns:
        the copy's root.
    """
    repo = dest / "repo"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (dest / "shared").symlink_to(shared)
    git = ["git", "-c", "user.name=readme", "-c", "user.email=readme@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fresh copy"], cwd=repo, check=True)
    return repo


def run_block(block: Block, repo: Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run one block verbatim in ``repo`` (bash ``-euo pipefail``, or the current Python), with
    the pip shim first on the PATH. Returns the completed process (output captured)."""
    shim = repo.parent / "pip-shim"
    shim.mkdir(exist_ok=True)
    for name in ("pip", "pip3"):
        (shim / name).write_text(PIP_SHIM.replace("#!/usr/bin/env python3", f"#!{sys.executable}", 1))
        (shim / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = ["bash", "-euo", "pipefail", "-c", block.text] if block.lang == "bash" else [sys.executable, "-c", block.text]
    return subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)


def untracked(repo: Path) -> list[str]:
    """Files a command left in ``repo`` outside its git-ignored folders."""
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo, check=True,
                         capture_output=True, text=True).stdout
    return [line[3:] for line in out.splitlines()]


def _runnable(block: Block) -> bool:
    if "needs tensorrt" not in block.reason:
        return True
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """CLI: 0 when every selected block succeeded and left no untracked file and no page has a
    broken link, 1 otherwise."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--all", action="store_true", help="also the manual blocks (slow; before a release)")
    p.add_argument("--list", action="store_true", help="list the blocks (file:line, language, mode, why) and exit")
    args = p.parse_args(argv)
    blocks = all_blocks()
    if args.list:
        width = max((len(b.where) for b in blocks), default=0)
        for b in blocks:
            print(f"{b.where:{width}}  {b.lang:6}  {b.mode:6}  {b.reason}")
        return 0
    failed = 0
    for bad in broken_links():
        failed += 1
        print(f"{bad}: broken link")
    with tempfile.TemporaryDirectory() as tmp:
        repo = fresh_copy(Path(tmp))
        for b in blocks:
            if b.mode == "manual" and not args.all:
                continue
            if not _runnable(b):
                print(f"{b.where}: skipped ({b.reason}; TensorRT is not installed here)")
                continue
            proc = run_block(b, repo)
            print(f"{b.where}: {'ok' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'}")
            if proc.returncode:
                failed += 1
                print((proc.stdout + proc.stderr)[-3000:])
        left = untracked(repo)
        if left:
            failed += 1
            print(f"left outside the git-ignored folders: {left}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
