import _AttentionKernels

/// The kernels of `_AttentionKernels` compiled for AVX2 with FMA (this module's target flags), with
/// register tiles for sixteen 256-bit registers. Call only when the CPU check says so; on other
/// machines this module still builds, for the baseline, and is never chosen.
public let avx2Kernels = KernelEntryPoints.compiled(for: FusedMultiplyAddNarrow.self)
