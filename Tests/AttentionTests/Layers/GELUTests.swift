import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("GELU")
struct GELUTests {
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
        #expect(thrownError { try geluTanhBackward(input: x, outputGradient: Tensor<Double>([1.0])) } == .shapeMismatch("outputGradient"))
    }

    @Test("Float GELU (vectorized erf) stays within 5e-7 of the Double erf form")
    func gelu() throws {
        let x = Tensor<Double>((-2000...2000).map { Double($0) / 200 })   // -10 ... 10, 4001 values (a tail too)
        let exact: Tensor<Double> = Attention.gelu(x)
        let fast: Tensor<Float> = Attention.gelu(x.map { Float($0) })
        #expect(maxAbsDifference(fast.scalars, exact.scalars) <= 5e-7 * 10)
        #expect(abs(Attention.gelu(Tensor<Double>([1.0])).scalars[0] - 0.841_344_746_068_542_9) < 1e-12)   // Φ(1)
    }
}
