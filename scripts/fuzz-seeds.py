#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs into Fuzz/corpus/TARGET/ (committed; rerun to regenerate).

    .venv/bin/python scripts/fuzz-seeds.py

Seeds are small valid inputs of every kind a target reads, plus the edge cases hand-picked from the
bugs fuzzing is meant to find (huge or negative extents, overflowing sizes, NaN and 1e19 weights),
so that libFuzzer starts past the magic numbers and the structure instead of discovering them.
"""
import io
import json
import pathlib
import struct

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent / "Fuzz" / "corpus"


def write(target, name, data):
    folder = ROOT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def npy(array, version=None):
    out = io.BytesIO()
    if version:
        np.lib.format.write_array(out, array, version=version)
    else:
        np.save(out, array)
    return out.getvalue()


def npy_header(descr, shape):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()


def safetensors(tensors, metadata=None, header_override=None):
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header_override if header_override is not None else header).encode()
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


rng = np.random.default_rng(0)
# .npy: each dtype, versions 1-3, scalars, empty and high-rank arrays, and hostile headers.
write("npy", "f4-2d", npy(rng.standard_normal((3, 4)).astype(np.float32)))
write("npy", "f8-1d", npy(rng.standard_normal(5)))
write("npy", "bool", npy(np.array([[True, False], [False, True]])))
write("npy", "scalar", npy(np.float32(1.5)))
write("npy", "empty", npy(np.zeros((0, 3), np.float32)))
write("npy", "v2", npy(np.ones((2, 2), np.float32), version=(2, 0)))
write("npy", "v3", npy(np.ones(3, np.float64), version=(3, 0)))
write("npy", "rank6", npy(np.zeros((1, 1, 2, 1, 1, 2), np.float32)))
write("npy", "nan-inf", npy(np.array([np.nan, np.inf, -np.inf, 1e19, -0.0], np.float32)))
write("npy", "huge-shape", npy_header("<f4", "(4611686018427387904,)"))
write("npy", "overflow-shape", npy_header("<f8", "(4294967296, 4294967296)"))
write("npy", "negative-shape", npy_header("<f4", "(-1, 2)"))
write("npy", "fortran", npy(np.asfortranarray(np.ones((2, 3), np.float32))))
write("npy", "big-endian", npy(np.ones(2, ">f4")))

# .safetensors: each dtype, metadata, empty tensors, and hostile headers.
f32 = np.arange(6, dtype=np.float32)
write("safetensors", "f32", safetensors({"w": ("F32", [2, 3], f32.tobytes())}))
write("safetensors", "mixed", safetensors({
    "a": ("F16", [2], np.array([1, -2], np.float16).tobytes()),
    "b": ("BF16", [1], b"\x80\x3f"),
    "c": ("F64", [1, 1], np.array([3.0]).tobytes()),
    "d": ("I64", [1], np.array([7], np.int64).tobytes()),
}, metadata={"format": "pt"}))
write("safetensors", "empty-tensor", safetensors({"e": ("F32", [0, 4], b"")}))
write("safetensors", "huge-shape", safetensors({}, header_override={"x": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 0]}}))
write("safetensors", "overlap", safetensors({}, header_override={
    "x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "y": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}) + bytes(12))
write("safetensors", "negative", safetensors({}, header_override={"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}) + bytes(4))
write("safetensors", "header-too-long", struct.pack("<Q", 1 << 62) + b"{}")

# GGUF: each value and tensor type, nested arrays, a custom alignment, and hostile counts and offsets.
def gguf_string(text):
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def gguf_file(metadata=b"", metadata_count=0, tensors=(), data=b"", alignment=32, version=3, tensor_count=None):
    """metadata: encoded pairs; tensors: (name, dimensions innermost first, type, offset)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if tensor_count is None else tensor_count, metadata_count) + metadata
    for name, dims, kind, offset in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", kind, offset)
    return out + bytes(-len(out) % alignment) + data


every_value = b"".join([
    gguf_string("u8") + struct.pack("<IB", 0, 200), gguf_string("i16") + struct.pack("<Ih", 3, -3),
    gguf_string("f32") + struct.pack("<If", 6, 0.5), gguf_string("bool") + struct.pack("<IB", 7, 1),
    gguf_string("s") + struct.pack("<I", 8) + gguf_string("héllo"), gguf_string("u64") + struct.pack("<IQ", 10, 2**64 - 1),
    gguf_string("f64") + struct.pack("<Id", 12, -1e308),
    gguf_string("strings") + struct.pack("<IIQ", 9, 8, 2) + gguf_string("a") + gguf_string("Ġb"),
    gguf_string("nested") + struct.pack("<IIQ", 9, 9, 1) + struct.pack("<IQi", 5, 1, -7),
])
write("gguf", "every-value", gguf_file(every_value, 9))
q4_1 = struct.pack("<ee", 0.5, -1.0) + bytes(range(16))
q8_0 = struct.pack("<e", 0.25) + bytes(range(32))
q5_0 = struct.pack("<eI", 1.0, 0x000100FF) + bytes(range(16))
write("gguf", "every-tensor", gguf_file(tensors=[
    ("f32", [2, 2], 0, 0), ("f16", [3], 1, 32), ("bf16", [2], 30, 64), ("q4_1", [32], 3, 96),
    ("q8_0", [32], 8, 128), ("q5_0", [32], 6, 192), ("q6_k", [256], 14, 224)],
    data=np.arange(4, dtype=np.float32).tobytes() + bytes(16) + np.ones(3, np.float16).tobytes() + bytes(26)
    + b"\x80\x3f\x00\x40" + bytes(28) + q4_1 + bytes(12) + q8_0 + bytes(30) + q5_0 + bytes(10) + bytes(210)))
alignment = gguf_string("general.alignment") + struct.pack("<II", 4, 64)
write("gguf", "alignment-64", gguf_file(alignment, 1, [("w", [4], 0, 0)], np.ones(4, np.float32).tobytes(), alignment=64))
write("gguf", "alignment-bad", gguf_file(gguf_string("general.alignment") + struct.pack("<II", 4, 48), 1))
write("gguf", "version-2", gguf_file(tensors=[("w", [1], 0, 0)], data=bytes(4), version=2))
write("gguf", "huge-counts", gguf_file(tensor_count=2**63, metadata_count=2**62))
write("gguf", "huge-string", b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**63))
write("gguf", "huge-dims", gguf_file(tensors=[("w", [2**62, 2**62], 0, 0)]))
write("gguf", "five-dims", gguf_file(tensors=[("w", [1, 1, 1, 1, 1], 0, 0)], data=bytes(4)))
write("gguf", "offset-past-end", gguf_file(tensors=[("w", [4], 0, 2**64 - 32)], data=bytes(16)))
write("gguf", "overlap", gguf_file(tensors=[("a", [16], 0, 0), ("b", [4], 0, 32)], data=bytes(64)))
write("gguf", "partial-block", gguf_file(tensors=[("w", [48], 2, 0)], data=bytes(64)))
write("gguf", "deep-arrays", gguf_file(gguf_string("k") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 12 + struct.pack("<IQ", 0, 0), 1))
write("gguf", "fixture", (ROOT.parent.parent / "Tests" / "Fixtures" / "gguf" / "types.gguf").read_bytes())

# Text for the tokenizers: ASCII, accents, CJK, emoji, whitespace runs, numbers, punctuation.
texts = {
    "ascii": "The cat sat on the mat.",
    "accents": "Café naïve résumé — déjà vu",
    "cjk": "日本語のテキスト 猫が好き",
    "emoji": "I ❤️ attention 😀👍🏽",
    "whitespace": "  two  spaces\tand\ttabs\n\nnewlines   ",
    "numbers": "3.14159 and 1,000,000 or 2026-12-01",
    "punctuation": "Hello!!! What?! (yes) [no] {maybe} <tag> 'quoted' \"double\"",
    "contractions": "I'm sure you'll see it's theirs, isn't it? We'd've",
    "special": "<|endoftext|>Once upon a time<|endoftext|>",
    "long-word": "a" * 300,
    "controls": "\x00\x01 zero\u200b width\ufeff bom",
}
for name, text in texts.items():
    write("wordpiece", name, text)
    write("bpe", name, text)
write("bpe", "invalid-utf8", b"ok \xff\xfe bytes \xc3")

# Explorer bodies: the first byte picks the endpoint (even: /api/attend, odd: /api/explain).
attend = {"query": [[1, 0], [0, 1]], "key": [[1, 0], [0, 1], [1, 1]], "value": [[1, 2], [3, 4], [5, 6]]}
write("explorer", "attend", b"\x00" + json.dumps(attend).encode())
write("explorer", "attend-causal-window", b"\x00" + json.dumps({**attend, "causal": True, "window": [1, 0], "scale": 0.5}).encode())
write("explorer", "attend-ragged", b"\x00" + json.dumps({"query": [[1, 0], [1]], "key": [[1]], "value": [[1]]}).encode())
write("explorer", "attend-huge-window", b"\x00" + json.dumps({**attend, "window": [9223372036854775807, -9223372036854775808]}).encode())
# Every integer field at the ends of Int, one position at a time (the reported trap: [0, Int.max]).
for name, window in [("attend-window-right-max", [0, 9223372036854775807]), ("attend-window-left-max", [9223372036854775807, 0]),
                     ("attend-window-both-max", [9223372036854775807, 9223372036854775807]),
                     ("attend-window-min", [-9223372036854775808, 0]), ("attend-window-past-int", [0, 9223372036854775808])]:
    write("explorer", name, b"\x00" + json.dumps({"query": [[1]], "key": [[1]], "value": [[1]], "window": window, "causal": True}).encode())
write("explorer", "explain-layer-min", b"\x01" + json.dumps({"text": "x", "layer": -9223372036854775808, "head": 9223372036854775807}).encode())
write("explorer", "attend-extreme", b"\x00" + json.dumps({"query": [[1e308]], "key": [[1e308]], "value": [[-1e308]], "scale": 1e308}).encode())
write("explorer", "explain", b"\x01" + json.dumps({"text": "The cat sat on the mat"}).encode())
write("explorer", "explain-head", b"\x01" + json.dumps({"text": "attention", "layer": 1, "head": 2}).encode())
write("explorer", "explain-bad-head", b"\x01" + json.dumps({"text": "x", "layer": 9223372036854775807, "head": -1}).encode())
write("explorer", "explain-pair", b"\x01" + json.dumps({"text": "a", "pair": "b"}).encode())

# OpenAI API bodies: the first byte picks the endpoint (even: /v1/chat/completions, odd: /v1/completions).
chat = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}], "max_tokens": 4}
write("openai", "chat", b"\x00" + json.dumps(chat).encode())
write("openai", "chat-stream-usage", b"\x00" + json.dumps({**chat, "stream": True, "stream_options": {"include_usage": True}}).encode())
write("openai", "chat-parts", b"\x00" + json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                                                      "max_completion_tokens": 2}).encode())
write("openai", "chat-bad-role", b"\x00" + json.dumps({"messages": [{"role": "tool", "content": "x"}]}).encode())
write("openai", "completion", b"\x01" + json.dumps({"prompt": "The cat", "max_tokens": 3, "temperature": 0, "seed": 1}).encode())
write("openai", "completion-sampled", b"\x01" + json.dumps({"prompt": "The cat", "max_tokens": 3, "temperature": 2, "top_p": 0.5,
                                                              "top_k": 5, "seed": -1, "stop": ["x", "y"]}).encode())
write("openai", "completion-stream", b"\x01" + json.dumps({"prompt": "a b c", "max_tokens": 5, "stream": True, "stop": "b"}).encode())
write("openai", "completion-extremes", b"\x01" + json.dumps({"prompt": "x", "max_tokens": 9223372036854775807, "top_k": -9223372036854775808,
                                                               "seed": 9223372036854775808, "n": 0, "temperature": 1e308}).encode())
write("openai", "completion-long", b"\x01" + json.dumps({"prompt": "word " * 80, "max_tokens": 1}).encode())
write("openai", "completion-null", b"\x01" + b'{"prompt": null, "max_tokens": null, "stop": [null]}')

# heatmap: weights of each rank, extreme values, mismatched shapes.
write("heatmap", "2d", npy(rng.random((3, 3))))
write("heatmap", "3d", npy(rng.random((2, 3, 4)).astype(np.float32)))
write("heatmap", "4d", npy(rng.random((1, 2, 2, 2))))
write("heatmap", "extreme", npy(np.array([[0.5, 1e19], [np.nan, -1e300]])))
write("heatmap", "rank1", npy(np.ones(4)))
write("heatmap", "bool", npy(np.ones((2, 2), bool)))
write("heatmap", "empty", npy(np.zeros((0, 0))))
