/// A floating-point type that attention can be computed in: `Float` or `Double`.
///
/// Storage is in `Self`; the reference accumulates in `Double` whatever `Self` is, and the
/// conversions below are the only way values cross between the two.
public protocol AttentionScalar: BinaryFloatingPoint, TensorElement, Codable
where Self.RawSignificand: FixedWidthInteger {
    /// The value as a `Double`, exactly.
    var doubleValue: Double { get }
    /// The nearest representable value to `value`.
    init(fromDouble value: Double)
    /// The library's fast kernels for this type, or nil when it runs on the reference code. `Float`
    /// has them; the default is nil. Not meant to be implemented outside this module.
    static var _kernels: _ScalarKernels<Self>? { get }
}

extension AttentionScalar {
    /// None: other conformers run the reference code.
    public static var _kernels: _ScalarKernels<Self>? { nil }
}

extension Float: AttentionScalar {
    /// The value, exactly, as a Double.
    @inlinable public var doubleValue: Double { Double(self) }
    /// The Float nearest `value`.
    @inlinable public init(fromDouble value: Double) { self = Float(value) }
    /// The tiled kernels.
    public static var _kernels: _ScalarKernels<Float>? { .float }
}

extension Double: AttentionScalar {
    /// The value itself.
    @inlinable public var doubleValue: Double { self }
    /// `value` itself.
    @inlinable public init(fromDouble value: Double) { self = value }
}
