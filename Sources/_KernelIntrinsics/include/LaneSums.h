#ifndef ATTENTION_LANE_SUMS_H
#define ATTENTION_LANE_SUMS_H

// Horizontal sums of several vectors at once, as one tree of shuffles and adds shared by all of
// them. Written with clang's portable vector extensions: the shuffles are target-independent IR,
// inlined into the Swift kernels and lowered for each kernel module's instruction set (AVX-512,
// AVX2, SSE2, NEON). The same trees written with Swift's SIMD halves and lane initializers were
// lowered to scalar extracts and inserts, three to four times the instructions.
//
// Both functions return the sums in argument order; the additions pair lanes as a balanced tree,
// so each sum is rounded like a pairwise sum of its lanes.

typedef float attention_float16v __attribute__((ext_vector_type(16)));
typedef float attention_float8v __attribute__((ext_vector_type(8)));

/// The lane sums of eight 16-lane vectors: [Σa0, Σa1, ..., Σa7].
static inline __attribute__((always_inline)) attention_float8v attention_lane_sums16x8(
    attention_float16v a0, attention_float16v a1, attention_float16v a2, attention_float16v a3,
    attention_float16v a4, attention_float16v a5, attention_float16v a6, attention_float16v a7) {
    // [a0 folded to 8 | a1 folded to 8], and so on.
    attention_float16v f0 = __builtin_shufflevector(a0, a1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
        + __builtin_shufflevector(a0, a1, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    attention_float16v f1 = __builtin_shufflevector(a2, a3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
        + __builtin_shufflevector(a2, a3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    attention_float16v f2 = __builtin_shufflevector(a4, a5, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
        + __builtin_shufflevector(a4, a5, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    attention_float16v f3 = __builtin_shufflevector(a6, a7, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
        + __builtin_shufflevector(a6, a7, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    // Four-lane groups: [a0 | a2 | a1 | a3] folded to 4 each, and [a4 | a6 | a5 | a7].
    attention_float16v q0 = __builtin_shufflevector(f0, f1, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27)
        + __builtin_shufflevector(f0, f1, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    attention_float16v q1 = __builtin_shufflevector(f2, f3, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27)
        + __builtin_shufflevector(f2, f3, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    // Pairs: each four-lane group holds [x folded to 2 | y folded to 2].
    attention_float16v p = __builtin_shufflevector(q0, q1, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29)
        + __builtin_shufflevector(q0, q1, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    // s = [Σa0, Σa4, Σa2, Σa6, Σa1, Σa5, Σa3, Σa7]
    attention_float8v s = __builtin_shufflevector(p, p, 0, 2, 4, 6, 8, 10, 12, 14)
        + __builtin_shufflevector(p, p, 1, 3, 5, 7, 9, 11, 13, 15);
    return __builtin_shufflevector(s, s, 0, 4, 2, 6, 1, 5, 3, 7);
}

/// The lane sums of eight 8-lane vectors: [Σa0, Σa1, ..., Σa7].
static inline __attribute__((always_inline)) attention_float8v attention_lane_sums8x8(
    attention_float8v a0, attention_float8v a1, attention_float8v a2, attention_float8v a3,
    attention_float8v a4, attention_float8v a5, attention_float8v a6, attention_float8v a7) {
    // [a0 folded to 4 | a1 folded to 4], and so on.
    attention_float8v f0 = __builtin_shufflevector(a0, a1, 0, 1, 2, 3, 8, 9, 10, 11)
        + __builtin_shufflevector(a0, a1, 4, 5, 6, 7, 12, 13, 14, 15);
    attention_float8v f1 = __builtin_shufflevector(a2, a3, 0, 1, 2, 3, 8, 9, 10, 11)
        + __builtin_shufflevector(a2, a3, 4, 5, 6, 7, 12, 13, 14, 15);
    attention_float8v f2 = __builtin_shufflevector(a4, a5, 0, 1, 2, 3, 8, 9, 10, 11)
        + __builtin_shufflevector(a4, a5, 4, 5, 6, 7, 12, 13, 14, 15);
    attention_float8v f3 = __builtin_shufflevector(a6, a7, 0, 1, 2, 3, 8, 9, 10, 11)
        + __builtin_shufflevector(a6, a7, 4, 5, 6, 7, 12, 13, 14, 15);
    // Pairs within each four-lane half: [a0 2, a2 2 | a1 2, a3 2] and [a4 2, a6 2 | a5 2, a7 2].
    attention_float8v q0 = __builtin_shufflevector(f0, f1, 0, 1, 8, 9, 4, 5, 12, 13)
        + __builtin_shufflevector(f0, f1, 2, 3, 10, 11, 6, 7, 14, 15);
    attention_float8v q1 = __builtin_shufflevector(f2, f3, 0, 1, 8, 9, 4, 5, 12, 13)
        + __builtin_shufflevector(f2, f3, 2, 3, 10, 11, 6, 7, 14, 15);
    // s = [Σa0, Σa4, Σa2, Σa6, Σa1, Σa5, Σa3, Σa7]
    attention_float8v s = __builtin_shufflevector(q0, q1, 0, 8, 2, 10, 4, 12, 6, 14)
        + __builtin_shufflevector(q0, q1, 1, 9, 3, 11, 5, 13, 7, 15);
    return __builtin_shufflevector(s, s, 0, 4, 2, 6, 1, 5, 3, 7);
}

#endif
