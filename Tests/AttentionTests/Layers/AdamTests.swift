import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("Adam")
struct AdamTests {
    @Test("Adam minimizes a quadratic; AdamW's first step follows the formula")
    func adam() throws {
        var parameters = [try Tensor<Double>([[3.0, -2.0], [1.0, 5.0]])]
        var optimizer = Adam<Double>(learningRate: 0.1)
        for _ in 0..<300 {
            try optimizer.update(&parameters, gradients: [parameters[0].map { 2 * $0 }])   // ∇ of Σ p²
        }
        #expect(parameters[0].scalars.allSatisfy { abs($0) < 0.05 })
        // First AdamW step: m̂ = g, v̂ = g², so p ← p(1 - lr·λ) - lr·g/(|g| + ε).
        var p = [Tensor<Double>([2.0, -4.0])]
        var adamW = Adam<Double>(learningRate: 0.01, weightDecay: 0.1)
        try adamW.update(&p, gradients: [Tensor([0.5, -3.0])])
        #expect(maxAbsDifference(p[0].scalars, [2 * (1 - 0.001) - 0.01 * 0.5 / (0.5 + 1e-8), -4 * (1 - 0.001) + 0.01 * 3 / (3 + 1e-8)]) < 1e-12)
        #expect(thrownError { try adamW.update(&p, gradients: []) } == .invalidArgument("gradients"))
    }
}
