#ifndef ATTENTION_ALLOCATOR_TUNING_H
#define ATTENTION_ALLOCATOR_TUNING_H

/// With glibc: serve blocks of up to 32 MiB from the heap and keep up to 256 MiB of freed memory
/// instead of returning it to the system. Elsewhere: nothing. Returns 1 if the settings were applied.
int attention_reuse_large_blocks(void);

#endif
