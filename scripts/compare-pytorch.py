#!/usr/bin/env python3
"""Time PyTorch's CPU scaled_dot_product_attention and `attention bench` on the same shapes, in one
run, interleaved, and print the speed ratio per shape.

    python3 -m venv .venv && .venv/bin/pip install torch numpy
    .venv/bin/python scripts/compare-pytorch.py [--threads 2] [--repeat 5] [--rounds 2] [--quick]

Both sides: float32, forward only, no autograd, the same thread count, random normal inputs, the
median of `--repeat` calls after a warm-up call. Each shape is measured `--rounds` times, alternating
PyTorch and ours, and the best median of each side is kept, so a burst of noise on this shared machine
hurts neither side alone. GFLOP/s count 4·D flops per visible (query, key) pair per head (causal: the
lower triangle). The multiply-add peak is the one `attention bench` probes in the same run.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parent.parent

SHAPES = [  # (B, Hq, Hkv, Nq, Nk, D, causal)
    *[(1, 8, 8, n, n, 64, False) for n in (512, 1024, 2048, 4096, 8192)],
    *[(1, 8, 8, n, n, 64, True) for n in (512, 1024, 2048, 4096, 8192)],
    (1, 8, 8, 2048, 2048, 128, False),
    (4, 8, 8, 512, 512, 64, False),
    (1, 32, 8, 1, 32768, 128, False),
]


def visible_pairs(nq, nk, causal):
    if not causal:
        return nq * nk
    return sum(min(nk, max(0, i + nk - nq + 1)) for i in range(nq))


def torch_backward_median(b, hq, hkv, nq, nk, d, causal, repeat):
    """Forward + backward through autograd (what training runs)."""
    q = torch.randn(b, hq, nq, d, requires_grad=True)
    k = torch.randn(b, hkv, nk, d, requires_grad=True)
    v = torch.randn(b, hkv, nk, d, requires_grad=True)
    grad = torch.randn(b, hq, nq, d)
    kwargs = {"enable_gqa": hq != hkv, "is_causal": causal}
    times = []
    for trial in range(repeat + 1):
        start = time.perf_counter()
        F.scaled_dot_product_attention(q, k, v, **kwargs).backward(grad)
        if trial > 0:
            times.append(time.perf_counter() - start)
        q.grad = k.grad = v.grad = None
    return sorted(times)[len(times) // 2]


def torch_median(b, hq, hkv, nq, nk, d, causal, repeat):
    q = torch.randn(b, hq, nq, d)
    k = torch.randn(b, hkv, nk, d)
    v = torch.randn(b, hkv, nk, d)
    kwargs = {"enable_gqa": hq != hkv, "is_causal": causal}
    with torch.no_grad():
        F.scaled_dot_product_attention(q, k, v, **kwargs)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            F.scaled_dot_product_attention(q, k, v, **kwargs)
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def torch_decode_median(hq, hkv, nk, d, dtype, repeat):
    """One decoding step: one query per head against nk cached keys and values of `dtype`."""
    q = torch.randn(1, hq, 1, d).to(dtype)
    k = torch.randn(1, hkv, nk, d).to(dtype)
    v = torch.randn(1, hkv, nk, d).to(dtype)
    with torch.no_grad():
        F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def ours(binary, b, hq, hkv, nq, nk, d, causal, repeat, threads, backward=False, implementation="automatic",
         kv_dtype=None):
    command = [str(binary), "bench", "--batch", str(b), "--heads", str(hq), "--kv-heads", str(hkv),
               "--seq", str(nk), "--query-len", str(nq), "--dim", str(d), "--repeat", str(repeat),
               "--threads", str(threads), "--implementation", implementation, "--json"] + (["--causal"] if causal else []) + (["--backward"] if backward else [])
    if kv_dtype:
        command += ["--kv-dtype", kv_dtype]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="skip N = 8192")
    parser.add_argument("--implementation", default="automatic",
                        help="our kernel: automatic (the best this CPU runs), avx512, avx2 or portable")
    parser.add_argument("--backward", action="store_true",
                        help="also compare forward + backward against PyTorch autograd (B=1, H=8, D=64, N=2048)")
    parser.add_argument("--decode", action="store_true",
                        help="also compare decoding (32 query heads over 8 KV heads, D=128) with our KV cache in "
                             "float32 and float16 against PyTorch SDPA on float32 and on float16 tensors")
    parser.add_argument("--embeddings", action="store_true",
                        help="also compare all-MiniLM-L6-v2 sentence embeddings with sentence-transformers "
                             "(needs `attention model fetch` and pip install sentence-transformers)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    subprocess.run(["swift", "build", "-c", "release", "--product", "attention"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    binary = ROOT / ".build" / "release" / "attention"

    probe = ours(binary, 1, 1, 1, 32, 32, 16, False, 1, args.threads, implementation=args.implementation)
    print(f"PyTorch {torch.__version__}, {args.threads} threads, float32 forward; ours on {probe['instructionSet']}"
          f" (% peak: of that instruction set's FMA peak, probed in each run); ratio = PyTorch time / ours")
    header = f"{'B':>2} {'Hq':>3} {'Hkv':>3} {'Nq':>5} {'Nk':>6} {'D':>4} {'causal':>6} | {'PyTorch ms':>10} {'GFLOP/s':>8} | {'ours ms':>9} {'GFLOP/s':>8} {'% peak':>6} | {'ratio':>5}"
    print(header)
    print("-" * len(header))
    ratios = []
    for (b, hq, hkv, nq, nk, d, causal) in SHAPES:
        if args.quick and nk == 8192:
            continue
        theirs, mine, peak = [], [], []
        for _ in range(args.rounds):
            theirs.append(torch_median(b, hq, hkv, nq, nk, d, causal, args.repeat))
            result = ours(binary, b, hq, hkv, nq, nk, d, causal, args.repeat, args.threads, implementation=args.implementation)
            mine.append(result["medianSeconds"])
            peak.append(result["peakGflops"])
        t, m = min(theirs), min(mine)
        flops = 4 * b * hq * visible_pairs(nq, nk, causal) * d
        ratio = t / m
        ratios.append(ratio)
        print(f"{b:>2} {hq:>3} {hkv:>3} {nq:>5} {nk:>6} {d:>4} {str(causal):>6} | {t * 1e3:>10.2f} {flops / t / 1e9:>8.1f} |"
              f" {m * 1e3:>9.2f} {flops / m / 1e9:>8.1f} {100 * flops / m / 1e9 / max(peak):>6.1f} | {ratio:>5.2f}")
        sys.stdout.flush()
    print(f"smallest ratio {min(ratios):.2f}, geometric mean {torch.tensor(ratios).log().mean().exp().item():.2f}")
    if args.backward:
        for causal in (False, True):
            theirs = min(torch_backward_median(1, 8, 8, 2048, 2048, 64, causal, args.repeat) for _ in range(args.rounds))
            runs = [ours(binary, 1, 8, 8, 2048, 2048, 64, causal, args.repeat, args.threads, backward=True,
                         implementation=args.implementation) for _ in range(args.rounds)]
            best = min(runs, key=lambda run: run["medianSeconds"])
            mine = best["medianSeconds"]
            # 14·D flops per visible pair (the forward's 4·D, the backward's five products' 10·D), as bench counts.
            flops = 8 * visible_pairs(2048, 2048, causal) * 14 * 64
            print(f"forward + backward, B=1 H=8 N=2048 D=64{' causal' if causal else ''}: PyTorch {theirs * 1e3:.1f} ms"
                  f" ({flops / theirs / 1e9:.1f} GFLOP/s), ours {mine * 1e3:.1f} ms ({flops / mine / 1e9:.1f} GFLOP/s,"
                  f" {best['percentOfPeak']:.1f}% of peak), ratio {theirs / mine:.2f}")
    if args.decode:
        compare_decode(binary, args)
    if args.embeddings:
        compare_embeddings(binary, args)


def compare_decode(binary, args):
    """Decoding is memory-bound: GB/s of keys and values read, against the read bandwidth our bench probes."""
    print(f"\ndecoding, 32 query heads over 8 KV heads, D=128, one query; GB/s = bytes of K and V read per second")
    header = f"{'Nk':>6} {'cache':>8} | {'PyTorch f32 ms':>14} {'PyTorch f16 ms':>14} | {'ours ms':>8} {'GB/s':>6} {'% bw':>5} | {'vs f32':>6} {'vs f16':>6}"
    print(header)
    print("-" * len(header))
    for nk in (8192, 65536):
        for storage, dtype in (("float32", torch.float32), ("float16", torch.float16)):
            f32, f16, mine, share, rate = [], [], [], [], []
            for _ in range(args.rounds):
                f32.append(torch_decode_median(32, 8, nk, 128, torch.float32, args.repeat))
                f16.append(torch_decode_median(32, 8, nk, 128, torch.float16, args.repeat))
                result = ours(binary, 1, 32, 8, 1, nk, 128, False, args.repeat, args.threads,
                              implementation=args.implementation, kv_dtype=storage)
                mine.append(result["medianSeconds"])
                rate.append(result["gigabytesPerSecond"])
                share.append(result["percentOfBandwidth"])
            m = min(mine)
            print(f"{nk:>6} {storage:>8} | {min(f32) * 1e3:>14.2f} {min(f16) * 1e3:>14.2f} | {m * 1e3:>8.2f} {max(rate):>6.1f}"
                  f" {max(share):>5.1f} | {min(f32) / m:>6.2f} {min(f16) / m:>6.2f}")
            sys.stdout.flush()


def compare_embeddings(binary, args, batch=32):
    """Sentences per second for a batch of 32 sentences of about 16 tokens, and for one of 32 sentences
    of 8 to 128 tokens (`bench --mixed-lengths`' batch), interleaved rounds."""
    import os
    from sentence_transformers import SentenceTransformer
    directory = os.environ.get("ATTENTION_MODEL_DIR") or str(pathlib.Path.home() / ".cache/swift-attention/all-MiniLM-L6-v2")
    model = SentenceTransformer(directory, device="cpu")
    uniform = [f"Sentence number {i} tells how a small cat sat on the warm mat today" for i in range(batch)]
    # As `bench --mixed-lengths`: sentence i is 6 + 120·i/(batch-1) times "cat", [CLS] and [SEP] around.
    mixed = [" ".join(["cat"] * (6 + 120 * i // (batch - 1))) for i in range(batch)]
    print()
    for sentences, flags, name in [(uniform, [], "about 16 tokens"), (mixed, ["--mixed-lengths"], "8 to 128 tokens")]:
        theirs, mine = [], []
        for _ in range(args.rounds):
            model.encode(sentences, batch_size=batch)
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                model.encode(sentences, batch_size=batch)
                times.append(time.perf_counter() - start)
            theirs.append(sorted(times)[len(times) // 2])
            result = json.loads(subprocess.run([str(binary), "bench", "--embed-batch", str(batch), *flags, "--repeat", str(args.repeat),
                                                "--threads", str(args.threads), "--json"],
                                               check=True, capture_output=True, text=True).stdout)
            mine.append((result["medianSeconds"], result["percentOfPeak"]))
        t, (m, share) = min(theirs), min(mine)
        print(f"all-MiniLM-L6-v2 embeddings, a batch of {batch} sentences of {name}: sentence-transformers {batch / t:.1f}/s,"
              f" ours {batch / m:.1f}/s ({share:.1f}% of peak), ratio {t / m:.2f}")


if __name__ == "__main__":
    main()
