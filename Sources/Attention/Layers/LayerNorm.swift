import Foundation

/// Layer normalization over the last dimension: `y = (x - mean) / √(var + ε) · γ + β`, with the
/// biased variance, as PyTorch's `nn.LayerNorm`. `Float` computes in two passes in Float (the
/// mean, then the deviations from it, whose mean corrects the first: the corrected two-pass
/// algorithm); other types accumulate in `Double`.
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
    ///
    /// `options` chooses the code as for ``Linear``: `Float` runs on the kernel of the best instruction
    /// set this CPU has (or the one ``AttentionImplementation/tiled(_:)`` forces), its rows shared among
    /// `options.threads` threads when there are many; ``AttentionImplementation/reference`` and other
    /// types run the `Double` loop.
    /// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` if the last
    ///   dimension is not the layer's; ``AttentionError/invalidArgument(argument:reason:)`` for options
    ///   this CPU or scalar type cannot run.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func callAsFunction(_ x: Tensor<Scalar>, options: AttentionOptions = AttentionOptions()) throws -> Tensor<Scalar> {
        try normalized(x, adding: nil, options: options)
    }

    /// `layerNorm(x + residual)` in one pass over memory: the sum a post-norm transformer block
    /// (BERT's) normalizes after each sublayer, without a tensor for the sum.
    /// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` if the last
    ///   dimension is not the layer's, or `residual`'s shape is not `x`'s; as
    ///   ``callAsFunction(_:options:)`` for `options`.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func callAsFunction(
        _ x: Tensor<Scalar>, adding residual: Tensor<Scalar>, options: AttentionOptions = AttentionOptions()
    ) throws -> Tensor<Scalar> {
        guard residual.shape == x.shape else {
            throw AttentionError.shapeMismatch(argument: "residual", shape: residual.shape, other: "input", otherShape: x.shape,
                                               reason: "the residual is added to the input element by element")
        }
        return try normalized(x, adding: residual, options: options)
    }

    /// `Float` on a kernel runs the corrected two-pass form in Float (`layerNormRows`); the
    /// reference and other types accumulate in `Double`.
    private func normalized(_ x: Tensor<Scalar>, adding residual: Tensor<Scalar>?, options: AttentionOptions) throws -> Tensor<Scalar> {
        let execution = try options.execution(tiledComputes: Scalar._kernels != nil, scalar: Scalar.self)
        let n = weight.count
        guard x.shape.last == n else {
            throw AttentionError.shapeMismatch(argument: "input", shape: x.shape, other: "layer norm weight", otherShape: weight.shape,
                                               reason: "the last dimension must be \(n)")
        }
        var out = x.scalars
        if let kernels = Scalar._kernels, let isa = execution.instructionSet {
            kernels.layerNorm(&out, residual?.scalars, weight.scalars, bias.scalars, epsilon, n, isa, execution.threads)
            return Tensor(uncheckedShape: x.shape, scalars: out)
        }
        for row in 0..<(x.count / n) {
            var sum = 0.0, squares = 0.0
            for c in 0..<n {
                if let residual { out[row * n + c] += residual.scalars[row * n + c] }
                let v = out[row * n + c].doubleValue
                sum += v
                squares += v * v
            }
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
