import Attention
import AttentionTestSupport
import Testing

/// Gradients against PyTorch autograd through `scaled_dot_product_attention`.
@Suite("PyTorch gradient fixtures")
struct GradientFixtureTests {
    func check<Scalar: AttentionScalar>(_ c: Fixtures.AttentionCase, _: Scalar.Type, relative: Double) throws {
        let grads = try scaledDotProductAttentionBackward(
            query: c.tensor("q", as: Scalar.self), key: c.tensor("k"), value: c.tensor("v"), outputGradient: c.tensor("do"),
            mask: c.attentionMask(), bias: c.bias ? c.tensor("bias") : nil, scale: c.scale.map { Scalar(fromDouble: $0) })
        var pairs: [(String, Tensor<Scalar>)] = [("dq", grads.query), ("dk", grads.key), ("dv", grads.value)]
        if c.bias { pairs.append(("dbias", try #require(grads.bias))) }
        for (name, ours) in pairs {
            let theirs: Tensor<Double> = try c.tensor(name)
            #expect(ours.shape == theirs.shape, "\(name)")
            let scale = max(1, theirs.scalars.map(abs).max() ?? 0)
            #expect(maxAbsDifference(ours.scalars, theirs.scalars) <= relative * scale, "\(name)")
        }
    }

    @Test("Double gradients within 1e-10", arguments: Fixtures.attentionCases)
    func double(_ c: Fixtures.AttentionCase) throws { try check(c, Double.self, relative: 1e-10) }

    @Test("Float gradients within 1e-4 relative", arguments: Fixtures.attentionCases)
    func float(_ c: Fixtures.AttentionCase) throws { try check(c, Float.self, relative: 1e-4) }
}
