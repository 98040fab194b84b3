import Foundation

/// Layer normalization over the last dimension: `y = (x - mean) / √(var + ε) · γ + β`, with the
/// biased variance, as PyTorch's `nn.LayerNorm`. Statistics accumulate in `Double`.
public struct LayerNorm<Scalar: AttentionScalar>: Sendable {
    /// γ, `[features]`.
    public let weight: Tensor<Scalar>
    /// β, `[features]`.
    public let bias: Tensor<Scalar>
    /// Added to the variance before the square root.
    public let epsilon: Double

    /// A layer with scale γ = `weight` and shift β = `bias`, both `[features]`.
    /// - Throws: ``AttentionError`` if they are not 1-D of one length.
    public init(weight: Tensor<Scalar>, bias: Tensor<Scalar>, epsilon: Double = 1e-5) throws {
        guard weight.rank == 1, bias.shape == weight.shape, weight.count > 0 else {
            throw AttentionError.shapeMismatch(argument: "bias", shape: bias.shape, other: "weight", otherShape: weight.shape,
                                               reason: "layer norm needs weight and bias of one shape [features]")
        }
        self.weight = weight
        self.bias = bias
        self.epsilon = epsilon
    }

    /// γ = 1, β = 0.
    public init(features: Int, epsilon: Double = 1e-5) throws {
        try self.init(weight: Tensor(repeating: 1, shape: [features]), bias: Tensor(zeros: [features]), epsilon: epsilon)
    }

    /// Normalizes each row of the last dimension to mean 0 and variance 1, then scales by γ and shifts by β.
    /// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` if the last dimension is not the layer's.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func callAsFunction(_ x: Tensor<Scalar>) throws -> Tensor<Scalar> {
        let n = weight.count
        guard x.shape.last == n else {
            throw AttentionError.shapeMismatch(argument: "input", shape: x.shape, other: "layer norm weight", otherShape: weight.shape,
                                               reason: "the last dimension must be \(n)")
        }
        var out = x.scalars
        for row in 0..<(x.count / n) {
            var sum = 0.0, squares = 0.0
            for c in 0..<n { let v = out[row * n + c].doubleValue; sum += v; squares += v * v }
            let mean = sum / Double(n)
            let variance = max(0, squares / Double(n) - mean * mean)
            let inverse = 1 / (variance + epsilon).squareRoot()
            for c in 0..<n {
                let normalized = (out[row * n + c].doubleValue - mean) * inverse
                out[row * n + c] = Scalar(fromDouble: normalized * weight.scalars[c].doubleValue + bias.scalars[c].doubleValue)
            }
        }
        return Tensor(uncheckedShape: x.shape, scalars: out)
    }
}
