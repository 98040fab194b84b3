#!/usr/bin/env python3
"""Regenerate the GPT-2 fixtures under Tests/Fixtures/gpt2 (committed; CI never runs this).

    python3 -m venv .venv && .venv/bin/pip install torch numpy transformers tokenizers safetensors
    .venv/bin/python scripts/make-gpt2-fixtures.py

A small GPT-2 made with the ecosystem's own tools, so the Swift side loads exactly what a user's
files look like:
  vocab.json, merges.txt   a byte-level BPE vocabulary trained with Hugging Face `tokenizers` on the
                           text below (GPT-2's pre-tokenizer and byte-to-unicode map), saved in
                           GPT-2's file format;
  config.json, model.safetensors
                           a randomly initialised `GPT2LMHeadModel` (2 layers, 4 heads, 64 wide),
                           written by `save_pretrained` (output tied to the token embedding);
  tokens.json              `GPT2TokenizerFast.from_pretrained` (reading vocab.json + merges.txt) on texts with ASCII,
                           accents, emoji, CJK, numbers, whitespace runs, contractions and punctuation,
                           and the decoded text of every id sequence;
  logits.npy               the model's logits for `LOGIT_TEXT`, float32 [T, vocab];
  generation.json          greedy `generate()` continuations of two prompts, and a training batch
                           (inputs, targets, the mean cross-entropy);
  gradients.safetensors    PyTorch autograd's gradient of that loss for every parameter, by name
                           (the tied embedding's gradient sums both of its uses).
"""
import json
import pathlib

import numpy as np
import torch
from tokenizers import ByteLevelBPETokenizer
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "gpt2"

# Training text for the vocabulary: English prose about attention, with some numbers and accents so
# that merges across several scripts exist.
CORPUS = [
    "Attention is a weighted average whose weights are computed from the content.",
    "The cat sat on the mat. The dog sat on the log. The cat and the dog sat together.",
    "Each query is compared with every key; the scores become weights through a softmax,",
    "and the output is the weighted sum of the values. Causal attention hides the future:",
    "a token may look at itself and at the tokens before it, never at those after it.",
    "GPT models generate text one token at a time, keeping the keys and values in a cache.",
    "BERT reads the whole sentence at once; its attention is not masked.",
    "In 2026 we measured 3.14159 GFLOP/s, then 271.8, then 1,000,000 tokens per second.",
    "Café, naïve, résumé, Zürich and São Paulo are words with accents.",
    "Don't panic. It's fine, they're here, we've seen it, I'm sure you'll agree, he'd know.",
] * 20
TOKEN_TEXTS = [
    "The cat sat on the mat.",
    "Hello, world! How's it going?? (fine)",
    "Café naïve résumé — Zürich, São Paulo, Ångström",
    "In 2026, 3.14159 × 42 = 131.95 and 1,000,000 > 999_999",
    "東京は日本の首都です and 北京 is in China",
    "emoji 🙂🙃 and symbols ©®™",
    "  leading spaces, trailing spaces   ",
    "tabs\tand\nnewlines\n\n  indented",
    "it's they're we've I'm you'll he'd DON'T",
    "UPPER lower MiXeD attentionattentionattention",
    "a   b    c\t\t d",
    "",
    " ",
    "<|endoftext|>",
]
LOGIT_TEXT = "The cat sat on the mat because attention is a weighted average"
PROMPTS = ["The cat", "Attention is"]
NEW_TOKENS = 24


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=600, min_frequency=2, special_tokens=["<|endoftext|>"])
    bpe.save_model(str(OUT))  # vocab.json and merges.txt
    # Loaded back from the two files alone, as a user loads GPT-2's.
    tokenizer = GPT2TokenizerFast.from_pretrained(str(OUT))

    token_cases = []
    for text in TOKEN_TEXTS:
        ids = tokenizer(text)["input_ids"]
        token_cases.append({"text": text, "ids": ids, "decoded": tokenizer.decode(ids)})

    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=64, n_layer=2, n_head=4,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = GPT2LMHeadModel(config).eval()
    # Larger weights than the default 0.02 init, so the logits (and the greedy choices) depend on
    # every part of the network rather than sitting near the uniform distribution.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.12)
            elif name.endswith("bias"):
                p.normal_(0, 0.05)
            else:
                p.normal_(1, 0.1)
    model.save_pretrained(str(OUT), safe_serialization=True)

    ids = tokenizer(LOGIT_TEXT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits[0].float().numpy()
    np.save(OUT / "logits.npy", logits.astype(np.float32))

    generations = []
    for prompt in PROMPTS:
        prompt_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(prompt_ids, max_new_tokens=NEW_TOKENS, do_sample=False, num_beams=1,
                                 pad_token_id=tokenizer.eos_token_id, eos_token_id=None)
        generations.append({"prompt": prompt, "promptIds": prompt_ids[0].tolist(),
                            "generatedIds": out[0, prompt_ids.shape[1]:].tolist()})

    # A training batch: two windows of 12 tokens, each target the next token.
    stream = tokenizer(" ".join(CORPUS[:6]))["input_ids"]
    batch = torch.tensor([stream[0:13], stream[20:33]])
    inputs, targets = batch[:, :-1], batch[:, 1:]
    batch_logits = model(inputs).logits
    loss = torch.nn.functional.cross_entropy(batch_logits.reshape(-1, batch_logits.shape[-1]), targets.reshape(-1))
    model.zero_grad()
    loss.backward()
    save_file({name: p.grad.contiguous() for name, p in model.named_parameters()}, str(OUT / "gradients.safetensors"))

    (OUT / "tokens.json").write_text(json.dumps({"cases": token_cases}, ensure_ascii=False, indent=1) + "\n")
    (OUT / "generation.json").write_text(json.dumps({
        "logitText": LOGIT_TEXT, "logitIds": ids[0].tolist(), "generations": generations,
        "trainingInputs": inputs.tolist(), "trainingTargets": targets.tolist(), "trainingLoss": loss.item()}, indent=1) + "\n")
    for stray in ["generation_config.json"]:
        (OUT / stray).unlink(missing_ok=True)
    print(f"wrote {OUT}: vocabulary {len(tokenizer)}, logits {logits.shape}")


if __name__ == "__main__":
    main()
