import Foundation

/// Gradients of ``LayerNorm``.
public struct LayerNormGradients<Scalar: AttentionScalar>: Sendable {
    /// The loss's gradient with respect to the input, its shape.
    public let input: Tensor<Scalar>
    /// With respect to γ, `[features]`.
    public let weight: Tensor<Scalar>
    /// With respect to β, `[features]`.
    public let bias: Tensor<Scalar>
}

extension LayerNorm {
    /// Backward of `y = γ·x̂ + β`, `x̂ = (x - μ)/σ`: `dγ = Σ dy·x̂`, `dβ = Σ dy`, and
    /// `dx = (g - mean(g) - x̂·mean(g·x̂)) / σ` with `g = dy·γ`.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func backward(input: Tensor<Scalar>, outputGradient: Tensor<Scalar>) throws -> LayerNormGradients<Scalar> {
        let n = weight.count
        guard input.shape.last == n, outputGradient.shape == input.shape else {
            throw AttentionError.shapeMismatch(argument: "outputGradient", shape: outputGradient.shape, other: "input",
                                               otherShape: input.shape, reason: "expected the input's shape")
        }
        let x = input.scalars.map(\.doubleValue), dy = outputGradient.scalars.map(\.doubleValue)
        let gamma = weight.scalars.map(\.doubleValue)
        var dx = [Double](repeating: 0, count: x.count)
        var dGamma = [Double](repeating: 0, count: n), dBeta = [Double](repeating: 0, count: n)
        for row in 0..<(x.count / n) {
            let slice = x[(row * n)..<((row + 1) * n)]
            let mean = slice.reduce(0, +) / Double(n)
            let variance = slice.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
            let inverse = 1 / (variance + epsilon).squareRoot()
            var meanG = 0.0, meanGX = 0.0
            for c in 0..<n {
                let xhat = (x[row * n + c] - mean) * inverse, g = dy[row * n + c] * gamma[c]
                dGamma[c] += dy[row * n + c] * xhat
                dBeta[c] += dy[row * n + c]
                meanG += g / Double(n)
                meanGX += g * xhat / Double(n)
            }
            for c in 0..<n {
                let xhat = (x[row * n + c] - mean) * inverse, g = dy[row * n + c] * gamma[c]
                dx[row * n + c] = (g - meanG - xhat * meanGX) * inverse
            }
        }
        return LayerNormGradients(input: .converting(dx, input.shape), weight: .converting(dGamma, [n]), bias: .converting(dBeta, [n]))
    }
}
