import Attention

/// A model of the recall task that can be trained by ``RecallExperiment``.
/// Its parameters have names (`embedding.keys.weight`, `attention.query.weight`, `readout.bias`, …).
protocol RecallModel: NamedParameters {
    /// `[count, valueVocabulary]`.
    func logits(_ batch: RecallBatch) throws -> Tensor<Float>
    /// The mean cross-entropy, the gradient of every parameter by name and, for attention, how much
    /// gradient reaches the scores and the query and key projections.
    func lossAndGradients(_ batch: RecallBatch) throws -> (loss: Double, gradients: [String: Tensor<Float>], probe: GradientProbe)
}

/// Gradient norms of an attention model's training step (zero for the other models).
struct GradientProbe {
    /// ‖∂L/∂W_q, ∂L/∂W_k‖ (Frobenius over both).
    var queryKey = 0.0
    /// ‖∂L/∂S‖ over the batch, S the softmax's inputs (the scaled scores): the signal the softmax passes
    /// back. Only measured when the model's `probesScores` is set (it costs a second forward pass).
    var scores = 0.0
}

extension RecallModel {
    /// Trainable scalars outside the embedding tables (which all models share in shape).
    var parameterCountOutsideEmbeddings: Int {
        namedParameters.filter { !$0.name.hasPrefix("embedding.") }.reduce(0) { $0 + $1.tensor.count }
    }

    /// Gradients listed in `NamedParameters.namedParameters` order, by name.
    func named(_ gradients: [Tensor<Float>]) throws -> [String: Tensor<Float>] {
        let names = namedParameters.map(\.name)
        guard names.count == gradients.count else {
            throw AttentionError.invalidArgument(argument: "gradients", reason: "\(gradients.count) gradients for \(names.count) parameters")
        }
        return Dictionary(uniqueKeysWithValues: zip(names, gradients))
    }
}

/// One multi-head attention layer: the query key attends over the pairs; a linear readout of its output
/// gives the value's logits.
struct AttentionRecallModel: RecallModel {
    var embedding: PairEmbedding
    var attention: MultiHeadAttention<Float>
    var readout: Linear<Float>
    /// Multiplies `Q·Kᵀ`; nil is `1/√headDimension`.
    var scale: Float?
    /// Whether ``lossAndGradients(_:)`` measures ``GradientProbe/scores``.
    var probesScores = false

    init(embedding: PairEmbedding, heads: Int, headDimension: Int, valueVocabulary: Int, scale: Float?, seed: UInt64) throws {
        self.embedding = embedding
        let d = embedding.dimension
        attention = try MultiHeadAttention(embedDimension: d, numHeads: heads, headDimension: headDimension, seed: seed)
        var generator = SplitMix64(seed: seed &+ 1)
        readout = try Linear(inputDimension: d, outputDimension: valueVocabulary, using: &generator)
        self.scale = scale
    }

    private static let projections: [MultiHeadAttention<Float>.Projection] = [.query, .key, .value, .output]

    var namedParameters: [(name: String, tensor: Tensor<Float>)] {
        embedding.namedParameters(prefixedBy: "embedding") + attention.namedParameters(prefixedBy: "attention")
            + readout.namedParameters(prefixedBy: "readout")
    }

    func replacingParameters(_ p: [String: Tensor<Float>]) throws -> AttentionRecallModel {
        var copy = self
        copy.embedding = try embedding.replacingParameters(p.parameters(under: "embedding"))
        copy.attention = try attention.replacingParameters(p.parameters(under: "attention"))
        copy.readout = try readout.replacingParameters(p.parameters(under: "readout"))
        return copy
    }

    private func attend(_ batch: RecallBatch, returning outputs: AttentionOutputs = []) throws -> (query: Tensor<Float>, pairs: Tensor<Float>, result: MultiHeadAttentionResult<Float>) {
        let pairs = try embedding.pairs(batch)
        let query = try embedding.queries(batch).reshaped([batch.count, 1, embedding.dimension])
        let result = try attention(query: query, key: pairs, value: pairs, scale: scale, returning: outputs)
        return (query, pairs, result)
    }

    func logits(_ batch: RecallBatch) throws -> Tensor<Float> {
        try readout(attend(batch).result.output.reshaped([batch.count, embedding.dimension]))
    }

    /// `[count, heads, length]`: where each head's query looks.
    func weights(_ batch: RecallBatch) throws -> Tensor<Float> {
        guard let w = try attend(batch, returning: .weights).result.weights else {
            throw AttentionError.invalidArgument(argument: "returning", reason: "the layer returned no weights")
        }
        return try w.reshaped([batch.count, attention.numHeads, batch.length])
    }

    func lossAndGradients(_ batch: RecallBatch) throws -> (loss: Double, gradients: [String: Tensor<Float>], probe: GradientProbe) {
        let (query, pairs, result) = try attend(batch)
        let attended = try result.output.reshaped([batch.count, embedding.dimension])
        let (loss, dLogits) = try crossEntropy(logits: readout(attended), targets: batch.targets)
        let dReadout = try readout.backward(input: attended, outputGradient: dLogits)
        let dAttention = try attention.backward(
            query: query, key: pairs, value: pairs, outputGradient: dReadout.input.reshaped(query.shape), scale: scale)
        let dPairs = try Tensor(shape: pairs.shape, scalars: zip(dAttention.key.scalars, dAttention.value.scalars).map { $0 + $1 })
        var gradients = try embedding.backward(batch, pairs: dPairs, queries: dAttention.query)
        for projection in Self.projections {
            guard let g = dAttention.projections[projection], let bias = g.bias else {
                throw AttentionError.invalidArgument(argument: "projection", reason: "no gradient for \(projection)")
            }
            gradients += [g.weight, bias]
        }
        gradients += [dReadout.weight] + (dReadout.bias.map { [$0] } ?? [])
        let qk = [dAttention.projections[.query]?.weight, dAttention.projections[.key]?.weight].compactMap { $0 }
        var probe = GradientProbe()
        probe.queryKey = qk.reduce(0.0) { $0 + $1.scalars.reduce(0.0) { $0 + Double($1) * Double($1) } }.squareRoot()
        if probesScores { probe.scores = try scoreGradientNorm(batch, pairs: pairs, outputGradient: dReadout.input) }
        return (loss, try named(gradients), probe)
    }
}

extension AttentionRecallModel {
    /// ‖∂L/∂S‖ from the gradient of the layer's output: with P the weights, V the projected values and
    /// dM the gradient of the merged heads (before the output projection),
    /// `dP[h, j] = dM_h · V_h[j]` and `dS = P ⊙ (dP - Σ_j P dP)`, the softmax's backward.
    func scoreGradientNorm(_ batch: RecallBatch, pairs: Tensor<Float>, outputGradient: Tensor<Float>) throws -> Double {
        let p = try weights(batch)
        let v = try attention.valueProjection(pairs)
        let (count, n, heads, dh) = (batch.count, batch.length, attention.numHeads, attention.headDimension)
        var merged = [Float](repeating: 0, count: count * heads * dh)
        for b in 0..<count { for h in 0..<heads { for j in 0..<n {
            let w = p.scalars[(b * heads + h) * n + j]
            for c in 0..<dh { merged[(b * heads + h) * dh + c] += w * v.scalars[(b * n + j) * heads * dh + h * dh + c] }
        } } }
        let dMerged = try attention.outputProjection.backward(
            input: Tensor(shape: [count, heads * dh], scalars: merged), outputGradient: outputGradient).input.scalars
        var sum = 0.0
        for b in 0..<count {
            for h in 0..<heads {
                var dP = [Double](repeating: 0, count: n)
                var mean = 0.0
                for j in 0..<n {
                    for c in 0..<dh { dP[j] += Double(dMerged[(b * heads + h) * dh + c] * v.scalars[(b * n + j) * heads * dh + h * dh + c]) }
                    mean += Double(p.scalars[(b * heads + h) * n + j]) * dP[j]
                }
                for j in 0..<n {
                    let dS = Double(p.scalars[(b * heads + h) * n + j]) * (dP[j] - mean)
                    sum += dS * dS
                }
            }
        }
        return sum.squareRoot()
    }
}

/// Mean pooling: the average of the pairs, next to the query key, through a hidden ReLU layer and a
/// readout. It sees everything attention sees but weighs every position equally.
struct MeanPoolingRecallModel: RecallModel {
    var embedding: PairEmbedding
    var hidden: Linear<Float>
    var readout: Linear<Float>

    init(embedding: PairEmbedding, hiddenDimension: Int, valueVocabulary: Int, seed: UInt64) throws {
        self.embedding = embedding
        var generator = SplitMix64(seed: seed)
        hidden = try Linear(inputDimension: 2 * embedding.dimension, outputDimension: hiddenDimension, using: &generator)
        readout = try Linear(inputDimension: hiddenDimension, outputDimension: valueVocabulary, using: &generator)
    }

    var namedParameters: [(name: String, tensor: Tensor<Float>)] {
        embedding.namedParameters(prefixedBy: "embedding") + hidden.namedParameters(prefixedBy: "hidden")
            + readout.namedParameters(prefixedBy: "readout")
    }

    func replacingParameters(_ p: [String: Tensor<Float>]) throws -> MeanPoolingRecallModel {
        var copy = self
        copy.embedding = try embedding.replacingParameters(p.parameters(under: "embedding"))
        copy.hidden = try hidden.replacingParameters(p.parameters(under: "hidden"))
        copy.readout = try readout.replacingParameters(p.parameters(under: "readout"))
        return copy
    }

    /// `[count, 2d]`: the mean of the pairs, then the query key.
    private func features(_ batch: RecallBatch) throws -> Tensor<Float> {
        let pairs = try embedding.pairs(batch), queries = try embedding.queries(batch)
        let (n, d) = (batch.length, embedding.dimension)
        var out = [Float](repeating: 0, count: batch.count * 2 * d)
        for b in 0..<batch.count {
            for i in 0..<n { for c in 0..<d { out[b * 2 * d + c] += pairs.scalars[(b * n + i) * d + c] } }
            for c in 0..<d {
                out[b * 2 * d + c] /= Float(n)
                out[b * 2 * d + d + c] = queries.scalars[b * d + c]
            }
        }
        return try Tensor(shape: [batch.count, 2 * d], scalars: out)
    }

    func logits(_ batch: RecallBatch) throws -> Tensor<Float> {
        try readout(hidden(features(batch)).map { max(0, $0) })
    }

    func lossAndGradients(_ batch: RecallBatch) throws -> (loss: Double, gradients: [String: Tensor<Float>], probe: GradientProbe) {
        let x = try features(batch)
        let preActivation = try hidden(x)
        let activation = preActivation.map { max(0, $0) }
        let (loss, dLogits) = try crossEntropy(logits: readout(activation), targets: batch.targets)
        let dReadout = try readout.backward(input: activation, outputGradient: dLogits)
        let dPre = try Tensor(shape: preActivation.shape,
                              scalars: zip(dReadout.input.scalars, preActivation.scalars).map { $1 > 0 ? $0 : 0 })
        let dHidden = try hidden.backward(input: x, outputGradient: dPre)
        let (n, d) = (batch.length, embedding.dimension)
        var dPairs = [Float](repeating: 0, count: batch.count * n * d), dQueries = [Float](repeating: 0, count: batch.count * d)
        for b in 0..<batch.count {
            for c in 0..<d {
                let g = dHidden.input.scalars[b * 2 * d + c] / Float(n)
                for i in 0..<n { dPairs[(b * n + i) * d + c] = g }
                dQueries[b * d + c] = dHidden.input.scalars[b * 2 * d + d + c]
            }
        }
        let tables = try embedding.backward(
            batch, pairs: Tensor(shape: [batch.count, n, d], scalars: dPairs), queries: Tensor(shape: [batch.count, d], scalars: dQueries))
        let gradients = tables + [dHidden, dReadout].flatMap { [$0.weight] + ($0.bias.map { [$0] } ?? []) }
        return (loss, try named(gradients), GradientProbe())
    }
}
