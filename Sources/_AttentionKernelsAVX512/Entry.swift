import _AttentionKernels

/// The kernels of `_AttentionKernels` compiled for AVX-512 (this module's target flags).
/// Call only when `attention_cpu_supports_avx512()` says so; on other machines this module still
/// builds, for the baseline, and is never chosen.
public enum AVX512Kernels {
    public static func forward(_ d: UnsafePointer<ForwardDescriptor>, item: Int, scratch: ForwardScratch) {
        forwardItem(d, item: item, scratch: scratch, FusedMultiplyAdd.self)
    }

    public static func packKeys(
        _ k: UnsafePointer<Float>, D: Int, keyBlock: Int, count: Int, into kt: UnsafeMutablePointer<Float>
    ) {
        packKeysTransposed(k, D: D, keyBlock: keyBlock, count: count, into: kt)
    }

    public static func merge(_ d: UnsafePointer<ForwardDescriptor>, rows: Range<Int>) {
        mergeSplits(d, rows: rows)
    }

    /// See ``multiplyAddProbe(iterations:seed:_:)``: 512 flops per iteration.
    public static func probe(iterations: Int, seed: Float) -> Float {
        multiplyAddProbe(iterations: iterations, seed: seed, FusedMultiplyAdd.self)
    }

    /// See ``multiplyRows(a:packedB:bias:c:rows:n:k:scratch:_:)``.
    public static func multiply(
        a: UnsafePointer<Float>, packedB b: UnsafePointer<Float>, bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>,
        rows: Range<Int>, n: Int, k: Int, scratch: UnsafeMutablePointer<Float>
    ) {
        multiplyRows(a: a, packedB: b, bias: bias, c: c, rows: rows, n: n, k: k, scratch: scratch, FusedMultiplyAdd.self)
    }

    /// GELU (erf form, absolute error below 2e-7) in place.
    public static func gelu(_ p: UnsafeMutablePointer<Float>, count: Int) {
        geluInPlace(p, count: count, FusedMultiplyAdd.self)
    }

    /// The tiled backward for one key block: its dK and dV, and its parts of dQ into `dQBuffer` and of
    /// the bias gradient into `dBiasBuffer`.
    public static func backward(
        _ d: UnsafePointer<BackwardDescriptor>, item: Int, scratch: ForwardScratch, dQBuffer: UnsafeMutablePointer<Float>,
        dBiasBuffer: UnsafeMutablePointer<Float>?
    ) {
        backwardKeyItem(d, item: item, scratch: scratch, dQBuffer: dQBuffer, dBiasBuffer: dBiasBuffer, FusedMultiplyAdd.self)
    }
}
