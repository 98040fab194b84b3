import Attention
import AttentionTestSupport
import Foundation
import Testing

/// The layers' backward passes against central finite differences, in Double.
@Suite("Layer backward passes")
struct LayerBackwardTests {
    /// Central differences of `f` with respect to every element of `t`.
    func numeric(_ t: Tensor<Double>, _ f: (Tensor<Double>) throws -> Double) throws -> [Double] {
        let h = 1e-6
        return try (0..<t.count).map { n in
            var plus = t, minus = t
            plus.withUnsafeMutableBufferPointer { $0[n] += h }
            minus.withUnsafeMutableBufferPointer { $0[n] -= h }
            return (try f(plus) - f(minus)) / (2 * h)
        }
    }

    func dot(_ a: Tensor<Double>, _ b: Tensor<Double>) -> Double { zip(a.scalars, b.scalars).reduce(0) { $0 + $1.0 * $1.1 } }

    @Test("Linear: dx, dW, db")
    func linear() throws {
        var g = SplitMix64(seed: 1)
        let w = try Tensor<Double>.randomNormal(shape: [5, 3], using: &g), b = try Tensor<Double>.randomNormal(shape: [5], using: &g)
        let x = try Tensor<Double>.randomNormal(shape: [2, 4, 3], using: &g), r = try Tensor<Double>.randomNormal(shape: [2, 4, 5], using: &g)
        let layer = try Linear(weight: w, bias: b)
        let grads = try layer.backward(input: x, outputGradient: r)
        #expect(maxAbsDifference(grads.input.scalars, try numeric(x) { dot(try layer($0), r) }) < 1e-7)
        #expect(maxAbsDifference(grads.weight.scalars, try numeric(w) { dot(try Linear(weight: $0, bias: b)(x), r) }) < 1e-7)
        #expect(maxAbsDifference(try #require(grads.bias).scalars, try numeric(b) { dot(try Linear(weight: w, bias: $0)(x), r) }) < 1e-7)
        #expect(thrownError { try layer.backward(input: x, outputGradient: x) } == .shapeMismatch("outputGradient"))
    }

    @Test("Linear in Float (matrix kernel) agrees with Double on awkward shapes", arguments: [(1, 1, 1), (37, 45, 70), (3, 7, 33), (130, 64, 9)])
    func linearFloat(rows: Int, inputs: Int, outputs: Int) throws {
        var g = SplitMix64(seed: UInt64(rows * 1000 + inputs))
        let w = try Tensor<Double>.randomNormal(shape: [outputs, inputs], using: &g), b = try Tensor<Double>.randomNormal(shape: [outputs], using: &g)
        let x = try Tensor<Double>.randomNormal(shape: [rows, inputs], using: &g), r = try Tensor<Double>.randomNormal(shape: [rows, outputs], using: &g)
        let expected = try Linear(weight: w, bias: b).backward(input: x, outputGradient: r)
        let f = { (t: Tensor<Double>) in t.map { Float($0) } }
        let got = try Linear(weight: f(w), bias: f(b)).backward(input: f(x), outputGradient: f(r))
        let tolerance = 1e-5 * Double(rows + outputs)
        #expect(maxAbsDifference(got.input.scalars.map(Double.init), expected.input.scalars) < tolerance)
        #expect(maxAbsDifference(got.weight.scalars.map(Double.init), expected.weight.scalars) < tolerance)
        #expect(maxAbsDifference(try #require(got.bias).scalars.map(Double.init), try #require(expected.bias).scalars) < tolerance)
    }

    @Test("LayerNorm: dx, dγ, dβ")
    func layerNorm() throws {
        var g = SplitMix64(seed: 2)
        let gamma = try Tensor<Double>.randomNormal(shape: [6], using: &g), beta = try Tensor<Double>.randomNormal(shape: [6], using: &g)
        let x = try Tensor<Double>.randomNormal(shape: [3, 6], using: &g), r = try Tensor<Double>.randomNormal(shape: [3, 6], using: &g)
        let norm = try LayerNorm(weight: gamma, bias: beta, epsilon: 1e-5)
        let grads = try norm.backward(input: x, outputGradient: r)
        #expect(maxAbsDifference(grads.input.scalars, try numeric(x) { dot(try norm($0), r) }) < 1e-7)
        #expect(maxAbsDifference(grads.weight.scalars, try numeric(gamma) { dot(try LayerNorm(weight: $0, bias: beta, epsilon: 1e-5)(x), r) }) < 1e-7)
        #expect(maxAbsDifference(grads.bias.scalars, try numeric(beta) { dot(try LayerNorm(weight: gamma, bias: $0, epsilon: 1e-5)(x), r) }) < 1e-7)
    }

    @Test("Embedding: repeated ids accumulate; bad ids are errors")
    func embedding() throws {
        let e = try Embedding<Double>(vocabulary: 5, dimension: 3, seed: 3)
        let ids = [1, 4, 1], r = try Tensor<Double>.randomNormal(shape: [3, 3], seed: 4)
        let grad = try e.backward(ids: ids, outputGradient: r)
        #expect(maxAbsDifference(grad.scalars, try numeric(e.table) { dot(try Embedding(table: $0)(ids), r) }) < 1e-7)
        #expect(thrownError { try e([5]) } == .invalidArgument("ids"))
    }

    @Test("Cross-entropy: the loss of uniform logits is ln C; the gradient matches differences")
    func crossEntropyLoss() throws {
        let uniform = try crossEntropy(logits: Tensor<Double>(zeros: [2, 4]), targets: [0, 3])
        #expect(abs(uniform.loss - log(4.0)) < 1e-12)
        let logits = try Tensor<Double>.randomNormal(shape: [3, 5], standardDeviation: 3, seed: 5)
        let grad = try crossEntropy(logits: logits, targets: [4, 0, 2]).gradient
        #expect(maxAbsDifference(grad.scalars, try numeric(logits) { try crossEntropy(logits: $0, targets: [4, 0, 2]).loss }) < 1e-7)
        #expect(thrownError { try crossEntropy(logits: logits, targets: [4, 0, 5]) } == .invalidArgument("targets"))
    }

    @Test("Adam minimizes a quadratic; AdamW's first step follows the formula")
    func adam() throws {
        var parameters = [try Tensor<Double>([[3.0, -2.0], [1.0, 5.0]])]
        var optimizer = Adam<Double>(learningRate: 0.1)
        for _ in 0..<300 {
            try optimizer.update(&parameters, gradients: [parameters[0].map { 2 * $0 }])   // ∇ of Σ p²
        }
        #expect(parameters[0].scalars.allSatisfy { abs($0) < 0.05 })
        // First AdamW step: m̂ = g, v̂ = g², so p ← p(1 - lr·λ) - lr·g/(|g| + ε).
        var p = [Tensor<Double>([2.0, -4.0])]
        var adamW = Adam<Double>(learningRate: 0.01, weightDecay: 0.1)
        try adamW.update(&p, gradients: [Tensor([0.5, -3.0])])
        #expect(maxAbsDifference(p[0].scalars, [2 * (1 - 0.001) - 0.01 * 0.5 / (0.5 + 1e-8), -4 * (1 - 0.001) + 0.01 * 3 / (3 + 1e-8)]) < 1e-12)
        #expect(thrownError { try adamW.update(&p, gradients: []) } == .invalidArgument("gradients"))
    }
}

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
        func numeric(_ t: Tensor<Double>, _ f: (Tensor<Double>) throws -> Double) throws -> [Double] {
            try (0..<t.count).map { n in
                var plus = t, minus = t
                plus.withUnsafeMutableBufferPointer { $0[n] += 1e-6 }
                minus.withUnsafeMutableBufferPointer { $0[n] -= 1e-6 }
                return (try f(plus) - f(minus)) / 2e-6
            }
        }
        #expect(maxAbsDifference(grads.query.scalars, try numeric(x) { try loss(layer, $0, keys, values) }) < 1e-7)
        #expect(maxAbsDifference(grads.key.scalars, try numeric(keys) { try loss(layer, x, $0, values) }) < 1e-7)
        #expect(maxAbsDifference(grads.value.scalars, try numeric(values) { try loss(layer, x, keys, $0) }) < 1e-7)
        let original = layer
        for p in MultiHeadAttention<Double>.Projection.allCases {
            let linear = [MultiHeadAttention<Double>.Projection.query: original.queryProjection, .key: original.keyProjection,
                          .value: original.valueProjection, .output: original.outputProjection][p]!
            let analytic = try #require(grads.projections[p])
            let numericWeight = try numeric(linear.weight) { w in
                try layer.setWeights(p, weight: w, bias: linear.bias)
                return try loss(layer, x, keys, values)
            }
            try layer.setWeights(p, weight: linear.weight, bias: linear.bias)
            #expect(maxAbsDifference(analytic.weight.scalars, numericWeight) < 1e-7, "\(p) weight")
            let numericBias = try numeric(try #require(linear.bias)) { b in
                try layer.setWeights(p, weight: linear.weight, bias: b)
                return try loss(layer, x, keys, values)
            }
            try layer.setWeights(p, weight: linear.weight, bias: linear.bias)
            #expect(maxAbsDifference(try #require(analytic.bias).scalars, numericBias) < 1e-7, "\(p) bias")
        }
    }
}
