#ifndef ATTENTION_CPU_FEATURES_H
#define ATTENTION_CPU_FEATURES_H

/// 1 if this CPU (and the operating system) supports the AVX-512 subsets the kernels use
/// (F, VL, BW, DQ) and FMA; 0 otherwise, and always 0 on non-x86 machines.
int attention_cpu_supports_avx512(void);

/// 1 if this CPU supports what code compiled for `-target-cpu haswell` may use: AVX2, FMA, F16C,
/// BMI1/2, POPCNT and MOVBE; 0 otherwise, and always 0 on non-x86 machines.
int attention_cpu_supports_avx2(void);

/// 1 if this CPU supports the AVX-512 subsets above and VNNI (what `-target-cpu cascadelake` adds);
/// 0 otherwise, and always 0 on non-x86 machines.
int attention_cpu_supports_avx512_vnni(void);

#endif
