#ifndef ATTENTION_FAST_EXP_H
#define ATTENTION_FAST_EXP_H

// The two steps of 2^x that AVX-512 has single instructions for: rounding to the nearest integer
// (vrndscaleps) and multiplying by a power of two given as a float (vscalefps, here with a zero mask).
// Swift has no access to them, and the header is compiled anew for each Swift module that inlines the
// kernels, for that module's instruction set: under AVX-512 the functions are the instructions; for
// any other target attention_exp2_has_native_steps() is 0 and the kernels use their own arithmetic.

typedef float attention_exp_float16v __attribute__((ext_vector_type(16)));

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/// 1 when the two functions below are native instructions on the target this header is compiled for.
static inline __attribute__((always_inline)) int attention_exp2_has_native_steps(void) {
#if defined(__AVX512F__)
    return 1;
#else
    return 0;
#endif
}

/// Each lane rounded to the nearest integer, ties to even (only with native steps; otherwise `x`).
static inline __attribute__((always_inline)) attention_exp_float16v attention_round_nearest16(attention_exp_float16v x) {
#if defined(__AVX512F__)
    return (attention_exp_float16v)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    return x;
#endif
}

/// `p · 2^n` where `x ≥ -126.5` or is NaN (which stays NaN), else exactly 0 (also for x = -inf), so no
/// weight below 2^-126 reaches the products (only with native steps; otherwise `p`).
static inline __attribute__((always_inline)) attention_exp_float16v attention_scale_or_zero16(
    attention_exp_float16v p, attention_exp_float16v n, attention_exp_float16v x) {
#if defined(__AVX512F__)
    __mmask16 keep = _mm512_cmp_ps_mask((__m512)x, _mm512_set1_ps(-126.5f), _CMP_NLT_UQ);
    return (attention_exp_float16v)_mm512_maskz_scalef_ps(keep, (__m512)p, (__m512)n);
#else
    (void)n;
    (void)x;
    return p;
#endif
}

#endif
