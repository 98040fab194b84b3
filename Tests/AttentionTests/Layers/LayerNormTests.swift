import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("LayerNorm")
struct LayerNormTests {
    @Test("LayerNorm normalizes each row to mean β, spread γ")
    func layerNorm() throws {
        let norm = try LayerNorm<Double>(weight: Tensor([2.0, 2, 2, 2]), bias: Tensor([1.0, 1, 1, 1]), epsilon: 0)
        let y = try norm(Tensor([[1.0, 2, 3, 4], [10, 10, 10, 12]]))
        // Row 0: mean 2.5, variance 1.25.
        let expected = [1.0, 2, 3, 4].map { 1 + 2 * ($0 - 2.5) / 1.25.squareRoot() }
        #expect(maxAbsDifference(Array(y.scalars[0..<4]), expected) < 1e-12)
        #expect(thrownError { try norm(Tensor([[1.0, 2, 3]])) } == .shapeMismatch("input"))
    }

    @Test("Float LayerNorm (two passes in Float) equals the Double loop on every instruction set and thread count, rows far from zero and a residual included",
          arguments: [(1, 3), (5, 2), (16, 4), (17, 3), (384, 300), (1000, 70)])
    func floatMatchesDouble(shape: (features: Int, rows: Int)) throws {
        var g = SplitMix64(seed: UInt64(shape.features * 31 + shape.rows))
        let (n, rows) = shape
        // Every third row sits at 100 with spread 1: the one-pass E[x²] − E[x]² form loses about
        // four digits there (ulp(10⁴) against a variance of 1), the two-pass form does not.
        let noise = try Tensor<Double>.randomNormal(shape: [rows, n], using: &g)
        let x: Tensor<Float> = try Tensor(shape: [rows, n], scalars: noise.scalars.indices.map { Float(noise.scalars[$0] + ($0 / n % 3 == 0 ? 100 : 0)) })
        let residual: Tensor<Float> = try Tensor<Double>.randomNormal(shape: [rows, n], using: &g).map { Float($0) }
        let weight = try Tensor<Double>.randomNormal(shape: [n], using: &g), bias = try Tensor<Double>.randomNormal(shape: [n], using: &g)
        let exact = try LayerNorm<Double>(weight: weight, bias: bias, epsilon: 1e-12)
        let norm = try LayerNorm<Float>(weight: weight.map { Float($0) }, bias: bias.map { Float($0) }, epsilon: 1e-12)
        let expected = try exact(x.map { Double($0) })
        // The sum rounded to Float first, as the Float layer forms it.
        let summed = try Tensor<Float>(shape: x.shape, scalars: zip(x.scalars, residual.scalars).map(+))
        let expectedSum = try exact(summed.map { Double($0) })
        // Measured at most 2.1e-6 (outputs reach |γ|·4 ≈ 10). Without the second pass's correction of
        // the mean, rows at 100 are off by 4-5e-5; the one-pass form by far more.
        let tolerance = 5e-6
        var executions = KernelInstructionSet.allCases.filter(\.isSupported).flatMap { isa in
            [1, 2].map { AttentionOptions(implementation: .tiled(isa), threads: $0) }
        }
        executions.append(AttentionOptions(implementation: .reference))
        for options in executions {
            let y = try norm(x, options: options)
            #expect(y.shape == x.shape)
            #expect(maxAbsDifference(y.scalars, expected.scalars) <= tolerance, "\(options.implementation) \(options.threads ?? 0) threads")
            let added = try norm(x, adding: residual, options: options)
            #expect(maxAbsDifference(added.scalars, expectedSum.scalars) <= tolerance, "residual, \(options.implementation)")
        }
        #expect(thrownError { try norm(x, adding: Tensor<Float>(zeros: [rows, n + 1])) } == .shapeMismatch("residual"))
    }
}
