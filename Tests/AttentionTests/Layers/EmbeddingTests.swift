import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("Embedding")
struct EmbeddingTests {
    @Test("Embedding: repeated ids accumulate; bad ids are errors")
    func embedding() throws {
        let e = try Embedding<Double>(vocabulary: 5, dimension: 3, seed: 3)
        let ids = [1, 4, 1], r = try Tensor<Double>.randomNormal(shape: [3, 3], seed: 4)
        let grad = try e.backward(ids: ids, outputGradient: r)
        #expect(maxAbsDifference(grad.scalars, try centralDifferences(e.table) { dot(try Embedding(table: $0)(ids), r) }) < 1e-7)
        #expect(thrownError { try e([5]) } == .invalidArgument("ids"))
    }
}
