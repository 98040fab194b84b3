import Attention
import Testing

@Suite("cosineSimilarity")
struct SimilarityTests {
    @Test("Parallel, opposite, orthogonal and zero vectors")
    func values() throws {
        #expect(try cosineSimilarity([1, 2, 3] as [Double], [2, 4, 6]) == 1)
        #expect(try cosineSimilarity([1, 0] as [Float], [-3, 0]) == -1)
        #expect(try cosineSimilarity([1, 0] as [Double], [0, 5]) == 0)
        #expect(try cosineSimilarity([0, 0] as [Double], [1, 1]) == 0)
        #expect(abs(try cosineSimilarity([1, 1] as [Double], [1, 0]) - 0.5.squareRoot()) < 1e-15)
    }

    @Test("Vectors of different lengths are an error naming both lengths, not a cosine of the common part")
    func lengths() {
        #expect(throws: AttentionError.shapeMismatch(argument: "a", shape: [3], other: "b", otherShape: [2],
                                                     reason: "the vectors must have the same length")) {
            try cosineSimilarity([1, 2, 3] as [Double], [1, 2])
        }
    }
}
