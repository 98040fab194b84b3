import _AttentionKernels

/// The block-quantized products of `_AttentionKernels` compiled for AVX-512 with VNNI (this module's
/// target flags): the integer products become `vpdpbusd`. Only these, not the whole kernel table: the
/// library uses them in place of the AVX-512 table's on CPUs with VNNI. Call only when the CPU check
/// says so.
public let avx512VNNIQuantized = QuantizedEntryPoints.compiled(for: FusedMultiplyAddVNNI.self)
