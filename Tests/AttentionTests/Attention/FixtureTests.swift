import Attention
import AttentionTestSupport
import Testing

/// Agreement with PyTorch's `scaled_dot_product_attention` (fixtures from scripts/make-fixtures.py).
@Suite("PyTorch fixtures")
struct FixtureTests {
    @Test("Double: output, weights and log-sum-exp within 1e-10", arguments: Fixtures.attentionCases)
    func double(_ c: Fixtures.AttentionCase) throws {
        try check(c, Double.self, tolerance: 1e-10)
    }

    @Test("Float: output, weights and log-sum-exp within 2e-5", arguments: Fixtures.attentionCases)
    func float(_ c: Fixtures.AttentionCase) throws {
        try check(c, Float.self, tolerance: 2e-5)
    }

    func check<Scalar: AttentionScalar>(_ c: Fixtures.AttentionCase, _: Scalar.Type, tolerance: Double) throws {
        let r = try scaledDotProductAttention(
            query: c.tensor("q", as: Scalar.self), key: c.tensor("k"), value: c.tensor("v"),
            mask: c.attentionMask(), bias: c.bias ? c.tensor("bias") : nil,
            scale: c.scale.map { Scalar(fromDouble: $0) }, returning: .all)
        let out: Tensor<Double> = try c.tensor("out")
        let weights: Tensor<Double> = try c.tensor("weights")
        let lse: Tensor<Double> = try c.tensor("lse")
        #expect(r.output.shape == out.shape)
        #expect(r.weights?.shape == weights.shape)
        #expect(r.logSumExp?.shape == lse.shape)
        #expect(maxAbsDifference(r.output.scalars, out.scalars) <= tolerance)
        #expect(maxAbsDifference(try #require(r.weights).scalars, weights.scalars) <= tolerance)
        #expect(maxAbsDifference(try #require(r.logSumExp).scalars, lse.scalars) <= tolerance)
        let dead = try #require(r.logSumExp).scalars.filter { $0 == -.infinity }.count
        #expect(dead == c.deadRows)
    }

    @Test("The fixtures cover every mask kind, dead rows, GQA and Dv != D")
    func coverage() throws {
        let cases = Fixtures.attentionCases
        #expect(cases.contains { $0.causal == "bottomRight" })
        #expect(cases.contains { $0.causal == "topLeft" })
        #expect(cases.contains { $0.window != nil })
        #expect(cases.contains { $0.keyLengths != nil })
        #expect(cases.contains { $0.mask })
        #expect(cases.contains { $0.bias })
        #expect(cases.contains { $0.deadRows > 0 })
        let gqa = try cases.filter { c in
            let q: Tensor<Double> = try c.tensor("q"), k: Tensor<Double> = try c.tensor("k")
            return q.rank == 4 && q.shape[1] != k.shape[1]
        }
        #expect(gqa.count >= 2)
        let valueDimDiffers = try cases.filter { c in
            let q: Tensor<Double> = try c.tensor("q"), v: Tensor<Double> = try c.tensor("v")
            return q.shape.last != v.shape.last
        }
        #expect(!valueDimDiffers.isEmpty)
    }
}
