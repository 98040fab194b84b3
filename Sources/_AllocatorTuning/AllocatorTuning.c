#include "AllocatorTuning.h"

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
