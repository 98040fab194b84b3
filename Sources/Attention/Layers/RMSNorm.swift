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
}
