import Attention
import Testing

/// The tiled forward's plan, checked as a value: its rules, not its numbers copied back.
@Suite("Forward plan")
struct ForwardPlanTests {
    func plan(B: Int = 1, Hq: Int, Hkv: Int, Nq: Int, Nk: Int, D: Int, threads: Int,
              outputs: AttentionOutputs = []) throws -> ForwardPlan {
        var g = SplitMix64(seed: 7)
        let q = try Tensor<Float>.randomNormal(shape: [B, Hq, Nq, D], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [B, Hkv, Nk, D], using: &g)
        let result = try scaledDotProductAttention(query: q, key: k, value: k, returning: outputs,
                                                   options: AttentionOptions(threads: threads))
        let plan = try #require(result.path.plan)
        #expect(result.path.detail == plan.description)
        #expect(plan.instructionSet == .best)
        return plan
    }

    @Test("Prefill: one item per row block and head, keys packed once, no split")
    func prefill() throws {
        let p = try plan(B: 2, Hq: 4, Hkv: 4, Nq: 300, Nk: 300, D: 64, threads: 2)
        #expect(p.rowBlock == 64 && p.keyBlock == (p.instructionSet == .avx2 ? 96 : 128))
        #expect(p.workItems == 2 * 4 * ((300 + p.rowBlock - 1) / p.rowBlock))
        #expect(p.keySplits == 1 && !p.rowsGroupedAcrossHeads && p.keysPackedOnce)
        #expect(p.threads == 2)
    }

    @Test("Decoding with grouped-query attention: rows grouped across heads, keys split to occupy the threads")
    func decode() throws {
        let p = try plan(Hq: 8, Hkv: 2, Nq: 1, Nk: 4096, D: 64, threads: 2)
        #expect(p.rowsGroupedAcrossHeads)
        #expect(!p.keysPackedOnce)   // each key block serves one row block
        #expect(p.keySplits > 1)
        #expect(p.workItems >= 2 * p.threads)
        #expect(p.splitLength % p.keyBlock == 0)
        #expect(p.keySplits * p.splitLength >= 4096 && (p.keySplits - 1) * p.splitLength < 4096)
    }

    @Test("Weights need every key of a row in one item: never split")
    func weightsAreNeverSplit() throws {
        let p = try plan(Hq: 8, Hkv: 2, Nq: 1, Nk: 4096, D: 64, threads: 2, outputs: .weights)
        #expect(p.keySplits == 1)
    }

    @Test("Key blocks by instruction set, head dimension and rows: shorter for large D with full row blocks; AVX2's are 96 (48-key panels)",
          arguments: [(64, 1, 40, 128), (128, 1, 40, 64), (128, 1, 8, 128), (128, 4, 1, 128), (128, 4, 3, 64), (256, 1, 40, 64)])
    func keyBlockByHeadDimension(D: Int, groupSize: Int, Nq: Int, wideKeyBlock: Int) throws {
        // groupSize query heads over one key/value head: with few queries their rows share a block.
        let p = try plan(Hq: groupSize, Hkv: 1, Nq: Nq, Nk: 40, D: D, threads: 1)
        #expect(p.keyBlock == (p.instructionSet == .avx2 ? 96 : wideKeyBlock))
        #expect(p.keyBlock % 32 == 0)
    }

    @Test("A call below the single-thread work runs on one thread, unsplit; one at or above it uses the threads")
    func smallCallsRunOnOneThread() throws {
        // A decoding step of SmolLM2's 9 query heads over 3 key/value heads: B·Hq·Nq·Nk·(D + Dv) multiply-adds.
        let work = { (Nk: Int) in 9 * Nk * 128 }
        let short = try plan(Hq: 9, Hkv: 3, Nq: 1, Nk: 100, D: 64, threads: 2)
        #expect(work(100) < ForwardPlan.singleThreadWork)
        #expect(short.threads == 1 && short.keySplits == 1 && short.workItems == 3)
        let long = try plan(Hq: 9, Hkv: 3, Nq: 1, Nk: 2048, D: 64, threads: 2)
        #expect(work(2048) >= ForwardPlan.singleThreadWork)
        #expect(long.threads == 2 && long.keySplits > 1)
    }

    @Test("Never more threads than items")
    func threadsBoundedByItems() throws {
        let p = try plan(Hq: 1, Hkv: 1, Nq: 10, Nk: 10, D: 16, threads: 8)
        #expect(p.workItems == 1 && p.threads == 1)
    }
}
