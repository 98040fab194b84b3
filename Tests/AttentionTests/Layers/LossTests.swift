import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("Cross-entropy")
struct LossTests {
    @Test("Cross-entropy: the loss of uniform logits is ln C; the gradient matches differences")
    func crossEntropyLoss() throws {
        let uniform = try crossEntropy(logits: Tensor<Double>(zeros: [2, 4]), targets: [0, 3])
        #expect(abs(uniform.loss - log(4.0)) < 1e-12)
        let logits = try Tensor<Double>.randomNormal(shape: [3, 5], standardDeviation: 3, seed: 5)
        let grad = try crossEntropy(logits: logits, targets: [4, 0, 2]).gradient
        #expect(maxAbsDifference(grad.scalars, try centralDifferences(logits) { try crossEntropy(logits: $0, targets: [4, 0, 2]).loss }) < 1e-7)
        #expect(thrownError { try crossEntropy(logits: logits, targets: [4, 0, 5]) } == .invalidArgument("targets"))
    }
}
