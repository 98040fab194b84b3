import Attention
import AttentionModels
import Foundation
import Testing

/// The library called from many tasks at once on shared inputs: attention, a multi-head layer and the
/// real encoder each give, in every task, exactly (bitwise) what one call alone gives. Every shared
/// value is immutable; the kernels' scratch is per call and per worker, or a pooled buffer that one
/// call holds until it returns. Run once under
/// ThreadSanitizer too (`swift build -c release -Xswiftc -sanitize=thread --scratch-path .build-tsan
/// --build-tests`, then `swift test --skip-build ... --filter Concurrency`).
@Suite("Concurrent calls")
struct ConcurrencyTests {
    @Test("scaledDotProductAttention, MultiHeadAttention and the MiniLM encoder from 8 tasks at once")
    func concurrentCalls() async throws {
        let q = try Tensor<Float>.randomNormal(shape: [2, 4, 67, 32], seed: 1)
        let k = try Tensor<Float>.randomNormal(shape: [2, 2, 131, 32], seed: 2)
        let v = try Tensor<Float>.randomNormal(shape: [2, 2, 131, 32], seed: 3)
        let layer = try MultiHeadAttention<Float>(embedDimension: 64, numHeads: 4, seed: 4)
        let x = try Tensor<Float>.randomNormal(shape: [3, 29, 64], seed: 5)
        let model = try MiniLMTests.model.get()
        let sentences = ["The cat sat on the mat.", "Attention is a weighted average.", "Concurrency, tested."]

        let attention = try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal, returning: [.weights, .logSumExp])
        let heads = try layer(x, mask: .causal, returning: .weights)
        let embeddings = try model.embed(sentences)

        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for _ in 0..<3 {
                        switch task % 3 {
                        case 0:
                            let r = try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal, returning: [.weights, .logSumExp])
                            #expect(r.output.scalars == attention.output.scalars && r.weights?.scalars == attention.weights?.scalars
                                    && r.logSumExp?.scalars == attention.logSumExp?.scalars)
                        case 1:
                            let r = try layer(x, mask: .causal, returning: .weights)
                            #expect(r.output.scalars == heads.output.scalars && r.weights?.scalars == heads.weights?.scalars)
                        default:
                            #expect(try model.embed(sentences) == embeddings)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test("Attention on different inputs from 8 tasks at once: each task gets its own single-call bits (the kernels' pooled scratch is never shared)")
    func differentInputs() async throws {
        // 700 queries: eleven row blocks, so each call packs its keys into a buffer from the scratch
        // pool, and runs long enough (a few ms) for the calls of two tasks to overlap.
        let inputs = try (0..<8).map { task in
            try (0..<3).map { part in try Tensor<Float>.randomNormal(shape: [1, 4, 700, 32], seed: UInt64(10 * task + part)) }
        }
        let expected = try inputs.map { try scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2]).output.scalars }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for _ in 0..<4 {
                        let r = try scaledDotProductAttention(query: inputs[task][0], key: inputs[task][1], value: inputs[task][2])
                        // A Bool, so that a failure does not print 90,000 floats twice.
                        let same = r.output.scalars == expected[task]
                        #expect(same, "task \(task)")
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
