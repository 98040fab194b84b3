/// How keys and values are stored in memory: `Float`, or a 16-bit format widened to `Float` in
/// registers as the kernels load them (F16C's `vcvtph2ps` on AVX2 and AVX-512, a shift for bfloat16),
/// so that a half-precision KV cache is read at half the bytes and never copied into Float32.
public enum KeyValueStorage: String, Sendable, CaseIterable {
    case float32, float16, bfloat16

    /// Bytes per element.
    @inlinable public var byteCount: Int { self == .float32 ? 4 : 2 }
}

/// An element type the kernels read keys and values in. The loads widen to `Float`; `M` says whether
/// the target converts half precision in hardware.
public protocol KeyValueElement: Sendable {
    static var storage: KeyValueStorage { get }
    /// Eight elements from `p`, widened.
    static func load8<M: MultiplyAdd>(_ p: UnsafePointer<Self>, _: M.Type) -> SIMD8<Float>
    /// Sixteen elements from `p`, widened.
    static func load16<M: MultiplyAdd>(_ p: UnsafePointer<Self>, _: M.Type) -> SIMD16<Float>
    /// One element, widened (for tails and packing).
    var floatValue: Float { get }
}

extension Float: KeyValueElement {
    @inlinable public static var storage: KeyValueStorage { .float32 }
    @inlinable @inline(__always)
    public static func load8<M: MultiplyAdd>(_ p: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inlinable @inline(__always)
    public static func load16<M: MultiplyAdd>(_ p: UnsafePointer<Float>, _: M.Type) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }
    @inlinable public var floatValue: Float { self }
}

/// An IEEE 754 binary16 value by its bits (Swift's `Float16` is not available on every platform
/// the library builds for, e.g. macOS on Intel).
@frozen
public struct HalfBits: KeyValueElement, Equatable {
    public var bitPattern: UInt16
    @inlinable public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    /// The nearest binary16 value to `value` (round to nearest, ties to even; overflow to infinity;
    /// NaN stays NaN).
    @inlinable
    public init(_ value: Float) {
        let bits = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let magnitude = bits & 0x7FFF_FFFF
        if magnitude >= 0x7F80_0000 {   // infinity or NaN (a quiet NaN keeps a mantissa bit)
            bitPattern = sign | 0x7C00 | (magnitude > 0x7F80_0000 ? 0x0200 : 0)
            return
        }
        if magnitude >= 0x4780_0000 {   // ≥ 65536: beyond the largest finite half after rounding
            bitPattern = sign | 0x7C00
            return
        }
        if magnitude < 0x3880_0000 {    // below 2^-14: a subnormal half (or zero)
            // Adding 0.5 aligns the value's bits so that the float adder rounds to the half's ulp (2^-24).
            let aligned = Float(bitPattern: magnitude) + 0.5
            bitPattern = sign | UInt16(truncatingIfNeeded: aligned.bitPattern - Float(0.5).bitPattern)
            return
        }
        // Normal: rebias the exponent (127 → 15) and round the 13 dropped mantissa bits to even.
        let odd = (magnitude >> 13) & 1
        let rounded = magnitude &+ 0xC800_0FFF &+ odd   // -(112 << 23) + 0xFFF + odd
        bitPattern = sign | UInt16(truncatingIfNeeded: rounded >> 13)
    }

    /// The exact Float value, by the same integer arithmetic as ``widen(_:)`` on one element (packing
    /// calls this per key: a vector widen of one element would be eight times the work).
    @inlinable public var floatValue: Float {
        @inline(__always) get {
            let bits = UInt32(bitPattern), magnitude = bits & 0x7FFF, shifted = magnitude << 13
            let value = magnitude >= 0x7C00
                ? Float(bitPattern: shifted | 0x7F80_0000) : Float(bitPattern: shifted) * Float(bitPattern: 0x7780_0000)
            return Float(bitPattern: value.bitPattern | ((bits & 0x8000) << 16))
        }
    }

    @inlinable public static var storage: KeyValueStorage { .float16 }

    /// The exact Float values of eight halves, by integer arithmetic: exponent and mantissa shifted
    /// into place and rescaled by 2^112 (which also normalizes subnormals), infinities and NaNs given
    /// the all-ones exponent, the sign put back.
    @inlinable @inline(__always)
    public static func widen(_ h: SIMD8<UInt16>) -> SIMD8<Float> {
        let bits = zeroExtend(h)
        let magnitude = bits & 0x7FFF
        let shifted = magnitude &<< 13
        let finite = unsafeBitCast(shifted, to: SIMD8<Float>.self) * Float(bitPattern: 0x7780_0000)  // 2^112
        let special = unsafeBitCast(shifted | 0x7F80_0000, to: SIMD8<Float>.self)
        let value = finite.replacing(with: special, where: magnitude .>= 0x7C00)
        return unsafeBitCast(unsafeBitCast(value, to: SIMD8<UInt32>.self) | ((bits & 0x8000) &<< 16), to: SIMD8<Float>.self)
    }

    @inlinable @inline(__always)
    public static func load8<M: MultiplyAdd>(_ p: UnsafePointer<HalfBits>, _: M.Type) -> SIMD8<Float> {
        let h = UnsafeRawPointer(p).loadUnaligned(as: SIMD8<UInt16>.self)
        #if !(os(macOS) && arch(x86_64))
        if M.convertsHalfPrecision { return SIMD8<Float>(unsafeBitCast(h, to: SIMD8<Float16>.self)) }
        #endif
        return widen(h)
    }

    @inlinable @inline(__always)
    public static func load16<M: MultiplyAdd>(_ p: UnsafePointer<HalfBits>, _: M.Type) -> SIMD16<Float> {
        // Two halves of eight: the standard library's 16-lane conversion is not inlined under AVX-512
        // code generation and runs lane by lane (a float16 decode read 0.8 GB/s through it).
        SIMD16(lowHalf: load8(p, M.self), highHalf: load8(p + 8, M.self))
    }
}

/// A bfloat16 value by its bits: the upper half of a Float (8 exponent bits, 7 mantissa bits).
@frozen
public struct BFloat16Bits: KeyValueElement, Equatable {
    public var bitPattern: UInt16
    @inlinable public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    /// The nearest bfloat16 value to `value` (round to nearest, ties to even; NaN stays NaN).
    @inlinable
    public init(_ value: Float) {
        let bits = value.bitPattern
        if value.isNaN {
            bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
            return
        }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        bitPattern = UInt16(truncatingIfNeeded: rounded >> 16)
    }

    @inlinable public var floatValue: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    @inlinable public static var storage: KeyValueStorage { .bfloat16 }

    @inlinable @inline(__always)
    public static func load8<M: MultiplyAdd>(_ p: UnsafePointer<BFloat16Bits>, _: M.Type) -> SIMD8<Float> {
        let h = UnsafeRawPointer(p).loadUnaligned(as: SIMD8<UInt16>.self)
        return unsafeBitCast(zeroExtend(h) &<< 16, to: SIMD8<Float>.self)
    }

    @inlinable @inline(__always)
    public static func load16<M: MultiplyAdd>(_ p: UnsafePointer<BFloat16Bits>, _: M.Type) -> SIMD16<Float> {
        SIMD16(lowHalf: load8(p, M.self), highHalf: load8(p + 8, M.self))
    }
}

/// Eight 16-bit lanes widened to 32 bits, written lane by lane so that the compiler emits one vector
/// zero-extension (the standard library's generic `truncatingIfNeeded:` conversion is sometimes left
/// as an out-of-line call that converts one lane at a time).
@inlinable @inline(__always)
func zeroExtend(_ h: SIMD8<UInt16>) -> SIMD8<UInt32> {
    SIMD8(UInt32(h[0]), UInt32(h[1]), UInt32(h[2]), UInt32(h[3]), UInt32(h[4]), UInt32(h[5]), UInt32(h[6]), UInt32(h[7]))
}

/// Converts `count` elements of `source` to Float in `destination` (one block of values for the
/// register tiles, which read Float).
@inlinable @inline(__always)
public func widenRows<E: KeyValueElement, M: MultiplyAdd>(
    _ source: UnsafePointer<E>, into destination: UnsafeMutablePointer<Float>, count: Int, _: M.Type
) {
    var i = 0
    while i + 8 <= count {
        UnsafeMutableRawPointer(destination + i).storeBytes(of: E.load8(source + i, M.self), as: SIMD8<Float>.self)
        i += 8
    }
    while i < count {
        destination[i] = source[i].floatValue
        i += 1
    }
}
