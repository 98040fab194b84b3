#ifndef ATTENTION_QUANTIZED_DOT_H
#define ATTENTION_QUANTIZED_DOT_H

// The inner products of one block of sixteen interleaved rows (see InterleavedQuantized.swift in
// _AttentionKernels), written with clang's portable vector extensions: masks, conversions and
// multiply-adds on whole 16-lane vectors, inlined into the Swift kernels and lowered for each kernel
// module's instruction set. The same loops written with Swift's SIMD types were split into 128-bit
// pieces and lane inserts by the optimizer, at twice the time of the file-layout kernel.
//
// Each returns the sixteen rows' Σ q·x over one block of 32 values, in four chains of eight
// products added pairwise at the end; the multiply and add of each product contract into one fused
// multiply-add where the instruction set has it.

typedef float attention_q_float16v __attribute__((ext_vector_type(16)));
typedef int attention_q_int16v __attribute__((ext_vector_type(16)));
typedef unsigned int attention_q_uint16v __attribute__((ext_vector_type(16)));
typedef signed char attention_q_char16v __attribute__((ext_vector_type(16)));

/// Σ q·x for the sixteen rows of a nibble block: four chunks of sixteen little-endian 32-bit words
/// at `q` (64-byte stride), `x` the 32 prepared inputs (eight per chunk, pre-scaled by the power of
/// sixteen each nibble's mask leaves in place).
static inline __attribute__((always_inline)) attention_q_float16v attention_nibble_block_dot(const void *q, const float *x) {
    attention_q_float16v t[4];
#pragma clang loop unroll(full)
    for (int c = 0; c < 4; c++) {
        attention_q_uint16v v;
        __builtin_memcpy(&v, (const char *)q + 64 * c, sizeof v);
        attention_q_uint16v h = v >> 16;
        const float *xc = x + 8 * c;
        attention_q_float16v s = __builtin_convertvector((attention_q_int16v)(v & 0xF), attention_q_float16v) * xc[0];
        s = __builtin_convertvector((attention_q_int16v)(v & 0xF0), attention_q_float16v) * xc[1] + s;
        s = __builtin_convertvector((attention_q_int16v)(v & 0xF00), attention_q_float16v) * xc[2] + s;
        s = __builtin_convertvector((attention_q_int16v)(v & 0xF000), attention_q_float16v) * xc[3] + s;
        s = __builtin_convertvector((attention_q_int16v)(h & 0xF), attention_q_float16v) * xc[4] + s;
        s = __builtin_convertvector((attention_q_int16v)(h & 0xF0), attention_q_float16v) * xc[5] + s;
        s = __builtin_convertvector((attention_q_int16v)(h & 0xF00), attention_q_float16v) * xc[6] + s;
        s = __builtin_convertvector((attention_q_int16v)(h & 0xF000), attention_q_float16v) * xc[7] + s;
        t[c] = s;
    }
    return (t[0] + t[1]) + (t[2] + t[3]);
}

/// Σ q·x for the sixteen rows of a byte block: eight chunks of sixteen little-endian 32-bit words at
/// `q` (64-byte stride), word `r` of chunk `c` holding elements `4c ..< 4c + 4` of row `r` as signed
/// bytes; `x` the block's 32 inputs. Byte `i` of each word is sign-extended by shifting it to the
/// top and back.
static inline __attribute__((always_inline)) attention_q_float16v attention_byte_block_dot(const void *q, const float *x) {
    attention_q_float16v t[4];
#pragma clang loop unroll(full)
    for (int c = 0; c < 8; c++) {
        attention_q_int16v v;
        __builtin_memcpy(&v, (const char *)q + 64 * c, sizeof v);
#pragma clang loop unroll(full)
        for (int i = 0; i < 4; i++) {
            attention_q_float16v value = __builtin_convertvector((v << (24 - 8 * i)) >> 24, attention_q_float16v);
            t[i] = c == 0 ? value * x[i] : value * x[4 * c + i] + t[i];
        }
    }
    return (t[0] + t[1]) + (t[2] + t[3]);
}

/// The 32 values of one nibble block of sixteen interleaved rows, as floats: element `e` of row `r`
/// goes to `out[stride·e + r]`, as `d[r]·q + m[r]` when `m` is given (Q4_1), else `d[r]·(q − 8)` (Q4_0),
/// each rounded once after each operation (no contraction), so the values equal the file-layout
/// dequantization's bit for bit.
static inline __attribute__((always_inline)) void attention_nibble_block_values(const void *q, const float *d, const float *m,
                                                                                 float *out, long stride) {
#pragma clang fp contract(off)
    attention_q_float16v dv, mv = 0;
    __builtin_memcpy(&dv, d, sizeof dv);
    if (m) __builtin_memcpy(&mv, m, sizeof mv);
#pragma clang loop unroll(full)
    for (int c = 0; c < 4; c++) {
        attention_q_uint16v v;
        __builtin_memcpy(&v, (const char *)q + 64 * c, sizeof v);
#pragma clang loop unroll(full)
        for (int i = 0; i < 8; i++) {
            // Byte i / 2 of the word: its low nibble is element 4c + i/2, its high one element 4c + i/2 + 16.
            attention_q_float16v value = __builtin_convertvector((attention_q_int16v)((v >> (4 * i)) & 0xF), attention_q_float16v);
            attention_q_float16v w = m ? dv * value + mv : dv * (value - 8.0f);
            __builtin_memcpy(out + stride * (4 * c + i / 2 + 16 * (i % 2)), &w, sizeof w);
        }
    }
}

/// The 32 values of one byte block of sixteen interleaved rows (the layout of
/// attention_byte_block_dot), as floats: `d[r]·q` to `out[stride·e + r]`.
static inline __attribute__((always_inline)) void attention_byte_block_values(const void *q, const float *d, float *out, long stride) {
#pragma clang fp contract(off)
    attention_q_float16v dv;
    __builtin_memcpy(&dv, d, sizeof dv);
#pragma clang loop unroll(full)
    for (int c = 0; c < 8; c++) {
        attention_q_int16v v;
        __builtin_memcpy(&v, (const char *)q + 64 * c, sizeof v);
#pragma clang loop unroll(full)
        for (int i = 0; i < 4; i++) {
            attention_q_float16v w = dv * __builtin_convertvector((v << (24 - 8 * i)) >> 24, attention_q_float16v);
            __builtin_memcpy(out + stride * (4 * c + i), &w, sizeof w);
        }
    }
}

#endif
