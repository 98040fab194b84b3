#!/usr/bin/env python3
"""Regenerate Tests/Fixtures/gpt2-tokenizer-json (committed; CI never runs this).

    python3 -m venv .venv && .venv/bin/pip install transformers
    .venv/bin/python scripts/make-tokenizer-json-fixtures.py

transformers 5 saves a tokenizer as one tokenizer.json (and tokenizer_config.json), with no vocab.json
or merges.txt. This loads the GPT-2 fixture's tokenizer (Tests/Fixtures/gpt2) and saves it that way,
then writes cases.json: ids transformers gives for awkward texts from the saved folder, which the
tests hold the tokenizer.json reader to.
"""
import json
import pathlib
import shutil

from transformers import AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures"
OUT = ROOT / "gpt2-tokenizer-json"
shutil.rmtree(OUT, ignore_errors=True)
AutoTokenizer.from_pretrained(str(ROOT / "gpt2")).save_pretrained(str(OUT))
saved = AutoTokenizer.from_pretrained(str(OUT))
texts = ["The cat sat on the mat.", "  leading spaces and trailing  ", "naïve café 日本 😀", "a<|endoftext|>b",
         "tabs\tand\nnewlines\n\n", "1234 3.14 don't won't", ""]
cases = [{"text": t, "ids": saved(t)["input_ids"]} for t in texts]
(OUT / "cases.json").write_text(json.dumps({"cases": cases}, ensure_ascii=False, indent=1) + "\n")
print(sorted(p.name for p in OUT.iterdir()))
