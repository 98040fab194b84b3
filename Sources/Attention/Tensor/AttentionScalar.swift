/// A floating-point type that attention can be computed in: `Float` or `Double`.
///
/// Storage is in `Self`; the reference accumulates in `Double` whatever `Self` is, and the
/// conversions below are the only way values cross between the two.
public protocol AttentionScalar: BinaryFloatingPoint, NPYElement, Codable
where Self.RawSignificand: FixedWidthInteger {
    /// The value as a `Double`, exactly.
    var doubleValue: Double { get }
    /// The nearest representable value to `value`.
    init(fromDouble value: Double)
}

extension Float: AttentionScalar {
    @inlinable public var doubleValue: Double { Double(self) }
    @inlinable public init(fromDouble value: Double) { self = Float(value) }
}

extension Double: AttentionScalar {
    @inlinable public var doubleValue: Double { self }
    @inlinable public init(fromDouble value: Double) { self = value }
}
