import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("RMSNorm")
struct RMSNormTests {
    @Test("RMSNorm divides each row by its root mean square (worked out by hand), then scales")
    func rmsNorm() throws {
        let norm = try RMSNorm(weight: Tensor<Double>([1, 2, 0.5, -1]), epsilon: 0)
        // Row [1, 1, 1, 1] has RMS 1; row [2, -2, 2, -2] has RMS 2; row [3, 4, 0, 0] has RMS 2.5.
        let y = try norm(Tensor<Double>([[1, 1, 1, 1], [2, -2, 2, -2], [3, 4, 0, 0]]))
        let expected: [Double] = [1, 2, 0.5, -1, 1, -2, 0.5, 1, 1.2, 3.2, 0, 0]
        #expect(zip(y.scalars, expected).allSatisfy { abs($0 - $1) < 1e-15 })
        let withEpsilon = try RMSNorm(weight: Tensor<Double>([1]), epsilon: 3)(Tensor<Double>([[1]]))
        #expect(withEpsilon.scalars == [0.5])   // 1 / √(1 + 3)
        #expect(thrownError { try norm(Tensor<Double>([[1, 2, 3]])) } == .shapeMismatch("input"))
        #expect(thrownError { try RMSNorm(weight: Tensor<Double>(zeros: [2, 2])) } == .invalidShape("weight"))
        #expect(thrownError { try RMSNorm(weight: Tensor<Double>([1]), epsilon: -1) } == .invalidArgument("epsilon"))
    }

    @Test("Float rows (vectorized) equal the Double formula rounded once, to an ulp, on widths around the vectors of eight")
    func floatRows() throws {
        var g = SplitMix64(seed: 0x125)
        for n in [1, 7, 8, 9, 17, 256, 640, 1001] {
            let weight = try Tensor<Float>.randomUniform(shape: [n], in: -2...2, using: &g)
            let x = try Tensor<Float>.randomUniform(shape: [3, n], in: -30...30, using: &g)
            let y = try RMSNorm(weight: weight, epsilon: 1e-6)(x)
            for row in 0..<3 {
                let values = x.scalars[(row * n)..<((row + 1) * n)].map(Double.init)
                let inverse = 1 / (values.reduce(0) { $0 + $1 * $1 } / Double(n) + 1e-6).squareRoot()
                for c in 0..<n {
                    let want = Float(values[c] * inverse * Double(weight.scalars[c]))
                    #expect(abs(y.scalars[row * n + c] - want) <= want.ulp, "n \(n) row \(row) column \(c)")
                }
            }
        }
    }
}
