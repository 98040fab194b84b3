#ifndef ATTENTION_ALLOCATOR_TUNING_H
#define ATTENTION_ALLOCATOR_TUNING_H

/// With glibc: serve blocks of up to 32 MiB from the heap and keep up to 256 MiB of freed memory
/// instead of returning it to the system. Elsewhere: nothing. Returns 1 if the settings were applied.
int attention_reuse_large_blocks(void);

/// With glibc: every thread allocates from the main arena (glibc's per-thread arenas live in 64 MiB
/// heaps that it shrinks and unmaps as blocks come and go). Must run before a second thread
/// allocates: glibc fixes the number of arenas then. Elsewhere: nothing. Returns 1 if applied.
int attention_use_one_arena(void);

#endif
