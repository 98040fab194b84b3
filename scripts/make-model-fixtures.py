#!/usr/bin/env python3
"""Regenerate the real-model fixtures under Tests/Fixtures/model (committed; CI never runs this).

    swift run -c release attention model fetch        # the model, where the tests look for it
    python3 -m venv .venv && .venv/bin/pip install torch numpy sentence-transformers transformers
    .venv/bin/python scripts/make-model-fixtures.py [--model-dir DIR]

Writes
  tokens.json      the model's own tokenizer (transformers' fast BertTokenizer) on sentences with
                   punctuation, accents, numbers, unknown words, CJK and a long input, truncated at 256
                   tokens as sentence-transformers does;
  embeddings.npy   sentence-transformers' embeddings of `embeddingSentences` (one batch, so padding
                   is exercised), float32 [S, 384];
  attentions.npy   transformers' output_attentions for `attentionSentence` (eager attention),
                   float32 [layers, heads, T, T].
"""
import argparse
import json
import os
import pathlib

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "model"

TOKEN_SENTENCES = [
    "The cat sat on the mat.",
    "The cat sat on the mat because it was tired",
    "Hello, world! How's it going?? (fine)",
    "Café naïve résumé — Zürich, São Paulo, Ångström",
    "In 2026, 3.14159 × 42 = 131.95 and 1,000,000 > 999_999",
    "Unbelievably antidisestablishmentarianism xylophonist qwertyuiopasdf",
    "東京は日本の首都です and 北京 is in China",
    "emoji 🙂 and symbols ©®™ and tabs\tand\nnewlines",
    "UPPER lower MiXeD",
    "",
    " ".join(["attention is a weighted average of the values"] * 40),
]
EMBEDDING_SENTENCES = [
    "The cat sat on the mat",
    "A cat was sitting on a rug",
    "Attention is a weighted average whose weights come from the content.",
    "I went to the bank to deposit money.",
    "We fished by the bank of the river.",
]
ATTENTION_SENTENCE = "The cat sat on the mat because it was tired"


def main():
    parser = argparse.ArgumentParser()
    default = os.environ.get("ATTENTION_MODEL_DIR") or str(pathlib.Path.home() / ".cache/swift-attention/all-MiniLM-L6-v2")
    parser.add_argument("--model-dir", default=default)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    ids = [tokenizer(s, truncation=True, max_length=256)["input_ids"] for s in TOKEN_SENTENCES]

    st = SentenceTransformer(args.model_dir, device="cpu")
    embeddings = st.encode(EMBEDDING_SENTENCES, batch_size=len(EMBEDDING_SENTENCES), convert_to_numpy=True)
    np.save(OUT / "embeddings.npy", embeddings.astype(np.float32))

    model = AutoModel.from_pretrained(args.model_dir, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        encoded = tokenizer(ATTENTION_SENTENCE, return_tensors="pt")
        attentions = model(**encoded, output_attentions=True).attentions
    stacked = torch.stack([a[0] for a in attentions]).numpy().astype(np.float32)
    np.save(OUT / "attentions.npy", stacked)

    (OUT / "tokens.json").write_text(json.dumps({
        "sentences": TOKEN_SENTENCES, "ids": ids,
        "embeddingSentences": EMBEDDING_SENTENCES,
        "attentionSentence": ATTENTION_SENTENCE, "attentionIds": encoded["input_ids"][0].tolist(),
    }, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {OUT}: {len(ids)} tokenized sentences, embeddings {embeddings.shape}, attentions {stacked.shape}")


if __name__ == "__main__":
    main()
