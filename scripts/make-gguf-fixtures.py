#!/usr/bin/env python3
"""Regenerate the GGUF fixture under Tests/Fixtures/gguf (committed; tests read it, CI never runs this).

    python3 -m venv .venv && .venv/bin/pip install numpy gguf
    .venv/bin/python scripts/make-gguf-fixtures.py

Writes, with the `gguf` package (llama.cpp's own Python reader and writer, which transformers uses
to load GGUF checkpoints):
  types.gguf      metadata of every value type (nested arrays, UTF-8, the edges of each integer
                  type; gguf's writer drops empty arrays), a 64-byte alignment, and one tensor of
                  each type the Swift reader converts (F32, F16, BF16, F64, Q8_0, Q4_0, Q4_1, Q5_0,
                  Q5_1) on awkward shapes, blocks of zeros, constants and wide ranges included; one
                  tensor of each k-quant (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) of random super-blocks whose
                  half-precision scales are finite and of ordinary size (gguf's Python package
                  dequantizes k-quants but does not quantize them); an IQ4_NL tensor of random
                  blocks the same way (it does not quantize that either); and an IQ2_XXS tensor
                  (listed, not converted);
  <tensor>.npy    each tensor dequantized to float32 by gguf.quants.dequantize: what transformers
                  computes from the same bytes, shaped outermost first;
  manifest.json   the metadata values and each tensor's GGUF dimensions (innermost first) and type.
"""
import json
import pathlib

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "gguf"
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(19)

writer = gguf.GGUFWriter(str(OUT / "types.gguf"), arch="fixture")
writer.add_custom_alignment(64)
metadata = {
    "test.uint8": (200, gguf.GGUFValueType.UINT8),
    "test.int8": (-100, gguf.GGUFValueType.INT8),
    "test.uint16": (60000, gguf.GGUFValueType.UINT16),
    "test.int16": (-30000, gguf.GGUFValueType.INT16),
    "test.uint32": (4_000_000_000, gguf.GGUFValueType.UINT32),
    "test.int32": (-2_000_000_000, gguf.GGUFValueType.INT32),
    "test.uint64": (2**63 + 5, gguf.GGUFValueType.UINT64),
    "test.int64": (-(2**62), gguf.GGUFValueType.INT64),
    "test.float32": (0.1, gguf.GGUFValueType.FLOAT32),
    "test.float64": (3.141592653589793, gguf.GGUFValueType.FLOAT64),
    "test.bool": (True, gguf.GGUFValueType.BOOL),
    "test.string": ("héllo, wörld ✓ 猫 😀", gguf.GGUFValueType.STRING),
    "test.empty_string": ("", gguf.GGUFValueType.STRING),
}
for key, (value, kind) in metadata.items():
    writer.add_key_value(key, value, kind)
writer.add_array("test.int32s", [1, -2, 3, 2**31 - 1])
writer.add_array("test.strings", ["<|im_start|>", "Ġthe", "", "é"])
writer.add_array("test.floats", [0.5, -1.25, 1e-3])
writer.add_array("test.nested", [[1, 2], [3]])

# name -> (GGML type, float32 source shaped outermost first)
sources = {
    "f32": (T.F32, rng.standard_normal((2, 3, 5)).astype(np.float32)),
    "f16": (T.F16, rng.standard_normal((4, 7)).astype(np.float32)),
    "bf16": (T.BF16, (rng.standard_normal((3, 9)) * 100).astype(np.float32)),
    "f64": (T.F64, rng.standard_normal((6,))),
    "q8_0": (T.Q8_0, rng.standard_normal((5, 64)).astype(np.float32)),
    "q4_0": (T.Q4_0, rng.standard_normal((3, 96)).astype(np.float32)),
    "q4_1": (T.Q4_1, rng.standard_normal((2, 3, 32)).astype(np.float32) + 0.5),
    "q5_0": (T.Q5_0, rng.standard_normal((4, 64)).astype(np.float32)),
    "q5_1": (T.Q5_1, (rng.standard_normal((1, 128)) * 1000).astype(np.float32)),
}
# Blocks a quantizer meets in real weights: all zeros (scale 0), a constant, one large outlier.
sources["q8_0"][1][1, :32] = 0
sources["q4_0"][1][0, 32:64] = 0
sources["q4_1"][1][1, 0, :] = 2.5
sources["q5_0"][1][2, 7] = 40
sources["q5_1"][1][0, 64:96] = -3

manifest = {"metadata": {k: v for k, (v, _) in metadata.items()}, "tensors": {}}
manifest["metadata"].update({"test.int32s": [1, -2, 3, 2**31 - 1], "test.strings": ["<|im_start|>", "Ġthe", "", "é"],
                             "test.floats": [0.5, -1.25, 1e-3], "test.nested": [[1, 2], [3]]})
for name, (kind, values) in sources.items():
    if kind == T.F32 or kind == T.F64:
        stored = values
        writer.add_tensor(name, stored)
    elif kind == T.F16:
        stored = values.astype(np.float16)
        writer.add_tensor(name, stored)
    else:
        stored = quants.quantize(values, kind)
        writer.add_tensor(name, stored, raw_dtype=kind)
    expected = quants.dequantize(stored, kind) if kind not in (T.F32, T.F64, T.F16) else stored
    expected = np.asarray(expected, dtype=np.float32).reshape(values.shape)
    np.save(OUT / f"{name}.npy", expected)
    manifest["tensors"][name] = {"type": kind.name, "dimensions": list(reversed(values.shape))}
# K-quant super-blocks of random bytes with ordinary half-precision scales: every bit pattern of
# the integers and the packed 6-bit scales occurs. (offsets of d, dmin in each layout)
k_quants = {"q2_k": (T.Q2_K, 84, [80, 82], (3, 256)), "q3_k": (T.Q3_K, 110, [108], (2, 512)),
            "q4_k": (T.Q4_K, 144, [0, 2], (3, 256)), "q5_k": (T.Q5_K, 176, [0, 2], (2, 512)),
            "q6_k": (T.Q6_K, 210, [208], (2, 256))}
for name, (kind, size, halves, shape) in k_quants.items():
    count = shape[0] * shape[1] // 256
    stored = rng.integers(0, 256, size=(count, size), dtype=np.uint8)
    for at in halves:
        scale = (rng.uniform(0.001, 0.1, size=count) * rng.choice([-1, 1], size=count)).astype(np.float16)
        stored[:, at:at + 2] = scale.view(np.uint8).reshape(count, 2)
    stored = stored.reshape(shape[0], shape[1] // 256 * size)
    writer.add_tensor(name, stored, raw_dtype=kind)
    expected = np.asarray(quants.dequantize(stored, kind), dtype=np.float32).reshape(shape)
    np.save(OUT / f"{name}.npy", expected)
    manifest["tensors"][name] = {"type": kind.name, "dimensions": list(reversed(shape))}
# A codebook type of arbitrary bytes: the reader lists and sizes it, and refuses to convert it.
iq_bytes = rng.integers(0, 256, size=(2, 66), dtype=np.uint8)
writer.add_tensor("iq2_xxs", iq_bytes, raw_dtype=T.IQ2_XXS)
manifest["tensors"]["iq2_xxs"] = {"type": "IQ2_XXS", "dimensions": [256, 2]}
# IQ4_NL (drawn after the others, which stay as they were): random nibbles, ordinary finite scales.
iq4_shape = (3, 96)
iq4 = rng.integers(0, 256, size=(iq4_shape[0] * iq4_shape[1] // 32, 18), dtype=np.uint8)
iq4_scales = (rng.uniform(0.001, 0.1, size=len(iq4)) * rng.choice([-1, 1], size=len(iq4))).astype(np.float16)
iq4[:, 0:2] = iq4_scales.view(np.uint8).reshape(len(iq4), 2)
iq4 = iq4.reshape(iq4_shape[0], iq4_shape[1] // 32 * 18)
writer.add_tensor("iq4_nl", iq4, raw_dtype=T.IQ4_NL)
np.save(OUT / "iq4_nl.npy", np.asarray(quants.dequantize(iq4, T.IQ4_NL), dtype=np.float32).reshape(iq4_shape))
manifest["tensors"]["iq4_nl"] = {"type": "IQ4_NL", "dimensions": list(reversed(iq4_shape))}

writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
(OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")

# Read back with gguf's reader: the file is what the format says.
reader = gguf.GGUFReader(str(OUT / "types.gguf"))
assert reader.alignment == 64
for tensor in reader.tensors:
    assert [int(d) for d in tensor.shape] == manifest["tensors"][tensor.name]["dimensions"], tensor.name
print(f"wrote {OUT}: {len(reader.tensors)} tensors, {len(reader.fields)} fields, "
      f"{(OUT / 'types.gguf').stat().st_size} bytes")
