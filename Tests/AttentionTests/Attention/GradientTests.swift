import Attention
import AttentionTestSupport
import Foundation
import Testing

/// The backward pass against central finite differences, in Double, for every mask kind and GQA.
@Suite("Gradients")
struct GradientTests {
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var hq = 2, hkv = 2, nq = 4, nk = 5
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "none"), Case(name: "causal", nq: 5, nk: 3), Case(name: "topLeft"), Case(name: "window"),
        Case(name: "keyLengths"), Case(name: "boolean"), Case(name: "bias"), Case(name: "gqa", hq: 4, hkv: 2),
        Case(name: "mqa", hq: 3, hkv: 1),
    ]

    func mask(_ c: Case, _ g: inout SplitMix64) throws -> AttentionMask {
        switch c.name {
        case "causal": return .causal
        case "topLeft": return .causal(.topLeft)
        case "window": return .slidingWindow(left: 1, right: 1)
        case "keyLengths": return .keyLengths([3, 0])
        case "boolean": return .boolean(try Tensor<Double>.randomUniform(shape: [2, 1, c.nq, c.nk], using: &g).map { $0 < 0.6 })
        default: return .none
        }
    }

    @Test("Analytic gradients equal central differences", arguments: cases)
    func finiteDifferences(_ c: Case) throws {
        var g = SplitMix64(seed: UInt64(c.name.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
        let q = try Tensor<Double>.randomNormal(shape: [2, c.hq, c.nq, 3], using: &g)
        let k = try Tensor<Double>.randomNormal(shape: [2, c.hkv, c.nk, 3], using: &g)
        let v = try Tensor<Double>.randomNormal(shape: [2, c.hkv, c.nk, 2], using: &g)
        let bias: Tensor<Double>? = c.name == "bias" ? try .randomNormal(shape: [1, c.hq, c.nq, c.nk], using: &g) : nil
        let m = try mask(c, &g)
        let r = try Tensor<Double>.randomNormal(shape: [2, c.hq, c.nq, 2], using: &g)   // L = Σ O ⊙ R, so dO = R
        func loss(_ q: Tensor<Double>, _ k: Tensor<Double>, _ v: Tensor<Double>, _ b: Tensor<Double>?) throws -> Double {
            let o = try scaledDotProductAttention(query: q, key: k, value: v, mask: m, bias: b, scale: 0.7).output
            return zip(o.scalars, r.scalars).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let grads = try scaledDotProductAttentionBackward(query: q, key: k, value: v, outputGradient: r, mask: m, bias: bias, scale: 0.7)
        #expect(maxAbsDifference(grads.query.scalars, try centralDifferences(q) { try loss($0, k, v, bias) }) < 1e-7)
        #expect(maxAbsDifference(grads.key.scalars, try centralDifferences(k) { try loss(q, $0, v, bias) }) < 1e-7)
        #expect(maxAbsDifference(grads.value.scalars, try centralDifferences(v) { try loss(q, k, $0, bias) }) < 1e-7)
        if let bias {
            let dBias = try #require(grads.bias)
            #expect(maxAbsDifference(dBias.scalars, try centralDifferences(bias) { try loss(q, k, v, $0) }) < 1e-7)
        }
        if c.name == "keyLengths" {
            // Batch element 1 sees no key: every row is dead, every gradient of it is zero.
            #expect((try grads.query.view(1)).copy().scalars.allSatisfy { $0 == 0 })
            #expect((try grads.value.view(1)).copy().scalars.allSatisfy { $0 == 0 })
        }
    }

    @Test("A bias broadcast over batch and heads gets the summed gradient, in its own shape")
    func broadcastBias() throws {
        var g = SplitMix64(seed: 3)
        let q = try Tensor<Double>.randomNormal(shape: [2, 3, 4, 5], using: &g)
        let kv = try Tensor<Double>.randomNormal(shape: [2, 3, 6, 5], using: &g)
        let dO = try Tensor<Double>.randomNormal(shape: [2, 3, 4, 5], using: &g)
        let shared = try Tensor<Double>.randomNormal(shape: [4, 6], using: &g)
        var full: [Double] = []
        for _ in 0..<6 { full += shared.scalars }
        let expanded = try Tensor<Double>(shape: [2, 3, 4, 6], scalars: full)
        let a = try scaledDotProductAttentionBackward(query: q, key: kv, value: kv, outputGradient: dO, bias: shared)
        let b = try scaledDotProductAttentionBackward(query: q, key: kv, value: kv, outputGradient: dO, bias: expanded)
        let summed = (0..<24).map { n in (0..<6).reduce(0.0) { $0 + b.bias!.scalars[$1 * 24 + n] } }
        #expect(a.bias?.shape == [4, 6])
        #expect(maxAbsDifference(a.bias!.scalars, summed) < 1e-12)
        #expect(thrownError {
            try scaledDotProductAttentionBackward(query: q, key: kv, value: kv, outputGradient: Tensor(zeros: [2, 3, 4]))
        } == .shapeMismatch("outputGradient"))
    }
}
