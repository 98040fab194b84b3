import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("Multi-head attention backward")
struct MultiHeadAttentionBackwardTests {
    @Test("Every parameter's and input's gradient equals central differences",
          arguments: [(false, nil), (true, nil), (true, 1.0)] as [(Bool, Double?)])
    func gradients(batched: Bool, scale: Double?) throws {
        var layer = try MultiHeadAttention<Double>(embedDimension: 4, numHeads: 2, numKeyValueHeads: 1,
                                                   keyInputDimension: 3, valueInputDimension: 5, seed: 9)
        var g = SplitMix64(seed: batched ? 10 : 11)
        let lead = batched ? [2] : []
        let x = try Tensor<Double>.randomNormal(shape: lead + [3, 4], using: &g)
        let keys = try Tensor<Double>.randomNormal(shape: lead + [5, 3], using: &g)
        let values = try Tensor<Double>.randomNormal(shape: lead + [5, 5], using: &g)
        let r = try Tensor<Double>.randomNormal(shape: lead + [3, 4], using: &g)
        let mask: AttentionMask = .causal
        func loss(_ l: MultiHeadAttention<Double>, _ q: Tensor<Double>, _ k: Tensor<Double>, _ v: Tensor<Double>) throws -> Double {
            zip(try l(query: q, key: k, value: v, mask: mask, scale: scale).output.scalars, r.scalars).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let grads = try layer.backward(query: x, key: keys, value: values, outputGradient: r, mask: mask, scale: scale)
        #expect(maxAbsDifference(grads.query.scalars, try centralDifferences(x) { try loss(layer, $0, keys, values) }) < 1e-7)
        #expect(maxAbsDifference(grads.key.scalars, try centralDifferences(keys) { try loss(layer, x, $0, values) }) < 1e-7)
        #expect(maxAbsDifference(grads.value.scalars, try centralDifferences(values) { try loss(layer, x, keys, $0) }) < 1e-7)
        let original = layer
        for p in MultiHeadAttention<Double>.Projection.allCases {
            let linear = [MultiHeadAttention<Double>.Projection.query: original.queryProjection, .key: original.keyProjection,
                          .value: original.valueProjection, .output: original.outputProjection][p]!
            let analytic = try #require(grads.projections[p])
            let numericWeight = try centralDifferences(linear.weight) { w in
                try layer.setWeights(p, weight: w, bias: linear.bias)
                return try loss(layer, x, keys, values)
            }
            try layer.setWeights(p, weight: linear.weight, bias: linear.bias)
            #expect(maxAbsDifference(analytic.weight.scalars, numericWeight) < 1e-7, "\(p) weight")
            let numericBias = try centralDifferences(try #require(linear.bias)) { b in
                try layer.setWeights(p, weight: linear.weight, bias: b)
                return try loss(layer, x, keys, values)
            }
            try layer.setWeights(p, weight: linear.weight, bias: linear.bias)
            #expect(maxAbsDifference(try #require(analytic.bias).scalars, numericBias) < 1e-7, "\(p) bias")
        }
    }
}
