#!/usr/bin/env python3
"""`attention generate` against transformers' generate() on a model the size of GPT-2 small.

    swift build -c release --product attention
    python3 -m venv .venv && .venv/bin/pip install torch numpy transformers
    .venv/bin/python scripts/compare-gpt2.py [--threads 2] [--new-tokens 128] [--rounds 3]

A randomly initialised GPT2LMHeadModel (12 layers, 12 heads, 768 wide, 50,257 tokens; the weights'
values do not change the time) is written with save_pretrained into a temporary folder, with the
tokenizer files of Tests/Fixtures/gpt2 padded to 50,257 tokens. Each round, interleaved:
  - transformers: generate() alone, greedy, `--new-tokens` tokens after a short prompt, torch at
    `--threads` threads, model already loaded;
  - ours: the whole `attention generate --greedy --json` process (model load included), and the
    per-step rate it reports.
The memory bound of a step: every weight read once (the tied embedding once: all of it for the
logits, a row for the input) plus the keys and values so far, at the read bandwidth `attention bench`
probes. A greedy step of ours reads less than that: the output layer through its 8-bit screen
(Linear.largestOutputs: 34 bytes per 32 weights, then a few rows in float32), so the script also
prints the bound for the bytes it does read.
Ours runs on every core (2 here); set --threads to the machine's core count.
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "Tests" / "Fixtures" / "gpt2"
BINARY = ROOT / ".build" / "release" / "attention"
PROMPT = "The cat sat on the mat because attention is"


def read_bandwidth(threads):
    """GB/s of the read-bandwidth probe `attention bench` runs (a streaming sum over 512 MiB)."""
    out = subprocess.run([str(BINARY), "bench", "--heads", "8", "--seq", "1024", "--query-len", "1", "--dim", "64",
                          "--kv-dtype", "float32", "--repeat", "1", "--threads", str(threads), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["bandwidthGigabytesPerSecond"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    folder = pathlib.Path(tempfile.mkdtemp(prefix="gpt2-small-"))
    try:
        vocab = json.loads((FIXTURE / "vocab.json").read_text())
        size = 50257
        for n in range(len(vocab), size):
            vocab[f"<|filler{n}|>"] = n
        (folder / "vocab.json").write_text(json.dumps(vocab))
        shutil.copy(FIXTURE / "merges.txt", folder / "merges.txt")
        config = GPT2Config(vocab_size=size, n_positions=1024, n_embd=768, n_layer=12, n_head=12)
        torch.manual_seed(0)
        model = GPT2LMHeadModel(config).eval()
        model.save_pretrained(str(folder), safe_serialization=True)
        parameters = sum(p.numel() for p in model.parameters())

        from transformers import GPT2TokenizerFast
        ids = GPT2TokenizerFast.from_pretrained(str(folder))(PROMPT, return_tensors="pt")["input_ids"]
        n = args.new_tokens
        with torch.no_grad():
            model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False, pad_token_id=0)

        theirs, ours, ours_steps = [], [], []
        for _ in range(args.rounds):
            with torch.no_grad():
                t = time.perf_counter()
                out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
                theirs.append(time.perf_counter() - t)
            assert out.shape[1] == ids.shape[1] + n
            t = time.perf_counter()
            result = subprocess.run([str(BINARY), "generate", "--model-dir", str(folder), PROMPT, "--greedy", "--no-stop",
                                     "--max-tokens", str(n), "--json"], capture_output=True, text=True, check=True)
            ours.append(time.perf_counter() - t)
            report = json.loads(result.stdout)
            assert len(report["generatedIds"]) == n, report
            ours_steps.append(report["tokensPerSecond"])

        bandwidth = read_bandwidth(args.threads)
        c = config
        positions = ids.shape[1] + n
        cache_bytes = 2 * c.n_layer * positions / 2 * c.n_embd * 4      # mean over the run
        step_bytes = (parameters + c.vocab_size * c.n_embd * 0) * 4 + cache_bytes
        bound = bandwidth * 1e9 / step_bytes
        # Ours, greedy: the output layer's 16·⌊V/16⌋ screened rows in Q8_0 instead of its float32 rows.
        screened = c.vocab_size // 16 * 16
        read_bytes = step_bytes - screened * c.n_embd * 4 + screened * c.n_embd // 32 * 34
        read_bound = bandwidth * 1e9 / read_bytes
        median = lambda xs: sorted(xs)[len(xs) // 2]
        print(f"GPT-2 small shape ({parameters / 1e6:.1f}M parameters, float32), prompt {ids.shape[1]} tokens, "
              f"{n} new, greedy, {args.threads} threads, {args.rounds} rounds")
        print(f"transformers generate():        {median(theirs):7.2f} s  ({n / median(theirs):6.1f} tokens/s)")
        print(f"attention generate (process):   {median(ours):7.2f} s  -> {median(theirs) / median(ours):.2f}x")
        print(f"ours per step:                  {median(ours_steps):7.1f} tokens/s; memory bound {bound:.1f} tokens/s "
              f"({step_bytes / 1e6:.0f} MB per step at {bandwidth:.1f} GB/s) -> {bound / median(ours_steps):.2f}x of the bound")
        print(f"                                what our step reads: {read_bytes / 1e6:.0f} MB (output layer screened in "
              f"8 bits), bound {read_bound:.1f} tokens/s -> {read_bound / median(ours_steps):.2f}x of it")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
