import _AttentionKernels

/// The kernels of `_AttentionKernels` compiled for AVX-512 (this module's target flags).
/// Call only when the CPU check says so; on other machines this module still builds, for the
/// baseline, and is never chosen.
public let avx512Kernels = KernelEntryPoints.compiled(for: FusedMultiplyAdd.self)
