#ifndef ATTENTION_INTEGER_DOT_H
#define ATTENTION_INTEGER_DOT_H

// Integer products of block-quantized weights with an input quantized to 8-bit integers per block
// of 32 (see IntegerProducts.swift in _AttentionKernels). Like the other headers here, compiled anew
// for each Swift module that inlines the kernels, for that module's instruction set:
// - AVX-512 VNNI: `vpdpbusd`, four unsigned weight bytes times four signed input bytes summed into
//   each 32-bit lane, one instruction for sixteen rows × four values;
// - AVX-512 BW (no VNNI) and AVX2: `vpmaddubsw` (pairs into 16 bits) then `vpmaddwd` (pairs into 32);
// - anything else: the same sums in 32-bit vector arithmetic.
// Every path returns the exact integer sums, so the products do not depend on the instruction set.

#include <string.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

typedef int attention_i_int16v __attribute__((ext_vector_type(16)));
typedef unsigned int attention_i_uint16v __attribute__((ext_vector_type(16)));
typedef float attention_i_float16v __attribute__((ext_vector_type(16)));
typedef signed char attention_i_char16v __attribute__((ext_vector_type(16)));

/// One block of 32 inputs at `x` as 8-bit integers at `q`: `d = max|x| / 127` and `q = round(x / d)`
/// (halves away from zero), as ggml quantizes activations to Q8_0. Returns `d` and sets `*sum` to
/// `Σ q`. A block of zeros gives `d = 0` and zeros; a block holding a NaN or an infinity gives
/// `d = NaN` and zeros, so every product with it is NaN.
static inline __attribute__((always_inline)) float attention_quantize_block(const float *x, signed char *q, int *sum) {
    attention_i_float16v a, b;
    memcpy(&a, x, sizeof a);
    memcpy(&b, x + 16, sizeof b);
    attention_i_uint16v ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    // |x| as bits: for finite values their order is the floats' order, and NaN and infinities
    // come out above every finite value.
    unsigned int bits = __builtin_reduce_max(__builtin_elementwise_max(ua & 0x7FFFFFFFu, ub & 0x7FFFFFFFu));
    if (bits >= 0x7F800000u) {
        memset(q, 0, 32);
        *sum = 0;
        return __builtin_nanf("");
    }
    float amax;
    memcpy(&amax, &bits, sizeof amax);
    float d = amax / 127.0f;
    float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    attention_i_int16v qa = __builtin_convertvector(__builtin_elementwise_round(a * inverse), attention_i_int16v);
    attention_i_int16v qb = __builtin_convertvector(__builtin_elementwise_round(b * inverse), attention_i_int16v);
    attention_i_char16v ca = __builtin_convertvector(qa, attention_i_char16v), cb = __builtin_convertvector(qb, attention_i_char16v);
    memcpy(q, &ca, 16);
    memcpy(q + 16, &cb, 16);
    *sum = __builtin_reduce_add(qa + qb);
    return d;
}

/// The four input bytes at `p` as one 32-bit word.
static inline __attribute__((always_inline)) int attention_load_word(const signed char *p) {
    int w;
    memcpy(&w, p, sizeof w);
    return w;
}

/// `Σ q·x` over one block of sixteen interleaved rows of nibbles (the layout of InterleavedQuantized.swift:
/// four chunks of sixteen 32-bit words at `w`, word `r` of chunk `c` holding bytes `4c ..< 4c + 4`
/// of row `r`, whose low nibbles are elements `4c + i` and high nibbles `4c + i + 16`), for `rows`
/// input rows of 32 signed bytes in element order at `x + stride·r`. `q` is the nibble, 0 ... 15.
static inline __attribute__((always_inline)) void attention_nibble_block_idot(const void *w, const signed char *x, long stride, int rows,
                                                                               attention_i_int16v *out) {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
    const __m512i mask = _mm512_set1_epi8(0x0F);
    __m512i lo[4], hi[4];
#pragma clang loop unroll(full)
    for (int c = 0; c < 4; c++) {
        __m512i v = _mm512_loadu_si512((const char *)w + 64 * c);
        lo[c] = _mm512_and_si512(v, mask);
        hi[c] = _mm512_and_si512(_mm512_srli_epi32(v, 4), mask);
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {
            a = _mm512_dpbusd_epi32(a, lo[c], _mm512_set1_epi32(attention_load_word(xr + 4 * c)));
            b = _mm512_dpbusd_epi32(b, hi[c], _mm512_set1_epi32(attention_load_word(xr + 16 + 4 * c)));
        }
        out[r] = (attention_i_int16v)_mm512_add_epi32(a, b);
    }
#elif defined(__AVX512BW__)
    const __m512i mask = _mm512_set1_epi8(0x0F), ones = _mm512_set1_epi16(1);
    __m512i lo[4], hi[4];
#pragma clang loop unroll(full)
    for (int c = 0; c < 4; c++) {
        __m512i v = _mm512_loadu_si512((const char *)w + 64 * c);
        lo[c] = _mm512_and_si512(v, mask);
        hi[c] = _mm512_and_si512(_mm512_srli_epi32(v, 4), mask);
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        // Eight pair sums of at most 2·15·127 each fit 16 bits.
        __m512i s = _mm512_setzero_si512();
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {
            s = _mm512_add_epi16(s, _mm512_maddubs_epi16(lo[c], _mm512_set1_epi32(attention_load_word(xr + 4 * c))));
            s = _mm512_add_epi16(s, _mm512_maddubs_epi16(hi[c], _mm512_set1_epi32(attention_load_word(xr + 16 + 4 * c))));
        }
        out[r] = (attention_i_int16v)_mm512_madd_epi16(s, ones);
    }
#elif defined(__AVX2__)
    // Sixteen ymm registers: each row reloads the chunks (from L1) rather than keep them all.
    const __m256i mask = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {
            __m256i xl = _mm256_set1_epi32(attention_load_word(xr + 4 * c)), xh = _mm256_set1_epi32(attention_load_word(xr + 16 + 4 * c));
            __m256i v0 = _mm256_loadu_si256((const __m256i *)((const char *)w + 64 * c));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)((const char *)w + 64 * c + 32));
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(_mm256_and_si256(v0, mask), xl));
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi32(v0, 4), mask), xh));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(_mm256_and_si256(v1, mask), xl));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi32(v1, 4), mask), xh));
        }
        __m256i l = _mm256_madd_epi16(s0, ones), h = _mm256_madd_epi16(s1, ones);
        attention_i_int16v v;
        memcpy(&v, &l, 32);
        memcpy((char *)&v + 32, &h, 32);
        out[r] = v;
    }
#else
    attention_i_uint16v words[4];
#pragma clang loop unroll(full)
    for (int c = 0; c < 4; c++) memcpy(&words[c], (const char *)w + 64 * c, sizeof words[c]);
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        attention_i_int16v s = 0;
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) {
                attention_i_int16v low = (attention_i_int16v)((words[c] >> (8 * i)) & 0xF);
                attention_i_int16v high = (attention_i_int16v)((words[c] >> (8 * i + 4)) & 0xF);
                s += low * (int)xr[4 * c + i] + high * (int)xr[16 + 4 * c + i];
            }
        }
        out[r] = s;
    }
#endif
}

/// ``attention_nibble_block_idot`` for one input row.
static inline __attribute__((always_inline)) attention_i_int16v attention_nibble_block_idot1(const void *w, const signed char *x) {
    attention_i_int16v s[1];
    attention_nibble_block_idot(w, x, 0, 1, s);
    return s[0];
}

/// ``attention_nibble_block_idot`` for four input rows at `x + stride·r`, into `out[0 ..< 4]`.
static inline __attribute__((always_inline)) void attention_nibble_block_idot4(const void *w, const signed char *x, long stride,
                                                                                attention_i_int16v *out) {
    attention_nibble_block_idot(w, x, stride, 4, out);
}

/// 1 when the nibble products above are `vpdpbusd` (AVX-512 VNNI) on the target this header is
/// compiled for, 2 for `vpmaddubsw` (AVX-512 BW or AVX2), 0 for 32-bit vector arithmetic.
static inline __attribute__((always_inline)) int attention_integer_dot_kind(void) {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
    return 1;
#elif defined(__AVX512BW__) || defined(__AVX2__)
    return 2;
#else
    return 0;
#endif
}

#endif
