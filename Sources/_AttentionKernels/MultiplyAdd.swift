/// How a kernel computes `a · b + c` on vectors; chosen per instruction set at compile time.
///
/// The kernels are generic over this and fully inlined, so the choice costs nothing at run time.
/// It matters because on x86-64 without FMA in the target, `addingProduct` becomes one call to
/// `fmaf` per lane (hundreds of times slower), while a plain multiply and add stay vectorized.
public protocol MultiplyAdd {
    static func multiplyAdd(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float>
}

/// One fused multiply-add instruction: for targets that have FMA (AVX-512, arm64).
public enum FusedMultiplyAdd: MultiplyAdd {
    @inlinable @inline(__always)
    public static func multiplyAdd(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float> {
        c.addingProduct(a, b)
    }
}

/// A multiply then an add: for targets without guaranteed FMA (baseline x86-64).
public enum SeparateMultiplyAdd: MultiplyAdd {
    @inlinable @inline(__always)
    public static func multiplyAdd(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float> {
        a * b + c
    }
}
