#!/usr/bin/env python3
"""Load test of `attention serve --model` (and of llama-server beside it): N clients x M requests.

On loopback only, bounded: 16 distinct prompts, greedy (temperature 0), `max_tokens` each. First one
stream (the 16 prompts one after another: each answer, and tokens/s), then CLIENTS threads that each
send REQUESTS requests in turn. Every answer must be complete (a finish_reason, usage counts) and, for
our server, equal to the single-stream answer of its prompt: batched decoding must not change a greedy
answer. Prints a table: tokens/s at one stream and at CLIENTS streams, their ratio, and answers that
differ from the single stream. Exits 1 if one of our answers is lost, incomplete or different.

    scripts/serve-load.py                                   # ours, SmolLM2 Q4_1, 8 x 16
    scripts/serve-load.py --peer ~/.cache/llamacpp-peer/llama-server   # and llama-server -np 8 -cb, same file
    scripts/serve-load.py --temperature 1                   # OpenAI's default sampling instead of greedy

The peer is built by ../shared/tools/llamacpp-peer.sh with LLAMA_SERVER=1. Name the CPU with the figures.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

DEFAULT_MODEL = os.path.expanduser("~/.cache/swift-attention/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
TOPICS = ["the sea", "a mountain village", "the history of printing", "how bees make honey", "a rainy morning in Paris",
          "the first computers", "a chess game", "why the sky is blue", "a recipe for bread", "the planets of the solar system",
          "a train journey", "learning a new language", "the life of a tree", "an old lighthouse", "the invention of the telephone",
          "a quiet library"]
PROMPTS = [f"Here is a short story about {topic}:" for topic in TOPICS]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base, process, seconds=180):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited ({process.returncode}) before it answered")
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    sys.exit("the server did not answer /health in time")


# The sampling every request asks for: greedy unless --temperature (then with a fixed seed, so that a
# request draws the same way alone and among others, up to the products' rounding).
SAMPLING = {"temperature": 0}


def complete(base, prompt, max_tokens):
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, **SAMPLING}).encode()
    request = urllib.request.Request(base + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        answer = json.load(response)
    choice = answer["choices"][0]
    return choice["text"], choice.get("finish_reason"), answer["usage"]["completion_tokens"]


def run_load(base, clients, requests, max_tokens):
    single, tokens, start = {}, 0, time.time()
    for prompt in PROMPTS:
        text, reason, n = complete(base, prompt, max_tokens)
        single[prompt] = text
        tokens += n
    one_stream = tokens / (time.time() - start)

    results, errors = [], []
    lock = threading.Lock()

    def client(c):
        for r in range(requests):
            prompt = PROMPTS[(c + r) % len(PROMPTS)]
            try:
                text, reason, n = complete(base, prompt, max_tokens)
                with lock:
                    results.append((prompt, text, reason, n))
            except Exception as error:      # noqa: BLE001 - every failure is counted and shown
                with lock:
                    errors.append(f"client {c} request {r}: {error}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.time() - start
    many = sum(n for _, _, _, n in results) / seconds
    incomplete = [r for r in results if r[2] not in ("stop", "length")]
    different = [r for r in results if r[1] != single[r[0]]]
    return one_stream, many, len(results), errors, incomplete, different


def serve(command, base):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(base, process)
    return process


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attention", default=".build/release/attention")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kv-dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                        help="our slots' KV cache storage (llama-server keeps its default, f16)")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="sample at this temperature (seed 7) instead of greedily; answers that differ from one stream "
                             "are then counted but do not fail the run (batched products round differently)")
    parser.add_argument("--peer", help="a llama-server binary, run with -np CLIENTS -cb on the same file")
    args = parser.parse_args()
    if args.temperature > 0:
        SAMPLING.update(temperature=args.temperature, seed=7)
    if not (1 <= args.clients <= 64 and 1 <= args.requests <= 64 and 1 <= args.max_tokens <= 512):
        sys.exit("--clients and --requests must be in 1...64, --max-tokens in 1...512")
    servers = [("attention serve", [args.attention, "serve", "--model", args.model, "--slots", str(args.clients),
                                    "--threads", str(args.threads), "--context", "512", "--kv-dtype", args.kv_dtype])]
    if args.peer:
        servers.append(("llama-server", [args.peer, "-m", args.model, "-t", str(args.threads), "-np", str(args.clients), "-cb",
                                         "-c", str(512 * args.clients)]))
    rows, failed = [], False
    for name, command in servers:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = command + ["--port", str(port)] + (["--host", "127.0.0.1"] if name == "llama-server" else [])
        process = serve(command, base)
        try:
            one, many, done, errors, incomplete, different = run_load(base, args.clients, args.requests, args.max_tokens)
        finally:
            process.terminate()
            process.wait(timeout=30)
        rows.append((name, one, many, done, errors, incomplete, different))
        for error in errors[:5]:
            print(f"{name}: {error}", file=sys.stderr)
        if name == "attention serve" and (errors or incomplete or (different and args.temperature == 0)
                                          or done != args.clients * args.requests):
            failed = True
    print(f"\n{args.clients} clients x {args.requests} requests, {args.max_tokens} tokens each, "
          f"{'greedy' if args.temperature == 0 else f'temperature {args.temperature}'}, {args.threads} threads, "
          f"our KV cache {args.kv_dtype}")
    print("| server | 1 stream tok/s | %d streams tok/s | ratio | answers | differ from 1 stream |" % args.clients)
    print("|---|---|---|---|---|---|")
    for name, one, many, done, errors, incomplete, different in rows:
        print(f"| {name} | {one:.1f} | {many:.1f} | {many / one:.2f}x | {done - len(incomplete)}/{args.clients * args.requests} | {len(different)} |")
    if len(rows) == 2:
        print(f"\nours / llama-server at {args.clients} streams: {rows[0][2] / rows[1][2]:.2f}x")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
