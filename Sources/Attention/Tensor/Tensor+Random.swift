import Foundation

/// SplitMix64: a small, fast, seedable generator (Steele, Lea and Flood, 2014).
///
/// The same seed gives the same sequence on every platform, which makes experiments, tests and
/// initializations repeatable.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform `Double` in [0, 1) with 53 random bits.
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A standard normal `Double` (Box–Muller; the second value of each pair is discarded for simplicity).
    public mutating func nextNormal() -> Double {
        let u1 = 1 - nextUnit()   // (0, 1]: log is finite
        let u2 = nextUnit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

extension Tensor where Element: AttentionScalar {
    /// A tensor of independent normal samples with the given mean and standard deviation.
    public static func randomNormal(
        shape: [Int], mean: Double = 0, standardDeviation: Double = 1,
        using generator: inout SplitMix64
    ) throws -> Tensor {
        let count = try allocationCount(of: shape, argument: "shape")
        var scalars = [Element]()
        scalars.reserveCapacity(count)
        for _ in 0..<count {
            scalars.append(Element(fromDouble: mean + standardDeviation * generator.nextNormal()))
        }
        return Tensor(uncheckedShape: shape, scalars: scalars)
    }

    /// A tensor of independent normal samples from a fresh generator seeded with `seed`.
    public static func randomNormal(
        shape: [Int], mean: Double = 0, standardDeviation: Double = 1, seed: UInt64
    ) throws -> Tensor {
        var generator = SplitMix64(seed: seed)
        return try randomNormal(shape: shape, mean: mean, standardDeviation: standardDeviation,
                                using: &generator)
    }

    /// A tensor of independent samples uniform in `range`.
    public static func randomUniform(
        shape: [Int], in range: ClosedRange<Double> = 0...1, using generator: inout SplitMix64
    ) throws -> Tensor {
        let count = try allocationCount(of: shape, argument: "shape")
        let width = range.upperBound - range.lowerBound
        var scalars = [Element]()
        scalars.reserveCapacity(count)
        for _ in 0..<count {
            scalars.append(Element(fromDouble: range.lowerBound + width * generator.nextUnit()))
        }
        return Tensor(uncheckedShape: shape, scalars: scalars)
    }

    /// A tensor of independent samples uniform in `range` from a fresh generator seeded with `seed`.
    public static func randomUniform(
        shape: [Int], in range: ClosedRange<Double> = 0...1, seed: UInt64
    ) throws -> Tensor {
        var generator = SplitMix64(seed: seed)
        return try randomUniform(shape: shape, in: range, using: &generator)
    }
}
