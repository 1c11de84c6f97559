"""README.md's command blocks: each is marked ci or manual, and the ci ones run verbatim on a
fresh copy of the repository without leaving files outside the git-ignored folders
(`tools/readme_blocks.py`; run the manual ones with `python tools/readme_blocks.py --all`)."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("readme_blocks", ROOT / "tools" / "readme_blocks.py")
readme_blocks = importlib.util.module_from_spec(spec)
sys.modules["readme_blocks"] = readme_blocks  # its dataclass looks its module up there
spec.loader.exec_module(readme_blocks)


def test_every_block_is_marked(tmp_path):
    blocks = readme_blocks.readme_blocks()
    assert [b.mode for b in blocks].count("ci") >= 2
    assert all(b.reason for b in blocks if b.mode == "manual")  # a manual block says why
    bad = tmp_path / "README.md"
    bad.write_text("text\n\n```bash\necho unmarked\n```\n")
    with pytest.raises(ValueError, match="README.md:3: a bash block without a"):
        readme_blocks.readme_blocks(bad)


def test_pip_lines_are_checked_not_run(tmp_path):
    """The shim accepts what is installed and fails on what is not (so a wrong README pin fails)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    ok = readme_blocks.Block("bash", "pip install -e . && pip install numpy\n", "ci", "", 1)
    assert readme_blocks.run_block(ok, repo).returncode == 0
    bad = readme_blocks.Block("bash", "pip install torch==0.0.1\n", "ci", "", 1)
    proc = readme_blocks.run_block(bad, repo)
    assert proc.returncode != 0 and "torch==0.0.1 asked" in proc.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="the fresh copy is a git repository: git is not installed")
def test_ci_blocks_run_verbatim_on_a_fresh_copy(tmp_path):
    repo = readme_blocks.fresh_copy(tmp_path)
    for block in readme_blocks.readme_blocks():
        if block.mode != "ci":
            continue
        proc = readme_blocks.run_block(block, repo, timeout=900)
        assert proc.returncode == 0, f"README.md:{block.line} failed:\n{(proc.stdout + proc.stderr)[-2000:]}"
    assert (repo / "outputs" / "overlay.png").is_file()
    assert readme_blocks.untracked(repo) == []  # outputs land in git-ignored folders
