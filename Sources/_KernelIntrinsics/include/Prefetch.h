#ifndef ATTENTION_PREFETCH_H
#define ATTENTION_PREFETCH_H

/// Asks the CPU to bring the cache line holding `address` into L2 ahead of a read (x86 `prefetcht1`,
/// arm64 `prfm pldl2keep`). A hint: it never faults, whatever the address. Inlined into Swift callers.
static inline __attribute__((always_inline)) void attention_prefetch_l2(const void *address) {
    __builtin_prefetch(address, 0, 2);
}

/// Asks the CPU to bring the cache line holding `address` close, for writing (x86 `prefetchw`,
/// arm64 `prfm pstl1keep`): ahead of stores into lines that are not cached, so that the stores do
/// not wait for them. A hint: it never faults, whatever the address. Inlined into Swift callers.
static inline __attribute__((always_inline)) void attention_prefetch_for_writing(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

#endif
