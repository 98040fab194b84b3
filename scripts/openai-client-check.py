#!/usr/bin/env python3
"""OpenAI's official Python client (PyPI `openai`) drives `attention serve --model` unchanged.

Starts the server on a free loopback port with an API key, then, through the client only:
lists the model; asks for a chat completion and a text completion, whole and streamed (the
streamed pieces must add up to the whole answer, greedy); checks `usage`, `finish_reason`, a stop
string; and that the client raises its own error types for a bad field (400), another model (404)
and a wrong key (401). Exits 1 on the first failure. CI runs it (`.ci/run`), with the client
installed by pip into .build/openai-client.

    python3 -m pip install --target .build/openai-client openai
    PYTHONPATH=.build/openai-client scripts/openai-client-check.py --attention .build/release/attention
"""
import argparse
import os
import subprocess
import sys
import time

import openai

DEFAULT_MODEL = os.path.expanduser("~/.cache/swift-attention/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")


def check(condition, message):
    if not condition:
        print(f"FAIL: {message}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {message}")


def start(attention, model, key):
    server = subprocess.Popen([attention, "serve", "--model", model, "--port", "0", "--api-key", key, "--slots", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        if line.startswith("OpenAI API at "):
            return server, line.split()[3]
    server.kill()
    sys.exit(f"FAIL: the server did not print its API address (exit {server.poll()})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attention", default=".build/release/attention")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args()
    server, base = start(args.attention, args.model, "sesame")
    try:
        client = openai.OpenAI(base_url=base.rstrip("/"), api_key="sesame", max_retries=0, timeout=120)
        models = [m.id for m in client.models.list()]
        check(len(models) == 1, f"one model listed: {models}")
        name = models[0]

        messages = [{"role": "user", "content": "What is the capital of France?"}]
        whole = client.chat.completions.create(model=name, messages=messages, max_tokens=24, temperature=0)
        text = whole.choices[0].message.content
        check(whole.object == "chat.completion" and whole.choices[0].message.role == "assistant" and text,
              f"chat completion: {text!r}")
        check(whole.choices[0].finish_reason in ("stop", "length"), f"finish_reason {whole.choices[0].finish_reason}")
        usage = whole.usage
        check(usage.completion_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, f"usage {usage}")

        pieces, reasons, final_usage = [], [], None
        for chunk in client.chat.completions.create(model=name, messages=messages, max_tokens=24, temperature=0, stream=True,
                                                    stream_options={"include_usage": True}):
            if chunk.usage:
                final_usage = chunk.usage
            for choice in chunk.choices:
                pieces.append(choice.delta.content or "")
                if choice.finish_reason:
                    reasons.append(choice.finish_reason)
        check("".join(pieces) == text, "the streamed chat adds up to the whole answer")
        check(reasons == [whole.choices[0].finish_reason], f"one finish_reason at the end: {reasons}")
        check(final_usage is not None and final_usage.completion_tokens == usage.completion_tokens, f"streamed usage {final_usage}")

        completion = client.completions.create(model=name, prompt="The capital of France is", max_tokens=12, temperature=0)
        continued = completion.choices[0].text
        check(completion.object == "text_completion" and continued, f"text completion: {continued!r}")
        streamed = "".join(c.choices[0].text for c in client.completions.create(
            model=name, prompt="The capital of France is", max_tokens=12, temperature=0, stream=True) if c.choices)
        check(streamed == continued, "the streamed completion adds up to the whole one")
        words = continued.split()
        if len(words) > 1:
            cut = client.completions.create(model=name, prompt="The capital of France is", max_tokens=12, temperature=0, stop=[words[1]])
            check(cut.choices[0].text == continued[:continued.index(words[1])] and cut.choices[0].finish_reason == "stop",
                  f"stop {words[1]!r}: {cut.choices[0].text!r}")

        def raises(kind, call, what):
            try:
                call()
            except kind as error:
                check(True, f"{what}: {kind.__name__} {error.status_code}")
                return
            except Exception as error:      # noqa: BLE001 - any other type is the failure being reported
                check(False, f"{what}: expected {kind.__name__}, got {type(error).__name__}: {error}")
            check(False, f"{what}: expected {kind.__name__}, got an answer")

        raises(openai.BadRequestError, lambda: client.chat.completions.create(model=name, messages=messages, max_tokens=10 ** 6),
               "max_tokens beyond the context")
        raises(openai.BadRequestError, lambda: client.chat.completions.create(model=name, messages=messages, temperature=5),
               "temperature out of range")
        raises(openai.NotFoundError, lambda: client.chat.completions.create(model="gpt-4o", messages=messages), "another model")
        wrong = openai.OpenAI(base_url=base.rstrip("/"), api_key="wrong", max_retries=0)
        raises(openai.AuthenticationError, lambda: wrong.models.list(), "a wrong API key")
        print("The openai client drives attention serve unchanged.")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
