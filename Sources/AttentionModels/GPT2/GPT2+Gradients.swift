import Attention
import Foundation

extension GPT2Model {
    /// A new model with GPT-2's initialization: weights normal with standard deviation 0.02 (the
    /// residual projections `attn.c_proj` and `mlp.c_proj` scaled by 1/√(2·layers)), biases 0,
    /// LayerNorms γ = 1, β = 0; the output tied to the token embedding.
    public init(configuration c: GPT2Configuration, seed: UInt64) throws {
        try c.validate()
        var g = SplitMix64(seed: seed)
        let (w, inner) = (c.width, c.feedForwardSize)
        func normal(_ shape: [Int], _ deviation: Double = 0.02) throws -> Tensor<Float> {
            try Tensor<Float>.randomNormal(shape: shape, standardDeviation: deviation, using: &g)
        }
        let residual = 0.02 / (2 * Double(c.layers)).squareRoot()
        var p: [String: Tensor<Float>] = [
            "transformer.wte.weight": try normal([c.vocabularySize, w]), "transformer.wpe.weight": try normal([c.positions, w], 0.01),
            "transformer.ln_f.weight": try Tensor(repeating: 1, shape: [w]), "transformer.ln_f.bias": try Tensor(zeros: [w]),
        ]
        for n in 0..<c.layers {
            let h = "transformer.h.\(n)."
            for norm in ["ln_1", "ln_2"] {
                p[h + norm + ".weight"] = try Tensor(repeating: 1, shape: [w])
                p[h + norm + ".bias"] = try Tensor(zeros: [w])
            }
            for (name, input, output, deviation) in [("attn.c_attn", w, 3 * w, 0.02), ("attn.c_proj", w, w, residual),
                                                     ("mlp.c_fc", w, inner, 0.02), ("mlp.c_proj", inner, w, residual)] {
                p[h + name + ".weight"] = try normal([input, output], deviation)
                p[h + name + ".bias"] = try Tensor(zeros: [output])
            }
        }
        try self.init(configuration: c, parameters: p)
    }

    /// The mean cross-entropy of predicting `targets` from `inputs` (sequences of one length, each
    /// target the token after its input), without gradients.
    public func loss(inputs: [[Int]], targets: [[Int]]) throws -> Double {
        let (x, _) = try forwardBatch(inputs, targets: targets, keepActivations: false)
        return try crossEntropy(logits: head(finalNorm(x)), targets: targets.flatMap { $0 }).loss
    }

    /// The mean cross-entropy of predicting `targets` from `inputs` and its gradient with respect to
    /// every parameter, by the names and in the layouts of ``namedParameters`` (Conv1D weights
    /// `[in, out]`; the tied embedding's gradient sums its use as input and as output).
    ///
    /// Backpropagation through the whole network: the attention's backward is the library's tiled
    /// one (given its forward, so it does not run again), the others are the layers' own.
    /// - Throws: `AttentionError` for empty or ragged batches, sequences longer than the model's
    ///   positions, or ids outside the vocabulary.
    public func lossAndGradients(inputs: [[Int]], targets: [[Int]]) throws -> (loss: Double, gradients: [String: Tensor<Float>]) {
        let c = configuration
        let (xL, saved) = try forwardBatch(inputs, targets: targets, keepActivations: true)
        let (bsz, t, w, h) = (inputs.count, inputs[0].count, c.width, c.heads)
        let f = try finalNorm(xL)
        let (loss, dLogits) = try crossEntropy(logits: head(f), targets: targets.flatMap { $0 })
        var gradients: [String: Tensor<Float>] = [:]
        let headGradients = try head.backward(input: f, outputGradient: dLogits)
        let normGradients = try finalNorm.backward(input: xL, outputGradient: headGradients.input)
        gradients["transformer.ln_f.weight"] = normGradients.weight
        gradients["transformer.ln_f.bias"] = normGradients.bias
        var dx = normGradients.input
        for (n, block) in blocks.enumerated().reversed() {
            let a = saved[n], p = "transformer.h.\(n)."
            func record(_ name: String, _ g: LinearGradients<Float>) throws {
                gradients[p + name + ".weight"] = try g.weight.transposed()
                gradients[p + name + ".bias"] = g.bias
            }
            // x2 = x1 + c_proj(gelu(c_fc(ln_2(x1))))
            let dG = try block.feedForwardOutput.backward(input: a.activated, outputGradient: dx)
            try record("mlp.c_proj", dG)
            let dH = try block.feedForwardInput.backward(input: a.norm2, outputGradient: geluBackward(a.inner, dG.input, exact: c.activation == "gelu"))
            try record("mlp.c_fc", dH)
            let dNorm2 = try block.feedForwardNorm.backward(input: a.x1, outputGradient: dH.input)
            gradients[p + "ln_2.weight"] = dNorm2.weight
            gradients[p + "ln_2.bias"] = dNorm2.bias
            dx = try add(dx, dNorm2.input)
            // x1 = x0 + c_proj(merge(attention(split(c_attn(ln_1(x0))))))
            let dMerged = try block.attentionOutput.backward(input: a.merged, outputGradient: dx)
            try record("attn.c_proj", dMerged)
            let dO = try splitHeads(dMerged.input, batch: bsz, tokens: t, width: w, heads: h, part: 0, parts: 1)
            let dAttention = try scaledDotProductAttentionBackward(
                query: a.q, key: a.k, value: a.v, outputGradient: dO, mask: .causal, forward: a.attention)
            let dQKV = try mergeHeads([dAttention.query, dAttention.key, dAttention.value], batch: bsz, tokens: t, width: w, heads: h)
            let dA = try block.queryKeyValue.backward(input: a.norm1, outputGradient: dQKV)
            try record("attn.c_attn", dA)
            let dNorm1 = try block.attentionNorm.backward(input: a.x0, outputGradient: dA.input)
            gradients[p + "ln_1.weight"] = dNorm1.weight
            gradients[p + "ln_1.bias"] = dNorm1.bias
            dx = try add(dx, dNorm1.input)
        }
        // x0 = wte[ids] + wpe[positions]; the output layer used wte too.
        var dWTE = tiedOutput ? headGradients.weight.scalars : [Float](repeating: 0, count: tokenEmbeddings.count)
        var dWPE = [Float](repeating: 0, count: c.positions * w)
        dx.withUnsafeBufferPointer { d in
            for (b, ids) in inputs.enumerated() {
                for (position, id) in ids.enumerated() {
                    let row = (b * t + position) * w
                    for k in 0..<w {
                        dWTE[id * w + k] += d[row + k]
                        dWPE[position * w + k] += d[row + k]
                    }
                }
            }
        }
        gradients["transformer.wte.weight"] = try Tensor(shape: tokenEmbeddings.shape, scalars: dWTE)
        gradients["transformer.wpe.weight"] = try Tensor(shape: positionEmbeddings.shape, scalars: dWPE)
        if !tiedOutput { gradients["lm_head.weight"] = headGradients.weight }
        return (loss, gradients)
    }

    /// What one block's backward needs of its forward.
    struct BlockActivations {
        let x0: Tensor<Float>, norm1: Tensor<Float>
        let q: Tensor<Float>, k: Tensor<Float>, v: Tensor<Float>, attention: AttentionResult<Float>
        let merged: Tensor<Float>, x1: Tensor<Float>, norm2: Tensor<Float>, inner: Tensor<Float>, activated: Tensor<Float>
    }

    /// The residual stream after the last block, `[B·T, C]`, and each block's activations if asked.
    func forwardBatch(_ inputs: [[Int]], targets: [[Int]], keepActivations: Bool) throws -> (Tensor<Float>, [BlockActivations]) {
        let c = configuration
        guard let t = inputs.first?.count, t > 0, inputs.allSatisfy({ $0.count == t }) else {
            throw AttentionError.invalidArgument(argument: "inputs", reason: "need at least one sequence, all of one length above 0")
        }
        guard targets.map(\.count) == inputs.map(\.count) else {
            throw AttentionError.invalidArgument(argument: "targets", reason: "need one target per input token")
        }
        for ids in inputs { try check(ids, from: 0) }
        if let bad = targets.joined().first(where: { $0 < 0 || $0 >= c.vocabularySize }) {
            throw AttentionError.invalidArgument(argument: "targets", reason: "token id \(bad) is outside the vocabulary of \(c.vocabularySize)")
        }
        let (bsz, w, h) = (inputs.count, c.width, c.heads)
        var x = try Tensor(shape: [bsz * t, w], scalars: inputs.flatMap { try embed($0, from: 0).scalars })
        var saved: [BlockActivations] = []
        for block in blocks {
            let norm1 = try block.attentionNorm(x)
            let qkv = try block.queryKeyValue(norm1)
            let (q, k, v) = (try splitHeads(qkv, batch: bsz, tokens: t, width: w, heads: h, part: 0, parts: 3),
                             try splitHeads(qkv, batch: bsz, tokens: t, width: w, heads: h, part: 1, parts: 3),
                             try splitHeads(qkv, batch: bsz, tokens: t, width: w, heads: h, part: 2, parts: 3))
            let attention = try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal, returning: keepActivations ? .logSumExp : [])
            let merged = try mergeHeads([attention.output], batch: bsz, tokens: t, width: w, heads: h)
            let x1 = try add(x, block.attentionOutput(merged))
            let norm2 = try block.feedForwardNorm(x1)
            let inner = try block.feedForwardInput(norm2)
            let activated = try c.activation == "gelu" ? gelu(inner) : geluTanh(inner)
            let x2 = try add(x1, block.feedForwardOutput(activated))
            if keepActivations {
                saved.append(BlockActivations(x0: x, norm1: norm1, q: q, k: k, v: v, attention: attention, merged: merged,
                                              x1: x1, norm2: norm2, inner: inner, activated: activated))
            }
            x = x2
        }
        return (x, saved)
    }
}

/// ∂L/∂x of GELU from ∂L/∂gelu(x): the tanh form's (`geluTanhBackward(input:outputGradient:options:)`), or
/// with `exact` the erf form's `Φ(x) + x·φ(x)`, in `Double`.
func geluBackward(_ x: Tensor<Float>, _ dy: Tensor<Float>, exact: Bool) throws -> Tensor<Float> {
    guard exact else { return try geluTanhBackward(input: x, outputGradient: dy) }
    let scalars = zip(x.scalars, dy.scalars).map { xf, gf -> Float in
        let x = Double(xf)
        return Float((0.5 * (1 + erf(x / 2.0.squareRoot())) + x * exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()) * Double(gf))
    }
    return try Tensor(shape: x.shape, scalars: scalars)
}
