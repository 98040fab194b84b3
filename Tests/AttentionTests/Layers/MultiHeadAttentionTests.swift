import Attention
import AttentionTestSupport
import Testing

@Suite("Multi-head attention")
struct MultiHeadAttentionTests {
    /// Everything by hand with plain arrays: projections, per-head softmax, concatenation, output.
    func handComputed(_ layer: MultiHeadAttention<Double>, x: [[Double]], context: [[Double]], causal: Bool) -> [[Double]] {
        func project(_ rows: [[Double]], _ p: Linear<Double>) -> [[Double]] {
            rows.map { row in
                (0..<p.outputDimension).map { o in
                    (0..<p.inputDimension).reduce(p.bias?.scalars[o] ?? 0) { $0 + row[$1] * p.weight[o, $1] }
                }
            }
        }
        let q = project(x, layer.queryProjection)
        let k = project(context, layer.keyProjection), v = project(context, layer.valueProjection)
        let dh = layer.headDimension, groups = layer.numHeads / layer.numKeyValueHeads
        var concatenated = Array(repeating: [Double](repeating: 0, count: layer.numHeads * dh), count: x.count)
        for h in 0..<layer.numHeads {
            let g = h / groups
            for i in 0..<x.count {
                let visible = (0..<context.count).filter { !causal || $0 <= i + context.count - x.count }
                let scores = visible.map { j in
                    (0..<dh).reduce(0.0) { $0 + q[i][h * dh + $1] * k[j][g * dh + $1] } / Double(dh).squareRoot()
                }
                let m = scores.max() ?? 0
                let e = scores.map { Foundation.exp($0 - m) }
                let total = e.reduce(0, +)
                for (n, j) in visible.enumerated() {
                    for c in 0..<dh { concatenated[i][h * dh + c] += e[n] / total * v[j][g * dh + c] }
                }
            }
        }
        return project(concatenated, layer.outputProjection)
    }

    @Test("Self-attention matches a hand computation", arguments: [false, true])
    func selfAttention(causal: Bool) throws {
        let layer = try MultiHeadAttention<Double>(embedDimension: 6, numHeads: 3, seed: 7)
        let x = try Tensor<Double>.randomNormal(shape: [4, 6], seed: 8)
        let r = try layer(x, mask: causal ? .causal : .none)
        let expected = handComputed(layer, x: x.rows, context: x.rows, causal: causal)
        #expect(r.output.shape == [4, 6])
        #expect(maxAbsDifference(r.output.scalars, expected.flatMap { $0 }) < 1e-12)
    }

    @Test("Cross-attention with other key and value sizes and GQA matches a hand computation")
    func crossAttentionGQA() throws {
        let layer = try MultiHeadAttention<Double>(
            embedDimension: 8, numHeads: 4, numKeyValueHeads: 2, keyInputDimension: 5, valueInputDimension: 5, seed: 3)
        let x = try Tensor<Double>.randomNormal(shape: [3, 8], seed: 4)
        let context = try Tensor<Double>.randomNormal(shape: [6, 5], seed: 5)
        let r = try layer(query: x, key: context, value: context, returning: .weights)
        let expected = handComputed(layer, x: x.rows, context: context.rows, causal: false)
        #expect(maxAbsDifference(r.output.scalars, expected.flatMap { $0 }) < 1e-12)
        #expect(r.weights?.shape == [4, 3, 6])
        #expect(layer.keyProjection.weight.shape == [4, 5])   // 2 KV heads × head dimension 2
    }

    @Test("Matches torch.nn.MultiheadAttention", arguments: Fixtures.multiHeadCases)
    func pytorch(_ c: Fixtures.MultiHeadCase) throws {
        var layer = try MultiHeadAttention<Double>(
            embedDimension: c.embed, numHeads: c.heads, keyInputDimension: c.kdim, valueInputDimension: c.vdim)
        for p in MultiHeadAttention<Double>.Projection.allCases {
            try layer.setWeights(p, weight: c.tensor("\(p.rawValue)_weight"), bias: c.tensor("\(p.rawValue)_bias"))
        }
        var mask = AttentionMask.none
        if c.causal { mask = mask && .causal }
        if let lengths = c.keyLengths { mask = mask && .keyLengths(lengths) }
        let r = try layer(query: c.tensor("query"), key: c.tensor("key"), value: c.tensor("value"),
                          mask: mask, returning: .weights)
        #expect(maxAbsDifference(r.output.scalars, try c.tensor("out").scalars) < 1e-10)
        #expect(maxAbsDifference(try #require(r.weights).scalars, try c.tensor("weights").scalars) < 1e-10)
    }

    @Test("A Float layer equals the Double layer on every instruction set, on one thread and on several, and on the reference")
    func everyExecution() throws {
        let exact = try MultiHeadAttention<Double>(embedDimension: 48, numHeads: 6, numKeyValueHeads: 2, seed: 11)
        var layer = try MultiHeadAttention<Float>(embedDimension: 48, numHeads: 6, numKeyValueHeads: 2, seed: 11)
        for p in MultiHeadAttention<Float>.Projection.allCases {
            let linear = switch p {
            case .query: exact.queryProjection
            case .key: exact.keyProjection
            case .value: exact.valueProjection
            case .output: exact.outputProjection
            }
            try layer.setWeights(p, weight: linear.weight.map { Float($0) }, bias: linear.bias?.map { Float($0) })
        }
        // 37 rows: beyond the few-rows kernel, so the packed matrix kernel runs the projections.
        let x = try Tensor<Double>.randomNormal(shape: [2, 37, 48], seed: 12)
        let expected = try exact(x, mask: .causal).output
        let options = KernelInstructionSet.allCases.filter(\.isSupported).flatMap {
            [AttentionOptions(implementation: .tiled($0), threads: 1), AttentionOptions(implementation: .tiled($0), threads: 3)]
        } + [AttentionOptions(implementation: .reference)]
        for o in options {
            let r = try layer(x.map { Float($0) }, mask: .causal, options: o)
            #expect(maxAbsDifference(r.output.scalars, expected.scalars) < 2e-5, "\(o)")
        }
    }

    @Test("The same seed gives the same layer; another seed another")
    func seeded() throws {
        let a = try MultiHeadAttention<Float>(embedDimension: 8, numHeads: 2, seed: 1)
        let b = try MultiHeadAttention<Float>(embedDimension: 8, numHeads: 2, seed: 1)
        let c = try MultiHeadAttention<Float>(embedDimension: 8, numHeads: 2, seed: 2)
        #expect(a.queryProjection.weight == b.queryProjection.weight)
        #expect(a.queryProjection.weight != c.queryProjection.weight)
    }

    @Test("Bad configurations and weights are errors, and a failed setWeights changes nothing")
    func errors() throws {
        #expect(thrownError { try MultiHeadAttention<Float>(embedDimension: 10, numHeads: 3) } == .invalidArgument("numHeads"))
        #expect(thrownError { try MultiHeadAttention<Float>(embedDimension: 8, numHeads: 4, numKeyValueHeads: 3) } == .headCountMismatch)
        #expect(thrownError { try MultiHeadAttention<Float>(embedDimension: 0, numHeads: 1) } == .invalidArgument("embedDimension"))
        var layer = try MultiHeadAttention<Float>(embedDimension: 8, numHeads: 2)
        let before = layer.keyProjection.weight
        #expect(thrownError {
            try layer.setWeights(.key, weight: Tensor(zeros: [8, 7]), bias: nil)
        } == .shapeMismatch("key weight"))
        #expect(layer.keyProjection.weight == before)
        let x = try Tensor<Float>(zeros: [3, 7])
        #expect(thrownError { try layer(x) } == .shapeMismatch("query"))
    }
}

import Foundation
