#include "AllocatorTuning.h"

// A libc header first: it defines __GLIBC__, which the lines below test (without one, both settings
// compiled to nothing).
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int attention_reuse_large_blocks(void) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, 32 << 20) && mallopt(M_TRIM_THRESHOLD, 256 << 20);
#else
    return 0;
#endif
}

int attention_use_one_arena(void) {
#if defined(__GLIBC__)
    return mallopt(M_ARENA_MAX, 1);
#else
    return 0;
#endif
}
