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
static inline __attribute__((always_inline)) float attention_quantize_block(const float *x, signed char *q, int *sum, int *firstHalfSum) {
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
        *firstHalfSum = 0;
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
    *firstHalfSum = __builtin_reduce_add(qa);
    return d;
}

/// The four input bytes at `p` as one 32-bit word.
static inline __attribute__((always_inline)) int attention_load_word(const signed char *p) {
    int w;
    memcpy(&w, p, sizeof w);
    return w;
}

#if defined(__AVX512BW__)
/// The fifth bits of chunk `c`'s low (`half` 0) or high (`half` 1) nibbles as 0x10 in each byte: the
/// bits `16·half + 4c ..< 16·half + 4c + 4` of each lane's word of fifth bits, bit `j` to byte `j`.
static inline __attribute__((always_inline)) __mmask64 attention_fifth_bits512(__m512i high, int c, int half) {
    int byte = 2 * half + c / 2;
    // Each lane's byte `byte` into all four of its bytes (vpshufb indexes within 128-bit lanes).
    __m512i spread = _mm512_shuffle_epi8(high, _mm512_add_epi32(_mm512_set1_epi32(byte * 0x01010101),
                                                                _mm512_set4_epi32(0x0C0C0C0C, 0x08080808, 0x04040404, 0)));
    return _mm512_test_epi8_mask(spread, _mm512_set1_epi32(c % 2 ? (int)0x80402010 : 0x08040201));
}

/// The four chunks of nibble words at `w` unpacked into bytes: `lo[c]` the low nibbles (elements
/// `4c + i`), `hi[c]` the high ones (`4c + i + 16`), with `high4`'s bits added as 16 and `high5`'s
/// as 32 where given (the words of attention_nibble_block_idot and attention_six_bit_block_idot).
static inline __attribute__((always_inline)) void attention_nibbles512(const void *w, const void *high4, const void *high5,
                                                                        __m512i lo[4], __m512i hi[4]) {
    const __m512i mask = _mm512_set1_epi8(0x0F);
    __m512i h4 = high4 ? _mm512_loadu_si512(high4) : _mm512_setzero_si512();
    __m512i h5 = high5 ? _mm512_loadu_si512(high5) : _mm512_setzero_si512();
#pragma clang loop unroll(full)
    for (int c = 0; c < 4; c++) {
        __m512i v = _mm512_loadu_si512((const char *)w + 64 * c);
        lo[c] = _mm512_and_si512(v, mask);
        hi[c] = _mm512_and_si512(_mm512_srli_epi32(v, 4), mask);
        if (high4) {
            const __m512i sixteen = _mm512_set1_epi8(0x10);
            lo[c] = _mm512_mask_add_epi8(lo[c], attention_fifth_bits512(h4, c, 0), lo[c], sixteen);
            hi[c] = _mm512_mask_add_epi8(hi[c], attention_fifth_bits512(h4, c, 1), hi[c], sixteen);
        }
        if (high5) {
            const __m512i thirtyTwo = _mm512_set1_epi8(0x20);
            lo[c] = _mm512_mask_add_epi8(lo[c], attention_fifth_bits512(h5, c, 0), lo[c], thirtyTwo);
            hi[c] = _mm512_mask_add_epi8(hi[c], attention_fifth_bits512(h5, c, 1), hi[c], thirtyTwo);
        }
    }
}
#endif

#if defined(__AVX2__) && !defined(__AVX512BW__)
/// As attention_fifth_bits512, for eight lanes: 0x10 in each byte whose fifth bit is set.
static inline __attribute__((always_inline)) __m256i attention_fifth_bits256(__m256i high, int c, int half) {
    int byte = 2 * half + c / 2;
    __m256i spread = _mm256_shuffle_epi8(high, _mm256_add_epi32(_mm256_set1_epi32(byte * 0x01010101),
                                                                _mm256_setr_epi32(0, 0x04040404, 0x08080808, 0x0C0C0C0C,
                                                                                  0, 0x04040404, 0x08080808, 0x0C0C0C0C)));
    __m256i pattern = _mm256_set1_epi32(c % 2 ? (int)0x80402010 : 0x08040201);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, pattern), pattern);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}
#endif

/// `Σ q·x` over one block of sixteen interleaved rows of nibbles (the layout of InterleavedQuantized.swift:
/// four chunks of sixteen 32-bit words at `w`, word `r` of chunk `c` holding bytes `4c ..< 4c + 4`
/// of row `r`, whose low nibbles are elements `4c + i` and high nibbles `4c + i + 16`), for `rows`
/// input rows of 32 signed bytes in element order at `x + stride·r`. `q` is the nibble, 0 ... 15; with
/// `high` (Q5_0: sixteen 32-bit words, bit `e` of word `r` the fifth bit of row `r`'s element `e`),
/// `q = nibble + 16·bit`, 0 ... 31.
static inline __attribute__((always_inline)) void attention_nibble_block_idot(const void *w, const void *high, const signed char *x,
                                                                               long stride, int rows, attention_i_int16v *out) {
#if defined(__AVX512BW__)
    __m512i lo[4], hi[4];
    attention_nibbles512(w, high, 0, lo, hi);
#if defined(__AVX512VNNI__)
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
#else
    const __m512i ones = _mm512_set1_epi16(1);
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        // Pair sums of at most 2·15·127 (2·31·127 with fifth bits): eight (four) of them fit 16 bits.
        __m512i s = _mm512_setzero_si512(), t = _mm512_setzero_si512();
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {
            s = _mm512_add_epi16(s, _mm512_maddubs_epi16(lo[c], _mm512_set1_epi32(attention_load_word(xr + 4 * c))));
            __m512i p = _mm512_maddubs_epi16(hi[c], _mm512_set1_epi32(attention_load_word(xr + 16 + 4 * c)));
            if (high) t = _mm512_add_epi16(t, p); else s = _mm512_add_epi16(s, p);
        }
        __m512i sum = _mm512_madd_epi16(s, ones);
        if (high) sum = _mm512_add_epi32(sum, _mm512_madd_epi16(t, ones));
        out[r] = (attention_i_int16v)sum;
    }
#endif
#elif defined(__AVX2__)
    // Sixteen ymm registers: each row reloads the chunks (from L1) rather than keep them all.
    const __m256i mask = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256i h0 = _mm256_setzero_si256(), h1 = _mm256_setzero_si256();
    if (high) {
        h0 = _mm256_loadu_si256((const __m256i *)high);
        h1 = _mm256_loadu_si256((const __m256i *)((const char *)high + 32));
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256(), t0 = s0, t1 = s0;
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {
            __m256i xl = _mm256_set1_epi32(attention_load_word(xr + 4 * c)), xh = _mm256_set1_epi32(attention_load_word(xr + 16 + 4 * c));
            __m256i v0 = _mm256_loadu_si256((const __m256i *)((const char *)w + 64 * c));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)((const char *)w + 64 * c + 32));
            __m256i l0 = _mm256_and_si256(v0, mask), u0 = _mm256_and_si256(_mm256_srli_epi32(v0, 4), mask);
            __m256i l1 = _mm256_and_si256(v1, mask), u1 = _mm256_and_si256(_mm256_srli_epi32(v1, 4), mask);
            if (high) {
                l0 = _mm256_or_si256(l0, attention_fifth_bits256(h0, c, 0));
                u0 = _mm256_or_si256(u0, attention_fifth_bits256(h0, c, 1));
                l1 = _mm256_or_si256(l1, attention_fifth_bits256(h1, c, 0));
                u1 = _mm256_or_si256(u1, attention_fifth_bits256(h1, c, 1));
            }
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(l0, xl));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(l1, xl));
            if (high) {
                t0 = _mm256_add_epi16(t0, _mm256_maddubs_epi16(u0, xh));
                t1 = _mm256_add_epi16(t1, _mm256_maddubs_epi16(u1, xh));
            } else {
                s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(u0, xh));
                s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(u1, xh));
            }
        }
        __m256i l = _mm256_madd_epi16(s0, ones), u = _mm256_madd_epi16(s1, ones);
        if (high) {
            l = _mm256_add_epi32(l, _mm256_madd_epi16(t0, ones));
            u = _mm256_add_epi32(u, _mm256_madd_epi16(t1, ones));
        }
        attention_i_int16v v;
        memcpy(&v, &l, 32);
        memcpy((char *)&v + 32, &u, 32);
        out[r] = v;
    }
#else
    attention_i_uint16v words[4], h = 0;
#pragma clang loop unroll(full)
    for (int c = 0; c < 4; c++) memcpy(&words[c], (const char *)w + 64 * c, sizeof words[c]);
    if (high) memcpy(&h, high, sizeof h);
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        attention_i_int16v s = 0;
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) {
                int e = 4 * c + i;
                attention_i_int16v low = (attention_i_int16v)(((words[c] >> (8 * i)) & 0xF) | (((h >> e) & 1) << 4));
                attention_i_int16v upper = (attention_i_int16v)(((words[c] >> (8 * i + 4)) & 0xF) | (((h >> (e + 16)) & 1) << 4));
                s += low * (int)xr[e] + upper * (int)xr[16 + e];
            }
        }
        out[r] = s;
    }
#endif
}

/// ``attention_nibble_block_idot`` for one input row.
static inline __attribute__((always_inline)) attention_i_int16v attention_nibble_block_idot1(const void *w, const void *high,
                                                                                               const signed char *x) {
    attention_i_int16v s[1];
    attention_nibble_block_idot(w, high, x, 0, 1, s);
    return s[0];
}

/// ``attention_nibble_block_idot`` for four input rows at `x + stride·r`, into `out[0 ..< 4]`.
static inline __attribute__((always_inline)) void attention_nibble_block_idot4(const void *w, const void *high, const signed char *x,
                                                                                long stride, attention_i_int16v *out) {
    attention_nibble_block_idot(w, high, x, stride, 4, out);
}

/// ``attention_nibble_block_idot`` for eight input rows at `x + stride·r`, into `out[0 ..< 8]` (for
/// targets with 32 vector registers: the unpacked block and eight rows' sums stay in them).
static inline __attribute__((always_inline)) void attention_nibble_block_idot8(const void *w, const void *high, const signed char *x,
                                                                                long stride, attention_i_int16v *out) {
    attention_nibble_block_idot(w, high, x, stride, 8, out);
}

/// `Σ q·x` over one block of sixteen interleaved rows of six-bit integers, its first sixteen elements
/// and its last sixteen apart (Q6_K's scales cover sixteen values): the nibbles at `w` as
/// attention_nibble_block_idot reads them, `high4` and `high5` sixteen 32-bit words each whose bit
/// `e` of word `r` is bit 4 (and 5) of row `r`'s element `e`, so `q = nibble + 16·bit4 + 32·bit5`,
/// 0 ... 63. For `rows` input rows at `x + stride·r`, `first[r]` gets the sums over elements 0 ..< 16
/// and `second[r]` over 16 ..< 32. Without VNNI a chunk's pair sums (at most 2·63·127) are widened
/// to 32 bits after every chunk.
static inline __attribute__((always_inline)) void attention_six_bit_block_idot(const void *w, const void *high4, const void *high5,
                                                                                const signed char *x, long stride, int rows,
                                                                                attention_i_int16v *first, attention_i_int16v *second) {
#if defined(__AVX512BW__)
    __m512i lo[4], hi[4];
    attention_nibbles512(w, high4, high5, lo, hi);
#if defined(__AVX512VNNI__)
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {
            a = _mm512_dpbusd_epi32(a, lo[c], _mm512_set1_epi32(attention_load_word(xr + 4 * c)));
            b = _mm512_dpbusd_epi32(b, hi[c], _mm512_set1_epi32(attention_load_word(xr + 16 + 4 * c)));
        }
        first[r] = (attention_i_int16v)a;
        second[r] = (attention_i_int16v)b;
    }
#else
    const __m512i ones = _mm512_set1_epi16(1);
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {
            a = _mm512_add_epi32(a, _mm512_madd_epi16(_mm512_maddubs_epi16(lo[c], _mm512_set1_epi32(attention_load_word(xr + 4 * c))), ones));
            b = _mm512_add_epi32(b, _mm512_madd_epi16(_mm512_maddubs_epi16(hi[c], _mm512_set1_epi32(attention_load_word(xr + 16 + 4 * c))), ones));
        }
        first[r] = (attention_i_int16v)a;
        second[r] = (attention_i_int16v)b;
    }
#endif
#elif defined(__AVX2__)
    const __m256i mask = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256i h40 = _mm256_loadu_si256((const __m256i *)high4), h41 = _mm256_loadu_si256((const __m256i *)((const char *)high4 + 32));
    __m256i h50 = _mm256_loadu_si256((const __m256i *)high5), h51 = _mm256_loadu_si256((const __m256i *)((const char *)high5 + 32));
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0;
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {
            __m256i xl = _mm256_set1_epi32(attention_load_word(xr + 4 * c)), xh = _mm256_set1_epi32(attention_load_word(xr + 16 + 4 * c));
            __m256i v0 = _mm256_loadu_si256((const __m256i *)((const char *)w + 64 * c));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)((const char *)w + 64 * c + 32));
            // Bit 5 as 0x20: the 0x10 of attention_fifth_bits256 shifted within each byte.
            __m256i l0 = _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(v0, mask), attention_fifth_bits256(h40, c, 0)),
                                         _mm256_slli_epi16(attention_fifth_bits256(h50, c, 0), 1));
            __m256i u0 = _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(v0, 4), mask), attention_fifth_bits256(h40, c, 1)),
                                         _mm256_slli_epi16(attention_fifth_bits256(h50, c, 1), 1));
            __m256i l1 = _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(v1, mask), attention_fifth_bits256(h41, c, 0)),
                                         _mm256_slli_epi16(attention_fifth_bits256(h51, c, 0), 1));
            __m256i u1 = _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(v1, 4), mask), attention_fifth_bits256(h41, c, 1)),
                                         _mm256_slli_epi16(attention_fifth_bits256(h51, c, 1), 1));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(l0, xl), ones));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(l1, xl), ones));
            b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(_mm256_maddubs_epi16(u0, xh), ones));
            b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(_mm256_maddubs_epi16(u1, xh), ones));
        }
        attention_i_int16v f, g;
        memcpy(&f, &a0, 32);
        memcpy((char *)&f + 32, &a1, 32);
        memcpy(&g, &b0, 32);
        memcpy((char *)&g + 32, &b1, 32);
        first[r] = f;
        second[r] = g;
    }
#else
    attention_i_uint16v words[4], h4 = 0, h5 = 0;
#pragma clang loop unroll(full)
    for (int c = 0; c < 4; c++) memcpy(&words[c], (const char *)w + 64 * c, sizeof words[c]);
    memcpy(&h4, high4, sizeof h4);
    memcpy(&h5, high5, sizeof h5);
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        attention_i_int16v a = 0, b = 0;
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) {
                int e = 4 * c + i;
                attention_i_int16v low = (attention_i_int16v)(((words[c] >> (8 * i)) & 0xF) | (((h4 >> e) & 1) << 4) | (((h5 >> e) & 1) << 5));
                attention_i_int16v upper = (attention_i_int16v)(((words[c] >> (8 * i + 4)) & 0xF) | (((h4 >> (e + 16)) & 1) << 4)
                                                                | (((h5 >> (e + 16)) & 1) << 5));
                a += low * (int)xr[e];
                b += upper * (int)xr[16 + e];
            }
        }
        first[r] = a;
        second[r] = b;
    }
#endif
}

/// ``attention_six_bit_block_idot`` for one input row (`rows` 1) or four (`rows` 4), into
/// `first[0 ..< rows]` and `second[0 ..< rows]`.
static inline __attribute__((always_inline)) void attention_six_bit_block_idot1(const void *w, const void *high4, const void *high5,
                                                                                 const signed char *x, attention_i_int16v *first,
                                                                                 attention_i_int16v *second) {
    attention_six_bit_block_idot(w, high4, high5, x, 0, 1, first, second);
}

static inline __attribute__((always_inline)) void attention_six_bit_block_idot4(const void *w, const void *high4, const void *high5,
                                                                                 const signed char *x, long stride, attention_i_int16v *first,
                                                                                 attention_i_int16v *second) {
    attention_six_bit_block_idot(w, high4, high5, x, stride, 4, first, second);
}

/// The bias the byte products below add to every weight: 128 where `vpdpbusd` multiplies unsigned
/// weight bytes (`q + 128`, 0 ... 255) by the signed input, 0 elsewhere. The caller takes
/// `bias·Σx` back off with the block's input sum, which it has.
static inline __attribute__((always_inline)) int attention_byte_idot_bias(void) {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
    return 128;
#else
    return 0;
#endif
}

/// `Σ (q + bias)·x` over one block of sixteen interleaved rows of signed bytes (Q8_0 in the layout of
/// InterleavedQuantized.swift: eight chunks of sixteen 32-bit words at `w`, word `r` of chunk `c`
/// holding elements `4c ..< 4c + 4` of row `r`), for `rows` input rows of 32 signed bytes in element
/// order at `x + stride·r`; `bias` is attention_byte_idot_bias(). Without VNNI the products take the
/// sign of each weight onto its input (`|q|·(±x)`, pair sums within 2·128·127), widened to 32 bits
/// after every chunk.
static inline __attribute__((always_inline)) void attention_byte_block_idot(const void *w, const signed char *x, long stride, int rows,
                                                                             attention_i_int16v *out) {
#if defined(__AVX512BW__)
    __m512i v[8];
#pragma clang loop unroll(full)
    for (int c = 0; c < 8; c++) v[c] = _mm512_loadu_si512((const char *)w + 64 * c);
#if defined(__AVX512VNNI__)
#pragma clang loop unroll(full)
    for (int c = 0; c < 8; c++) v[c] = _mm512_xor_si512(v[c], _mm512_set1_epi8((char)0x80));
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
#pragma clang loop unroll(full)
        for (int c = 0; c < 8; c += 2) {
            a = _mm512_dpbusd_epi32(a, v[c], _mm512_set1_epi32(attention_load_word(xr + 4 * c)));
            b = _mm512_dpbusd_epi32(b, v[c + 1], _mm512_set1_epi32(attention_load_word(xr + 4 * c + 4)));
        }
        out[r] = (attention_i_int16v)_mm512_add_epi32(a, b);
    }
#else
    const __m512i ones = _mm512_set1_epi16(1);
    __mmask64 negative[8];
#pragma clang loop unroll(full)
    for (int c = 0; c < 8; c++) {
        negative[c] = _mm512_movepi8_mask(v[c]);
        v[c] = _mm512_abs_epi8(v[c]);
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        __m512i s = _mm512_setzero_si512();
#pragma clang loop unroll(full)
        for (int c = 0; c < 8; c++) {
            __m512i xw = _mm512_set1_epi32(attention_load_word(xr + 4 * c));
            __m512i signed_x = _mm512_mask_sub_epi8(xw, negative[c], _mm512_setzero_si512(), xw);
            s = _mm512_add_epi32(s, _mm512_madd_epi16(_mm512_maddubs_epi16(v[c], signed_x), ones));
        }
        out[r] = (attention_i_int16v)s;
    }
#endif
#elif defined(__AVX2__)
    const __m256i ones = _mm256_set1_epi16(1);
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
#pragma clang loop unroll(full)
        for (int c = 0; c < 8; c++) {
            __m256i xw = _mm256_set1_epi32(attention_load_word(xr + 4 * c));
            __m256i v0 = _mm256_loadu_si256((const __m256i *)((const char *)w + 64 * c));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)((const char *)w + 64 * c + 32));
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(v0), _mm256_sign_epi8(xw, v0)), ones));
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(v1), _mm256_sign_epi8(xw, v1)), ones));
        }
        attention_i_int16v sum;
        memcpy(&sum, &s0, 32);
        memcpy((char *)&sum + 32, &s1, 32);
        out[r] = sum;
    }
#else
    attention_i_int16v words[8];
#pragma clang loop unroll(full)
    for (int c = 0; c < 8; c++) memcpy(&words[c], (const char *)w + 64 * c, sizeof words[c]);
    for (int r = 0; r < rows; r++) {
        const signed char *xr = x + stride * r;
        attention_i_int16v s = 0;
#pragma clang loop unroll(full)
        for (int c = 0; c < 8; c++) {
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) s += ((words[c] << (24 - 8 * i)) >> 24) * (int)xr[4 * c + i];
        }
        out[r] = s;
    }
#endif
}

/// ``attention_byte_block_idot`` for one input row.
static inline __attribute__((always_inline)) attention_i_int16v attention_byte_block_idot1(const void *w, const signed char *x) {
    attention_i_int16v s[1];
    attention_byte_block_idot(w, x, 0, 1, s);
    return s[0];
}

/// ``attention_byte_block_idot`` for four input rows at `x + stride·r`, into `out[0 ..< 4]`.
static inline __attribute__((always_inline)) void attention_byte_block_idot4(const void *w, const signed char *x, long stride,
                                                                              attention_i_int16v *out) {
    attention_byte_block_idot(w, x, stride, 4, out);
}

/// ``attention_byte_block_idot`` for eight input rows at `x + stride·r`, into `out[0 ..< 8]`.
static inline __attribute__((always_inline)) void attention_byte_block_idot8(const void *w, const signed char *x, long stride,
                                                                              attention_i_int16v *out) {
    attention_byte_block_idot(w, x, stride, 8, out);
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
