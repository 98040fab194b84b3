#ifndef ATTENTION_PREFETCH_H
#define ATTENTION_PREFETCH_H

/// Asks the CPU to bring the cache line holding `address` into L2 ahead of a read (x86 `prefetcht1`,
/// arm64 `prfm pldl2keep`). A hint: it never faults, whatever the address. Inlined into Swift callers.
static inline __attribute__((always_inline)) void attention_prefetch_l2(const void *address) {
    __builtin_prefetch(address, 0, 2);
}

#endif
