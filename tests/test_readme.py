"""The command blocks of README.md and docs/*.md: each is marked ci or manual, and the ci ones run
verbatim on a fresh copy of the repository without leaving files outside the git-ignored folders
(`tools/readme_blocks.py`; run the manual ones with `python tools/readme_blocks.py --all`); the
pages' relative links point at files that exist."""
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
    blocks = readme_blocks.all_blocks()
    assert [b.mode for b in blocks].count("ci") >= 2
    assert all(b.reason for b in blocks if b.mode == "manual")  # a manual block says why
    bad = tmp_path / "README.md"
    bad.write_text("text\n\n```bash\necho unmarked\n```\n")
    with pytest.raises(ValueError, match="README.md:3: a bash block without a"):
        readme_blocks.readme_blocks(bad)


def test_docs_pages_are_checked_too(tmp_path):
    """docs/*.md blocks count, run after README.md's, by page name; an unmarked one fails."""
    names = [p.relative_to(ROOT).as_posix() for p in readme_blocks.pages()]
    assert names[0] == "README.md" and names[1:] == sorted(names[1:], key=lambda n: n.split("/")[-1])
    assert "docs/export.md" in names and "docs/training.md" in names
    blocks = readme_blocks.all_blocks()
    order = [names.index(b.page) for b in blocks]
    assert order == sorted(order) and {b.page for b in blocks} > {"README.md", "docs/export.md"}
    # the commands that left the README (export, training) are still checked, on their pages
    assert any("export/export_onnx.py --out outputs/bundles/edge --check" in b.text for b in blocks
               if b.page == "docs/export.md")
    assert any("instancevg train --resume runs/demo" in b.text for b in blocks if b.page == "docs/training.md")

    (tmp_path / "README.md").write_text("<!-- readme: ci -->\n```bash\necho ok\n```\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("<!-- readme: manual (slow) -->\n```python\nprint(1)\n```\n")
    (tmp_path / "docs" / "a.md").write_text("<!-- readme: ci -->\n```bash\necho a\n```\n")
    got = [(b.page, b.line, b.mode) for b in readme_blocks.all_blocks(tmp_path)]
    assert got == [("README.md", 2, "ci"), ("docs/a.md", 2, "ci"), ("docs/b.md", 2, "manual")]
    (tmp_path / "docs" / "c.md").write_text("# c\n\n```python\nprint('unmarked')\n```\n")
    with pytest.raises(ValueError, match="docs/c.md:3: a python block without a"):
        readme_blocks.all_blocks(tmp_path)
    (tmp_path / "docs" / "c.md").write_text("<!-- readme: ci -->\n```sh\necho escapes\n```\n")
    with pytest.raises(ValueError, match="docs/c.md:2: fence '```sh'"):
        readme_blocks.all_blocks(tmp_path)


def test_list_names_each_blocks_file(capsys):
    assert readme_blocks.main(["--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(readme_blocks.all_blocks())
    assert out[0].startswith("README.md:") and any(line.startswith("docs/export.md:") for line in out)


def test_links_point_at_files(tmp_path):
    assert readme_blocks.broken_links() == []
    (tmp_path / "README.md").write_text("[ok](docs/a.md) [web](https://example.com) [gone](docs/none.md#x)\n"
                                        "`[code](not/a/link)`\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("[up](../README.md) [here](#top) [missing](../nope.py)\n")
    assert readme_blocks.broken_links(tmp_path) == ["README.md:1: docs/none.md#x", "docs/a.md:1: ../nope.py"]


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
    for block in readme_blocks.all_blocks():   # README.md, then docs/*.md, in one copy
        if block.mode != "ci":
            continue
        proc = readme_blocks.run_block(block, repo, timeout=900)
        assert proc.returncode == 0, f"{block.where} failed:\n{(proc.stdout + proc.stderr)[-2000:]}"
    assert (repo / "outputs" / "overlay.png").is_file()
    assert readme_blocks.untracked(repo) == []  # outputs land in git-ignored folders
