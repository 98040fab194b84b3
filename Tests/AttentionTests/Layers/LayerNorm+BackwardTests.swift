import Attention
import AttentionTestSupport
import Foundation
import Testing

/// The backward pass against central finite differences, in Double.
@Suite("LayerNorm backward")
struct LayerNormBackwardTests {
    @Test("LayerNorm: dx, dγ, dβ")
    func layerNorm() throws {
        var g = SplitMix64(seed: 2)
        let gamma = try Tensor<Double>.randomNormal(shape: [6], using: &g), beta = try Tensor<Double>.randomNormal(shape: [6], using: &g)
        let x = try Tensor<Double>.randomNormal(shape: [3, 6], using: &g), r = try Tensor<Double>.randomNormal(shape: [3, 6], using: &g)
        let norm = try LayerNorm(weight: gamma, bias: beta, epsilon: 1e-5)
        let grads = try norm.backward(input: x, outputGradient: r)
        #expect(maxAbsDifference(grads.input.scalars, try centralDifferences(x) { dot(try norm($0), r) }) < 1e-7)
        #expect(maxAbsDifference(grads.weight.scalars, try centralDifferences(gamma) { dot(try LayerNorm(weight: $0, bias: beta, epsilon: 1e-5)(x), r) }) < 1e-7)
        #expect(maxAbsDifference(grads.bias.scalars, try centralDifferences(beta) { dot(try LayerNorm(weight: gamma, bias: $0, epsilon: 1e-5)(x), r) }) < 1e-7)
    }
}
