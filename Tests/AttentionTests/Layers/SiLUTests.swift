import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("SiLU")
struct SiLUTests {
    @Test("SiLU is x·σ(x)")
    func siluValues() throws {
        let y = try silu(Tensor<Double>([0, 1, -1, 20]))
        #expect(y.scalars[0] == 0)
        #expect(abs(y.scalars[1] - 1 / (1 + exp(-1))) < 1e-15)
        #expect(abs(y.scalars[2] + 1 / (1 + exp(1))) < 1e-15)
        #expect(abs(y.scalars[3] - 20) < 1e-6)
    }

    @Test("SiLU in Float (vectorized) is the Double form's value on the same inputs, tails and partial vectors included",
          arguments: supportedSets)
    func siluFloat(instructionSet: String) throws {
        // 1003 values (a partial last vector), from −110 (σ underflows) through 0 to 110 (σ is 1).
        let xs = ((0..<1003).map { Float(-110 + 220 * Double($0) / 1002) } + [-1e-3, 1e-3, -0.0, 0.5, -0.5])
        let exact = try silu(Tensor<Double>(xs.map { Double($0) })).scalars
        let fast = try silu(Tensor<Float>(xs), options: tiled(instructionSet)).scalars
        for (i, (f, e)) in zip(fast, exact).enumerated() {
            // exp's argument −|x|·log2(e) is rounded to Float: for x < 0 (σ ≈ e^x) that is a relative
            // error of about 6e-8·|x|, on top of the polynomial's 1e-7. Below x ≈ −87.7, σ(x) < 2^−126
            // is flushed to 0: outputs under 1e-36 in magnitude may read 0.
            let bound = (3e-7 + 1e-7 * Double(abs(xs[i]))) * abs(e) + 1e-36
            #expect(abs(Double(f) - e) <= bound, "x = \(xs[i]): \(f) against \(e)")
        }
    }
}
