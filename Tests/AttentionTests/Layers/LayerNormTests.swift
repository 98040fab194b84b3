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
}
