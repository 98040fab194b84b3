#!/usr/bin/env python3
"""Check that a model written by `attention train gpt` is a GPT-2 transformers loads as it is.

    swift build -c release --product attention
    swift run -c release attention train gpt --output shakespeare-gpt
    python3 -m venv .venv && .venv/bin/pip install torch numpy transformers
    .venv/bin/python scripts/check-gpt2-export.py shakespeare-gpt

Loads the folder with GPT2LMHeadModel.from_pretrained and GPT2TokenizerFast.from_pretrained (no
conversion), then for a few prompts compares, against `attention generate --greedy --json` on the
same folder: the prompt's token ids, and the greedy continuation (so every step's most likely
token agrees along the way). Exits non-zero on a mismatch.
"""
import json
import pathlib
import subprocess
import sys

import torch
from transformers import GPT2LMHeadModel, GPT2TokenizerFast

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY = ROOT / ".build" / "release" / "attention"
PROMPTS = ["ROMEO.", "To be, or not to be", "KING.\nWhat say you, my lord?"]
NEW_TOKENS = 40


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = sys.argv[1]
    model = GPT2LMHeadModel.from_pretrained(folder).eval()
    tokenizer = GPT2TokenizerFast.from_pretrained(folder)
    history = json.loads((pathlib.Path(folder) / "training.json").read_text())
    print(f"loaded {folder}: {sum(p.numel() for p in model.parameters())} parameters, vocabulary {len(tokenizer)}; "
          f"our last held-out loss {history['validation'][-1]['loss']:.4f}")
    failures = 0
    for prompt in PROMPTS:
        ours = json.loads(subprocess.run([str(BINARY), "generate", "--model-dir", folder, prompt, "--greedy", "--no-stop",
                                          "--max-tokens", str(NEW_TOKENS), "--json"],
                                         capture_output=True, text=True, check=True).stdout)
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        n = min(NEW_TOKENS, model.config.n_positions - ids.shape[1])
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
        theirs = out[0, ids.shape[1]:].tolist()
        same_prompt = ids[0].tolist() == ours["promptIds"]
        same = theirs == ours["generatedIds"]
        failures += not (same and same_prompt)
        print(f"{prompt!r}: prompt ids {'equal' if same_prompt else 'DIFFER'}, greedy continuation "
              f"{'equal' if same else 'DIFFERS'} ({len(theirs)} tokens): {tokenizer.decode(theirs)!r}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
