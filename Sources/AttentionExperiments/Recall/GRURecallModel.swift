import Attention
import Foundation

/// A gated recurrent unit reads the pairs one by one, then the query key; a linear readout of its last
/// hidden state gives the value's logits. Everything it knows about the sequence must fit in that
/// state of `hiddenDimension` numbers.
///
/// The cell, in PyTorch's `nn.GRU` convention (gates in the order r, z, n):
/// ```
/// r = σ(W_ir x + b_ir + W_hr h + b_hr)
/// z = σ(W_iz x + b_iz + W_hz h + b_hz)
/// n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
/// h' = (1 - z) ⊙ n + z ⊙ h
/// ```
struct GRURecallModel: RecallModel {
    var embedding: PairEmbedding
    /// `x -> [r, z, n]` pre-activations: `[3h, d]`.
    var input: Linear<Float>
    /// `h -> [r, z, n]` pre-activations: `[3h, h]`.
    var recurrent: Linear<Float>
    var readout: Linear<Float>
    var hiddenDimension: Int { recurrent.inputDimension }

    init(embedding: PairEmbedding, hiddenDimension: Int, valueVocabulary: Int, seed: UInt64) throws {
        self.embedding = embedding
        var generator = SplitMix64(seed: seed)
        // PyTorch's GRU initialization: every weight and bias uniform in ±1/√hidden.
        let bound = 1 / Double(hiddenDimension).squareRoot()
        func uniform(_ shape: [Int]) throws -> Tensor<Float> { try .randomUniform(shape: shape, in: -bound...bound, using: &generator) }
        input = try Linear(weight: uniform([3 * hiddenDimension, embedding.dimension]), bias: uniform([3 * hiddenDimension]))
        recurrent = try Linear(weight: uniform([3 * hiddenDimension, hiddenDimension]), bias: uniform([3 * hiddenDimension]))
        readout = try Linear(inputDimension: hiddenDimension, outputDimension: valueVocabulary, using: &generator)
    }

    /// Trainable scalars outside the embeddings of a GRU of this size.
    static func parameterCount(embedDimension d: Int, hiddenDimension h: Int, valueVocabulary v: Int) -> Int {
        3 * h * (d + h + 2) + (h + 1) * v
    }

    var namedParameters: [(name: String, tensor: Tensor<Float>)] {
        embedding.namedParameters(prefixedBy: "embedding") + input.namedParameters(prefixedBy: "input")
            + recurrent.namedParameters(prefixedBy: "recurrent") + readout.namedParameters(prefixedBy: "readout")
    }

    func replacingParameters(_ p: [String: Tensor<Float>]) throws -> GRURecallModel {
        var copy = self
        copy.embedding = try embedding.replacingParameters(p.parameters(under: "embedding"))
        copy.input = try input.replacingParameters(p.parameters(under: "input"))
        copy.recurrent = try recurrent.replacingParameters(p.parameters(under: "recurrent"))
        copy.readout = try readout.replacingParameters(p.parameters(under: "readout"))
        return copy
    }

    /// What the backward pass needs from the forward pass, time-major: step `t` of sequence `b` at row `t·B + b`.
    private struct Trace {
        /// `[T·B, d]`: the inputs (pairs, then the query).
        var inputs: Tensor<Float>
        /// `[T·B, h]`: the hidden state each step starts from.
        var previous: [Float]
        /// `[T·B, h]` each: the gates and the candidate, and `W_hn h + b_hn`.
        var r: [Float], z: [Float], n: [Float], recurrentN: [Float]
        /// `[B, h]`: the last hidden state.
        var last: Tensor<Float>
    }

    private func run(_ batch: RecallBatch) throws -> Trace {
        let (count, d, h) = (batch.count, embedding.dimension, hiddenDimension)
        let steps = batch.length + 1
        let pairs = try embedding.pairs(batch), queries = try embedding.queries(batch)
        var x = [Float](repeating: 0, count: steps * count * d)
        for b in 0..<count {
            for t in 0..<batch.length {
                for c in 0..<d { x[(t * count + b) * d + c] = pairs.scalars[(b * batch.length + t) * d + c] }
            }
            for c in 0..<d { x[(batch.length * count + b) * d + c] = queries.scalars[b * d + c] }
        }
        let inputs = try Tensor(shape: [steps * count, d], scalars: x)
        let gatesFromInput = try input(inputs).scalars
        var trace = Trace(
            inputs: inputs, previous: [Float](repeating: 0, count: steps * count * h),
            r: [Float](repeating: 0, count: steps * count * h), z: [Float](repeating: 0, count: steps * count * h),
            n: [Float](repeating: 0, count: steps * count * h), recurrentN: [Float](repeating: 0, count: steps * count * h),
            last: try Tensor(zeros: [count, h]))
        var state = try Tensor<Float>(zeros: [count, h])
        for t in 0..<steps {
            let gatesFromState = try recurrent(state).scalars
            var next = [Float](repeating: 0, count: count * h)
            for b in 0..<count {
                let row = t * count + b, gi = row * 3 * h, gh = b * 3 * h
                for j in 0..<h {
                    let r = sigmoid(gatesFromInput[gi + j] + gatesFromState[gh + j])
                    let z = sigmoid(gatesFromInput[gi + h + j] + gatesFromState[gh + h + j])
                    let hn = gatesFromState[gh + 2 * h + j]
                    let n = tanh(gatesFromInput[gi + 2 * h + j] + r * hn)
                    let previous = state.scalars[b * h + j]
                    trace.previous[row * h + j] = previous
                    trace.r[row * h + j] = r
                    trace.z[row * h + j] = z
                    trace.n[row * h + j] = n
                    trace.recurrentN[row * h + j] = hn
                    next[b * h + j] = (1 - z) * n + z * previous
                }
            }
            state = try Tensor(shape: [count, h], scalars: next)
        }
        trace.last = state
        return trace
    }

    func logits(_ batch: RecallBatch) throws -> Tensor<Float> { try readout(run(batch).last) }

    func lossAndGradients(_ batch: RecallBatch) throws -> (loss: Double, gradients: [String: Tensor<Float>], probe: GradientProbe) {
        let trace = try run(batch)
        let (count, h, d) = (batch.count, hiddenDimension, embedding.dimension)
        let steps = batch.length + 1
        let (loss, dLogits) = try crossEntropy(logits: readout(trace.last), targets: batch.targets)
        let dReadout = try readout.backward(input: trace.last, outputGradient: dLogits)
        // dh · W_hh as a layer of weight W_hhᵀ.
        var transposed = [Float](repeating: 0, count: 3 * h * h)
        for o in 0..<(3 * h) { for i in 0..<h { transposed[i * 3 * h + o] = recurrent.weight.scalars[o * h + i] } }
        let backThroughState = try Linear(weight: Tensor(shape: [h, 3 * h], scalars: transposed), bias: nil)

        var dGatesInput = [Float](repeating: 0, count: steps * count * 3 * h)
        var dGatesState = [Float](repeating: 0, count: steps * count * 3 * h)
        var dState = dReadout.input.scalars
        for t in stride(from: steps - 1, through: 0, by: -1) {
            var dPrevious = [Float](repeating: 0, count: count * h)
            var dStepGates = [Float](repeating: 0, count: count * 3 * h)
            for b in 0..<count {
                let row = t * count + b
                for j in 0..<h {
                    let k = row * h + j, dh = dState[b * h + j]
                    let (r, z, n) = (trace.r[k], trace.z[k], trace.n[k])
                    let dn = dh * (1 - z) * (1 - n * n)
                    let dz = dh * (trace.previous[k] - n) * z * (1 - z)
                    let dr = dn * trace.recurrentN[k] * r * (1 - r)
                    dPrevious[b * h + j] = dh * z
                    let gi = row * 3 * h
                    dGatesInput[gi + j] = dr
                    dGatesInput[gi + h + j] = dz
                    dGatesInput[gi + 2 * h + j] = dn
                    dGatesState[gi + j] = dr
                    dGatesState[gi + h + j] = dz
                    dGatesState[gi + 2 * h + j] = dn * r
                    dStepGates[b * 3 * h + j] = dr
                    dStepGates[b * 3 * h + h + j] = dz
                    dStepGates[b * 3 * h + 2 * h + j] = dn * r
                }
            }
            let throughState = try backThroughState(Tensor(shape: [count, 3 * h], scalars: dStepGates)).scalars
            for i in dPrevious.indices { dPrevious[i] += throughState[i] }
            dState = dPrevious
        }
        let dInput = try input.backward(input: trace.inputs, outputGradient: Tensor(shape: [steps * count, 3 * h], scalars: dGatesInput))
        let dRecurrent = try recurrent.backward(
            input: Tensor(shape: [steps * count, h], scalars: trace.previous),
            outputGradient: Tensor(shape: [steps * count, 3 * h], scalars: dGatesState))
        var dPairs = [Float](repeating: 0, count: count * batch.length * d), dQueries = [Float](repeating: 0, count: count * d)
        for b in 0..<count {
            for t in 0..<batch.length {
                for c in 0..<d { dPairs[(b * batch.length + t) * d + c] = dInput.input.scalars[(t * count + b) * d + c] }
            }
            for c in 0..<d { dQueries[b * d + c] = dInput.input.scalars[(batch.length * count + b) * d + c] }
        }
        let tables = try embedding.backward(
            batch, pairs: Tensor(shape: [count, batch.length, d], scalars: dPairs), queries: Tensor(shape: [count, d], scalars: dQueries))
        let gradients = tables + [dInput, dRecurrent, dReadout].flatMap { [$0.weight] + ($0.bias.map { [$0] } ?? []) }
        return (loss, try named(gradients), GradientProbe())
    }
}

@inline(__always) private func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }
