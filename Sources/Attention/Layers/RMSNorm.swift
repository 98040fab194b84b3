import Foundation

/// Root-mean-square normalization over the last dimension, `y = x / √(mean(x²) + ε) · γ`, as
/// transformers' `LlamaRMSNorm` (no mean subtracted, no shift). The mean of squares accumulates in
/// `Double`.
public struct RMSNorm<Scalar: AttentionScalar>: Sendable {
    /// γ, `[features]`.
    public let weight: Tensor<Scalar>
    /// Added to the mean of squares before the square root.
    public let epsilon: Double

    /// A layer with scale γ = `weight`, `[features]`.
    /// - Throws: ``AttentionError/invalidShape(argument:shape:reason:)`` if `weight` is not 1-D and non-empty.
    public init(weight: Tensor<Scalar>, epsilon: Double = 1e-6) throws {
        guard weight.rank == 1, weight.count > 0 else {
            throw AttentionError.invalidShape(argument: "weight", shape: weight.shape, reason: "RMS norm needs a weight of shape [features]")
        }
        guard epsilon >= 0, epsilon.isFinite else {
            throw AttentionError.invalidArgument(argument: "epsilon", reason: "must be finite and at least 0, got \(epsilon)")
        }
        self.weight = weight
        self.epsilon = epsilon
    }

    /// Scales each row of the last dimension to a root mean square of 1, then by γ.
    /// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` if the last dimension is not the layer's.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func callAsFunction(_ x: Tensor<Scalar>) throws -> Tensor<Scalar> {
        let n = weight.count
        guard x.shape.last == n else {
            throw AttentionError.shapeMismatch(argument: "input", shape: x.shape, other: "RMS norm weight", otherShape: weight.shape,
                                               reason: "the last dimension must be \(n)")
        }
        if Scalar.self == Float.self {
            // Through rebound pointers: casting the arrays (`as? [Float]`, `as! [Scalar]`) copied them
            // element by element.
            let count = x.count
            let scalars = [Scalar](unsafeUninitializedCapacity: count) { out, initialized in
                x.scalars.withUnsafeBufferPointer { xs in
                    weight.scalars.withUnsafeBufferPointer { gs in
                        xs.withMemoryRebound(to: Float.self) { xf in
                            gs.withMemoryRebound(to: Float.self) { gf in
                                out.withMemoryRebound(to: Float.self) { of in Self.normalize(xf, gamma: gf, into: of, epsilon: epsilon) }
                            }
                        }
                    }
                }
                initialized = count
            }
            return Tensor(uncheckedShape: x.shape, scalars: scalars)
        }
        var out = x.scalars
        let gamma = weight.scalars
        for row in 0..<(x.count / n) {
            var squares = 0.0
            for c in 0..<n { let v = out[row * n + c].doubleValue; squares += v * v }
            let inverse = 1 / (squares / Double(n) + epsilon).squareRoot()
            for c in 0..<n {
                out[row * n + c] = Scalar(fromDouble: out[row * n + c].doubleValue * inverse * gamma[c].doubleValue)
            }
        }
        return Tensor(uncheckedShape: x.shape, scalars: out)
    }

    /// The `Float` rows of `x` normalized into `out` (as many): the same arithmetic as the generic
    /// loop above (squares summed in `Double`, each output `x·inverse·γ` in `Double`, rounded once),
    /// in vectors of eight, the squares in eight partial sums added at the end.
    private static func normalize(_ x: UnsafeBufferPointer<Float>, gamma: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>,
                                  epsilon: Double) {
        let n = gamma.count, rows = x.count / n, vectors = n / 8
        guard let x = x.baseAddress, let g = gamma.baseAddress, let o = out.baseAddress else { return }
        @inline(__always) func wide(_ p: UnsafePointer<Float>) -> SIMD8<Double> {
            SIMD8<Double>(UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self))
        }
        for row in 0..<rows {
            let xr = x + row * n, orow = o + row * n
            var partial = SIMD8<Double>.zero
            for v in 0..<vectors { let w = wide(xr + 8 * v); partial += w * w }
            var squares = partial.sum()
            for c in (8 * vectors)..<n { let d = Double(xr[c]); squares += d * d }
            let inverse = 1 / (squares / Double(n) + epsilon).squareRoot()
            for v in 0..<vectors {
                let y = SIMD8<Float>(wide(xr + 8 * v) * inverse * wide(g + 8 * v))
                UnsafeMutableRawPointer(orow + 8 * v).storeBytes(of: y, as: SIMD8<Float>.self)
            }
            for c in (8 * vectors)..<n { orow[c] = Float(Double(xr[c]) * inverse * Double(g[c])) }
        }
    }
}
