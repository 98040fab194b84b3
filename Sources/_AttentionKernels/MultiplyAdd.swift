/// How a kernel computes `a · b + c` on vectors, and which register tiles suit the target; chosen per
/// instruction set at compile time.
///
/// The kernels are generic over this and fully inlined, so the choice costs nothing at run time.
/// It matters because on x86-64 without FMA in the target, `addingProduct` becomes one call to
/// `fmaf` per lane (hundreds of times slower), while a plain multiply and add stay vectorized; and
/// because a tile of sixteen SIMD16 accumulators fits AVX-512's 32 zmm registers but spills on AVX2,
/// whose 16 ymm registers hold eight lanes each.
public protocol MultiplyAdd: SendableMetatype {
    static func multiplyAdd(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float>
    static func multiplyAdd(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float>
    /// The register tiles the micro-kernels use on this target.
    static var registers: RegisterShape { get }
    /// Whether the target converts half precision to Float in hardware (F16C, AVX-512, NEON); if
    /// not, the kernels widen it with integer arithmetic.
    static var convertsHalfPrecision: Bool { get }
}

/// The register file a micro-kernel is shaped for.
public enum RegisterShape: Sendable {
    /// 32 registers of 16 lanes (AVX-512): tiles of 8 rows × 2 SIMD16 (16 accumulators).
    case wide
    /// 16 registers of 8 lanes (AVX2): tiles of 4 rows × 3 SIMD8 (12 accumulators) where the layout
    /// allows, and the 8 × 32 shape as 6 × 2 and 2 × 4 SIMD8 where it is kept.
    case narrow
}

/// One fused multiply-add instruction per vector: the arithmetic of every target that has FMA. The
/// conforming types differ only in their register shape.
public protocol FusedArithmetic: MultiplyAdd {}

extension FusedArithmetic {
    @inlinable @inline(__always)
    public static func multiplyAdd(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float> {
        c.addingProduct(a, b)
    }
    @inlinable @inline(__always)
    public static func multiplyAdd(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float> {
        c.addingProduct(a, b)
    }
    /// Every FMA target converts half precision in hardware (F16C came before FMA on x86).
    @inlinable public static var convertsHalfPrecision: Bool { true }
}

/// Fused multiply-add, wide tiles: for AVX-512 and arm64.
public enum FusedMultiplyAdd: FusedArithmetic {
    @inlinable public static var registers: RegisterShape { .wide }
}

/// Fused multiply-add, wide tiles: for AVX-512 with VNNI (`_AttentionKernelsAVX512VNNI`). The same
/// arithmetic as ``FusedMultiplyAdd``, but a type of its own: an inlined generic function is emitted
/// once per specialization under one symbol, and the linker keeps one copy of each symbol, so two
/// kernel modules that specialized the same functions for the same type would share whichever
/// copy the linker kept, compiled for the one instruction set or the other. Every kernel module
/// specializes for its own type.
public enum FusedMultiplyAddVNNI: FusedArithmetic {
    @inlinable public static var registers: RegisterShape { .wide }
}

/// Fused multiply-add, narrow tiles: for AVX2 with FMA (16 ymm registers).
public enum FusedMultiplyAddNarrow: FusedArithmetic {
    @inlinable public static var registers: RegisterShape { .narrow }
}

/// A multiply then an add: for targets without guaranteed FMA (baseline x86-64).
public enum SeparateMultiplyAdd: MultiplyAdd {
    @inlinable @inline(__always)
    public static func multiplyAdd(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float> {
        a * b + c
    }
    @inlinable @inline(__always)
    public static func multiplyAdd(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float> {
        a * b + c
    }
    @inlinable public static var registers: RegisterShape { .wide }
    @inlinable public static var convertsHalfPrecision: Bool { false }
}
