import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("Layers")
struct LayerTests {
    @Test("Float Linear (the tiled matrix kernel, and for up to 4 rows the few-rows kernel) equals the Double loop on awkward shapes",
          arguments: [(1, 1, 1), (13, 45, 37), (8, 32, 64), (9, 33, 17), (64, 384, 384), (70, 100, 3),
                      (2, 45, 37), (3, 33, 17), (4, 1000, 130), (1, 2305, 768), (5, 70, 9)])
    func linear(shape: (rows: Int, outputs: Int, inputs: Int)) throws {
        var g = SplitMix64(seed: UInt64(shape.rows * 1000 + shape.outputs))
        let weight = try Tensor<Double>.randomNormal(shape: [shape.outputs, shape.inputs], using: &g)
        let bias = try Tensor<Double>.randomNormal(shape: [shape.outputs], using: &g)
        let x = try Tensor<Double>.randomNormal(shape: [shape.rows, shape.inputs], using: &g)
        let exact: Tensor<Double> = try Linear<Double>(weight: weight, bias: bias)(x)
        let floatWeight: Tensor<Float> = weight.map { Float($0) }
        let floatBias: Tensor<Float> = bias.map { Float($0) }
        let floatX: Tensor<Float> = x.map { Float($0) }
        let fast: Tensor<Float> = try Linear<Float>(weight: floatWeight, bias: floatBias)(floatX)
        let noBias: Tensor<Float> = try Linear<Float>(weight: floatWeight, bias: nil)(floatX)
        #expect(fast.shape == [shape.rows, shape.outputs])
        // Float accumulation over k terms of size ~1: error grows like √k · ulp.
        let tolerance = 1e-5 * Double(shape.inputs).squareRoot() * 4
        #expect(maxAbsDifference(fast.scalars, exact.scalars) <= tolerance)
        let shifted: [Double] = noBias.scalars.indices.map { Double(noBias.scalars[$0]) + bias.scalars[$0 % shape.outputs] }
        #expect(maxAbsDifference(shifted, exact.scalars) <= tolerance)
    }

    @Test("Float GELU, tanh form (vectorized), and its backward stay within a few ulps of the Double form")
    func geluTanh() throws {
        let x = Tensor<Double>((-3000...3000).map { Double($0) / 200 })   // -15 ... 15, 6001 values (a tail too)
        let exact: Tensor<Double> = Attention.geluTanh(x)
        let fast: Tensor<Float> = Attention.geluTanh(x.map { Float($0) })
        for (f, (e, v)) in zip(fast.scalars, zip(exact.scalars, x.scalars)) {
            #expect(abs(Double(f) - e) <= 4e-7 * max(1, abs(v)), "x = \(v)")
        }
        // 0.5 · 1 · (1 + tanh(√(2/π) · 1.044715)), by hand.
        #expect(abs(Attention.geluTanh(Tensor<Double>([1.0])).scalars[0] - 0.841_191_990_608_276_8) < 1e-12)
        let dy = try Tensor<Double>.randomNormal(shape: [6001], seed: 5)
        let backward: Tensor<Double> = try geluTanhBackward(input: x, outputGradient: dy)
        let fastBackward: Tensor<Float> = try geluTanhBackward(input: x.map { Float($0) }, outputGradient: dy.map { Float($0) })
        for i in 0..<6001 {
            #expect(abs(Double(fastBackward.scalars[i]) - backward.scalars[i]) <= 2e-6 * max(1, abs(dy.scalars[i]) * max(1, abs(x.scalars[i]))))
            // Against central differences of the Double form.
            let v = x.scalars[i], h = 1e-6
            let difference = (Attention.geluTanh(Tensor<Double>([v + h])).scalars[0] - Attention.geluTanh(Tensor<Double>([v - h])).scalars[0]) / (2 * h)
            #expect(abs(backward.scalars[i] - dy.scalars[i] * difference) <= 1e-7 * max(1, abs(dy.scalars[i])))
        }
        #expect(throws: AttentionError.self) { try geluTanhBackward(input: x, outputGradient: Tensor<Double>([1.0])) }
    }

    @Test("Float GELU (vectorized erf) stays within 5e-7 of the Double erf form")
    func gelu() throws {
        let x = Tensor<Double>((-2000...2000).map { Double($0) / 200 })   // -10 ... 10, 4001 values (a tail too)
        let exact: Tensor<Double> = Attention.gelu(x)
        let fast: Tensor<Float> = Attention.gelu(x.map { Float($0) })
        #expect(maxAbsDifference(fast.scalars, exact.scalars) <= 5e-7 * 10)
        #expect(abs(Attention.gelu(Tensor<Double>([1.0])).scalars[0] - 0.841_344_746_068_542_9) < 1e-12)   // Φ(1)
    }

    @Test("LayerNorm normalizes each row to mean β, spread γ")
    func layerNorm() throws {
        let norm = try LayerNorm<Double>(weight: Tensor([2.0, 2, 2, 2]), bias: Tensor([1.0, 1, 1, 1]), epsilon: 0)
        let y = try norm(Tensor([[1.0, 2, 3, 4], [10, 10, 10, 12]]))
        // Row 0: mean 2.5, variance 1.25.
        let expected = [1.0, 2, 3, 4].map { 1 + 2 * ($0 - 2.5) / 1.25.squareRoot() }
        #expect(maxAbsDifference(Array(y.scalars[0..<4]), expected) < 1e-12)
        #expect(throws: AttentionError.self) { try norm(Tensor([[1.0, 2, 3]])) }
    }
}
