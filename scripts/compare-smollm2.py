#!/usr/bin/env python3
"""SmolLM2-135M-Instruct (or Gemma 3 270M) from its GGUF file: `attention generate` against transformers
and llama.cpp, in one run.

    swift build -c release --product attention
    swift run -c release attention model fetch smollm2     # or gemma3
    python3 -m venv .venv && .venv/bin/pip install numpy gguf torch transformers accelerate
    .venv/bin/python scripts/compare-smollm2.py [--model smollm2|gemma3] [--threads 2] [--rounds 3] [--llama-bench PATH]
                                                [--precision int8|float32]

Each round, interleaved, on the same file and thread count:
  - ours: `attention generate --model FILE --precision P --json` processes (model load excluded from the rates
    it reports): prefill of prompts of 64 and 512 tokens, and 64 greedy tokens decoded after a
    one-token prompt, as llama-bench's tg64 does;
  - transformers: LlamaForCausalLM loaded from the same file (dequantized to float32), a forward
    over the same prompts, and 64 steps through its cache;
  - llama.cpp, if a llama-bench binary is given (--llama-bench or $LLAMA_BENCH; it is not built
    by this repository): `llama-bench -m FILE -t T -p 64,512 -n 64 -r 1 -o json`.
Medians over the rounds. The shares: prefill GFLOP/s (2 flops per weight of the layers per token,
the output head's once for the last token, whose logits are all a prefill needs, plus the causal
attention products) of the multiply-add peak `attention bench` probes; decode bytes per
token (every weight tensor of the file read once, the tied embedding as the output head, plus the
keys and values so far) times tokens/s, of the read bandwidth it probes.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY = ROOT / ".build" / "release" / "attention"
# The installed models: file name, folder variable, default folder.
MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf", "ATTENTION_SMOLLM2_DIR", "SmolLM2-135M-Instruct"),
    "gemma3": ("gemma-3-270m-q4_k_m.gguf", "ATTENTION_GEMMA3_DIR", "gemma-3-270m"),
}
TEXT = ("Attention is a weighted average whose weights are computed from content: every query "
        "compares itself with every key, and the softmax of those scores mixes the values. ")


def probe(threads):
    """(FMA peak GFLOP/s, read bandwidth GB/s) as `attention bench` probes them."""
    def bench(extra):
        out = subprocess.run([str(BINARY), "bench", "--heads", "8", "--dim", "64", "--repeat", "1",
                              "--threads", str(threads), "--json"] + extra, capture_output=True, text=True, check=True).stdout
        return json.loads(out)
    return (bench(["--seq", "512"])["peakGflops"],
            bench(["--seq", "1024", "--query-len", "1", "--kv-dtype", "float32"])["bandwidthGigabytesPerSecond"])


def products(precision):
    """What our quantized products run on under `precision`: float32, or int8 and its instructions."""
    if precision == "float32":
        return "float32"
    out = subprocess.run([str(BINARY), "bench", "--linear", "1x32x16", "--weights", "q4_1", "--repeat", "1", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["products"]


def ours(model, text, new_tokens, threads, precision):
    out = subprocess.run([str(BINARY), "generate", "--model", str(model), text, "--greedy", "--no-stop",
                          "--max-tokens", str(new_tokens), "--threads", str(threads), "--precision", precision, "--json"],
                         capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    return len(report["promptIds"]), report["promptTokensPerSecond"], report["generatedTokensPerSecond"]


def theirs_prefill(model, ids):
    with torch.no_grad():
        start = time.perf_counter()
        model(torch.tensor([ids]), use_cache=False)
        return len(ids) / (time.perf_counter() - start)


def theirs_decode(model, first, steps):
    with torch.no_grad():
        out = model(torch.tensor([[first]]), use_cache=True)
        past, token = out.past_key_values, int(out.logits[0, -1].argmax())
        start = time.perf_counter()
        for _ in range(steps):
            out = model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
            past, token = out.past_key_values, int(out.logits[0, -1].argmax())
        return steps / (time.perf_counter() - start)


def llama_cpp(binary, model, threads, lengths, new_tokens):
    out = subprocess.run([binary, "-m", str(model), "-t", str(threads), "-p", ",".join(map(str, lengths)),
                          "-n", str(new_tokens), "-r", "1", "-o", "json"], capture_output=True, text=True, check=True).stdout
    rates = {}
    for entry in json.loads(out):
        key = ("prefill", entry["n_prompt"]) if entry["n_gen"] == 0 else ("decode", entry["n_gen"])
        rates[key] = entry["avg_ts"]
    return rates


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-lengths", default="64,512")
    parser.add_argument("--model", choices=sorted(MODELS), default="smollm2")
    parser.add_argument("--model-dir", help="default: the model's folder as `attention model fetch` installs it")
    parser.add_argument("--llama-bench", default=os.environ.get("LLAMA_BENCH") or shutil.which("llama-bench"))
    parser.add_argument("--precision", choices=["int8", "float32"], default="int8",
                        help="how our products with block-quantized weights compute (attention generate --precision)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    FILE, variable, name = MODELS[args.model]
    folder = pathlib.Path(args.model_dir or os.environ.get(variable) or pathlib.Path.home() / ".cache/swift-attention" / name)
    model_file = folder / FILE
    lengths = [int(n) for n in args.prompt_lengths.split(",")]

    from transformers import AutoModelForCausalLM, AutoTokenizer
    import gguf
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=FILE)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=FILE, dtype=torch.float32).eval()
    c = model.config
    reader = gguf.GGUFReader(str(model_file))
    weight_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    head_weights = c.vocab_size * c.hidden_size             # the output head (tied or not)
    matrix_weights = sum(int(t.n_elements) for t in reader.tensors
                         if len(t.shape) == 2 and t.name not in ("token_embd.weight", "output.weight"))
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads

    def prefill_flops(n):
        attention = c.num_hidden_layers * c.num_attention_heads * 2 * 2 * head_dim * n * (n + 1) / 2
        return 2 * matrix_weights * n + 2 * head_weights + attention

    def decode_bytes(position):
        return weight_bytes + 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim * 4 * position

    whole = tokenizer.encode(TEXT * 64, add_special_tokens=False)
    prompts = {n: tokenizer.decode(whole[:n]) for n in lengths}
    first = tokenizer.encode("The", add_special_tokens=False)[0]
    results = {("prefill", n): {"ours": [], "transformers": [], "llama.cpp": []} for n in lengths}
    results[("decode", args.new_tokens)] = {"ours": [], "transformers": [], "llama.cpp": []}
    peaks, bandwidths = [], []
    for _ in range(args.rounds):
        peak, bandwidth = probe(args.threads)
        peaks.append(peak)
        bandwidths.append(bandwidth)
        for n in lengths:
            count, rate, _ = ours(model_file, prompts[n], 1, args.threads, args.precision)
            results[("prefill", n)]["ours"].append(rate)
            results[("prefill", n)]["transformers"].append(theirs_prefill(model, tokenizer.encode(prompts[n], add_special_tokens=False)))
        _, _, rate = ours(model_file, "The", args.new_tokens + 1, args.threads, args.precision)
        results[("decode", args.new_tokens)]["ours"].append(rate)
        results[("decode", args.new_tokens)]["transformers"].append(theirs_decode(model, first, args.new_tokens))
        if args.llama_bench:
            for key, rate in llama_cpp(args.llama_bench, model_file, args.threads, lengths, args.new_tokens).items():
                if key in results:
                    results[key]["llama.cpp"].append(rate)

    peak, bandwidth = statistics.median(peaks), statistics.median(bandwidths)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "unknown CPU")
    print(f"{FILE} on {cpu}, {args.threads} threads, medians of {args.rounds} rounds; "
          f"probed: {peak:.1f} GFLOP/s FMA peak, {bandwidth:.1f} GB/s read; our products: {products(args.precision)}")
    print(f"{'':>12} | {'ours tok/s':>10} {'share':>6} | {'transformers':>12} | {'llama.cpp':>9} | {'ours/llama.cpp':>14} {'ours/transformers':>17}")
    for (kind, n), rates in results.items():
        mine = statistics.median(rates["ours"])
        theirs = statistics.median(rates["transformers"])
        llama = statistics.median(rates["llama.cpp"]) if rates["llama.cpp"] else None
        if kind == "prefill":
            share = f"{100 * mine * prefill_flops(n) / n / 1e9 / peak:5.1f}%"
        else:
            share = f"{100 * mine * decode_bytes(n / 2) / 1e9 / bandwidth:5.1f}%"
        label = f"{kind} {n}" if kind == "prefill" else f"decode {n}"
        print(f"{label:>12} | {mine:>10.1f} {share:>6} | {theirs:>12.1f} | "
              + (f"{llama:>9.1f} | {mine / llama:>14.2f}" if llama else f"{'-':>9} | {'-':>14}")
              + f" {mine / theirs:>17.2f}")
    print("share: prefill of the FMA peak, decode of the read bandwidth (weights and cache read per token)")


if __name__ == "__main__":
    main()
