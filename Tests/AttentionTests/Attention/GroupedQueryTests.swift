import Attention
import AttentionTestSupport
import Testing

@Suite("Grouped-query attention")
struct GroupedQueryTests {
    /// K/V `[B, Hkv, N, D]` with each head repeated `groups` times in a row: `[B, Hkv·groups, N, D]`.
    func repeatHeads(_ x: Tensor<Double>, groups: Int) throws -> Tensor<Double> {
        let (b, h, n, d) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var out: [Double] = []
        for bi in 0..<b {
            for hi in 0..<h {
                let head = try x.view(bi, hi)
                for _ in 0..<groups { out += head.copy().scalars }
            }
        }
        return try Tensor(shape: [b, h * groups, n, d], scalars: out)
    }

    @Test("GQA equals attention over explicitly repeated K and V", arguments: [(8, 8), (8, 4), (8, 2), (8, 1), (6, 3)])
    func matchesRepeated(heads: (query: Int, keyValue: Int)) throws {
        var g = SplitMix64(seed: UInt64(heads.query * 10 + heads.keyValue))
        let q = try Tensor<Double>.randomNormal(shape: [2, heads.query, 5, 4], using: &g)
        let k = try Tensor<Double>.randomNormal(shape: [2, heads.keyValue, 6, 4], using: &g)
        let v = try Tensor<Double>.randomNormal(shape: [2, heads.keyValue, 6, 3], using: &g)
        let groups = heads.query / heads.keyValue
        let gqa = try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal, returning: .all)
        let repeated = try scaledDotProductAttention(
            query: q, key: repeatHeads(k, groups: groups), value: repeatHeads(v, groups: groups),
            mask: .causal, returning: .all)
        #expect(gqa.output == repeated.output)
        #expect(gqa.weights == repeated.weights)
        #expect(gqa.logSumExp == repeated.logSumExp)
    }

    @Test("Head counts that do not divide are an error")
    func indivisible() throws {
        let q = try Tensor<Float>(zeros: [1, 6, 2, 4]), kv = try Tensor<Float>(zeros: [1, 4, 2, 4])
        #expect(throws: AttentionError.headCountMismatch(queryHeads: 6, keyValueHeads: 4)) {
            try scaledDotProductAttention(query: q, key: kv, value: kv)
        }
    }
}
