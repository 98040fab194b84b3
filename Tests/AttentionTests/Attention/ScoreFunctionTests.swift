import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("Score functions")
struct ScoreFunctionTests {
    let query = Tensor<Double>([1.0, -0.5])
    let keys = try! Tensor<Double>([[0.2, 0.4], [-1.0, 0.3], [0.5, 0.5]])
    let values = try! Tensor<Double>([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])

    func softmax(_ s: [Double]) -> [Double] {
        let m = s.max() ?? 0
        let e = s.map { exp($0 - m) }
        return e.map { $0 / e.reduce(0, +) }
    }

    @Test("Dot product, scaled, temperature: q·k times a factor")
    func dotProducts() throws {
        let dots = [1.0 * 0.2 - 0.5 * 0.4, -1.0 - 0.15, 0.5 - 0.25]
        for (score, factor) in [(ScoreFunction<Double>.dotProduct, 1.0), (.scaledDotProduct, 1 / 2.0.squareRoot()),
                                (.scaled(by: 3), 3), (.temperature(0.25), 4)] {
            let r = try scoredAttention(query: query, key: keys, value: values, score: score)
            #expect(maxAbsDifference(r.weights?.scalars ?? [], softmax(dots.map { $0 * factor })) < 1e-14)
        }
    }

    @Test("Additive (Bahdanau): vᵀ tanh(W₁q + W₂k)")
    func additive() throws {
        let w1 = try Tensor<Double>([[0.5, -1.0], [0.25, 0.75], [1.0, 0.0]])
        let w2 = try Tensor<Double>([[1.0, 1.0], [-0.5, 0.5], [0.0, 2.0]])
        let v = Tensor<Double>([1.0, -2.0, 0.5])
        let expected = keys.rows.map { k in
            (0..<3).reduce(0.0) { total, r in
                total + v[r] * tanh(w1[r, 0] * 1.0 + w1[r, 1] * -0.5 + w2[r, 0] * k[0] + w2[r, 1] * k[1])
            }
        }
        let r = try scoredAttention(query: query, key: keys, value: values, score: .additive(queryWeight: w1, keyWeight: w2, vector: v))
        #expect(maxAbsDifference(r.weights?.scalars ?? [], softmax(expected)) < 1e-14)
        #expect(thrownError {
            try scoredAttention(query: query, key: keys, value: values, score: .additive(queryWeight: w2, keyWeight: w1, vector: Tensor([1.0, 2.0])))
        } == .invalidShape("queryWeight"))
    }

    @Test("General (Luong): qᵀ W k, with other query and key sizes")
    func general() throws {
        let q3 = try Tensor<Double>([[1.0, 0.0, 2.0]])
        let w = try Tensor<Double>([[1.0, 2.0], [0.0, 1.0], [-1.0, 0.5]])   // [Dq = 3, Dk = 2]
        let expected = keys.rows.map { k in 1.0 * (k[0] + 2 * k[1]) + 2.0 * (-k[0] + 0.5 * k[1]) }
        let r = try scoredAttention(query: q3, key: keys, value: values, score: .general(weight: w))
        #expect(maxAbsDifference(r.weights?.scalars ?? [], softmax(expected)) < 1e-14)
        #expect(r.output.shape == [1, 2])
        #expect(thrownError {
            try scoredAttention(query: q3, key: keys, value: values, score: .dotProduct)   // 3 vs 2
        } == .shapeMismatch("key"))
        #expect(thrownError {
            try scoredAttention(query: query, key: keys, value: values, score: .temperature(0))
        } == .invalidArgument("temperature"))
    }

    @Test("Scaled dot product through the generic path equals scaledDotProductAttention")
    func agreesWithSDPA() throws {
        let q = try Tensor<Double>.randomNormal(shape: [4, 6], seed: 1)
        let k = try Tensor<Double>.randomNormal(shape: [7, 6], seed: 2)
        let v = try Tensor<Double>.randomNormal(shape: [7, 3], seed: 3)
        let a = try scoredAttention(query: q, key: k, value: v, score: .scaledDotProduct, mask: .causal)
        let b = try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal)
        #expect(maxAbsDifference(a.output.scalars, b.output.scalars) < 1e-14)
    }
}
