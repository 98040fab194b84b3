#include "CPUFeatures.h"

int attention_cpu_supports_avx512(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int attention_cpu_supports_avx2(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    // Every extension `-target-cpu haswell` lets the compiler use, not only the vector ones.
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")
        && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt")
        && __builtin_cpu_supports("movbe");
#else
    return 0;
#endif
}

int attention_cpu_supports_avx512_vnni(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return attention_cpu_supports_avx512() && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}
