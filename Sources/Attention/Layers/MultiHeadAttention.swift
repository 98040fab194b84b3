/// Multi-head attention: project, attend per head, concatenate, project.
///
/// ```
/// Q = query · W_qᵀ + b_q   split into numHeads heads of headDimension
/// K = key   · W_kᵀ + b_k   split into numKeyValueHeads heads
/// V = value · W_vᵀ + b_v   split into numKeyValueHeads heads
/// O = concat_h(scaledDotProductAttention(Q_h, K_g(h), V_g(h), mask, bias)) · W_oᵀ + b_o
/// ```
/// Self-attention passes the same sequence as query, key and value; cross-attention passes another
/// sequence (of `keyInputDimension` and `valueInputDimension` features) as key and value.
/// `numKeyValueHeads < numHeads` is grouped-query attention (1 is multi-query attention): the
/// key and value projections are smaller and each key/value head serves `numHeads / numKeyValueHeads`
/// query heads.
///
/// Shapes: `query [B, Nq, embedDimension]`, `key [B, Nk, keyInputDimension]`,
/// `value [B, Nk, valueInputDimension]`, or the same without the batch dimension.
/// Output `[B, Nq, embedDimension]`; per-head weights `[B, numHeads, Nq, Nk]` on request.
public struct MultiHeadAttention<Scalar: AttentionScalar>: Sendable {
    /// Which of the four projections.
    public enum Projection: String, Sendable, CaseIterable {
        /// The query, key, value and output projections, named as in the parameter names.
        case query, key, value, output
    }

    /// Features of the query input and of the output.
    public let embedDimension: Int
    /// Query heads.
    public let numHeads: Int
    /// Key/value heads: `numHeads` is a multiple (grouped-query attention when fewer).
    public let numKeyValueHeads: Int
    /// Features per head.
    public let headDimension: Int
    /// Features of the key input.
    public let keyInputDimension: Int
    /// Features of the value input.
    public let valueInputDimension: Int

    /// `embedDimension -> numHeads · headDimension`.
    public private(set) var queryProjection: Linear<Scalar>
    /// `keyInputDimension -> numKeyValueHeads · headDimension`.
    public private(set) var keyProjection: Linear<Scalar>
    /// `valueInputDimension -> numKeyValueHeads · headDimension`.
    public private(set) var valueProjection: Linear<Scalar>
    /// `numHeads · headDimension -> embedDimension`.
    public private(set) var outputProjection: Linear<Scalar>

    /// A layer with seeded random weights (PyTorch's `nn.Linear` initialization).
    ///
    /// - Parameters:
    ///   - embedDimension: features of the query input and of the output.
    ///   - numHeads: query heads.
    ///   - numKeyValueHeads: key/value heads, dividing `numHeads`; default `numHeads`.
    ///   - headDimension: default `embedDimension / numHeads`, which must then divide evenly.
    ///   - keyInputDimension: features of the key input; default `embedDimension`.
    ///   - valueInputDimension: features of the value input; default `embedDimension`.
    ///   - bias: whether the four projections have biases.
    ///   - seed: seeds the random weights.
    /// - Throws: ``AttentionError`` if a dimension is not positive or the head counts do not divide.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public init(
        embedDimension: Int, numHeads: Int, numKeyValueHeads: Int? = nil, headDimension: Int? = nil,
        keyInputDimension: Int? = nil, valueInputDimension: Int? = nil, bias: Bool = true, seed: UInt64 = 0
    ) throws {
        for (argument, value) in [("embedDimension", embedDimension), ("numHeads", numHeads)] where value <= 0 {
            throw AttentionError.invalidArgument(argument: argument, reason: "must be positive, got \(value)")
        }
        let kvHeads = numKeyValueHeads ?? numHeads
        guard kvHeads > 0, numHeads % kvHeads == 0 else {
            throw AttentionError.headCountMismatch(queryHeads: numHeads, keyValueHeads: kvHeads)
        }
        if headDimension == nil, embedDimension % numHeads != 0 {
            throw AttentionError.invalidArgument(
                argument: "numHeads",
                reason: "embedDimension \(embedDimension) is not divisible by \(numHeads) heads; pass headDimension")
        }
        let dh = headDimension ?? embedDimension / numHeads
        let ek = keyInputDimension ?? embedDimension, ev = valueInputDimension ?? embedDimension
        guard dh > 0, ek > 0, ev > 0 else {
            throw AttentionError.invalidArgument(
                argument: "headDimension/keyInputDimension/valueInputDimension",
                reason: "must be positive, got \(dh), \(ek), \(ev)")
        }
        guard !numHeads.multipliedReportingOverflow(by: dh).overflow else {
            throw AttentionError.invalidArgument(argument: "headDimension", reason: "\(numHeads) heads × \(dh) overflows Int")
        }
        var generator = SplitMix64(seed: seed)
        self.embedDimension = embedDimension
        self.numHeads = numHeads
        self.numKeyValueHeads = kvHeads
        self.headDimension = dh
        self.keyInputDimension = ek
        self.valueInputDimension = ev
        queryProjection = try Linear(inputDimension: embedDimension, outputDimension: numHeads * dh, bias: bias, using: &generator)
        keyProjection = try Linear(inputDimension: ek, outputDimension: kvHeads * dh, bias: bias, using: &generator)
        valueProjection = try Linear(inputDimension: ev, outputDimension: kvHeads * dh, bias: bias, using: &generator)
        outputProjection = try Linear(inputDimension: numHeads * dh, outputDimension: embedDimension, bias: bias, using: &generator)
    }

    /// The `[outputDimension, inputDimension]` shape a projection's weight must have.
    public func weightShape(of projection: Projection) -> [Int] {
        switch projection {
        case .query: [numHeads * headDimension, embedDimension]
        case .key: [numKeyValueHeads * headDimension, keyInputDimension]
        case .value: [numKeyValueHeads * headDimension, valueInputDimension]
        case .output: [embedDimension, numHeads * headDimension]
        }
    }

    /// Replaces one projection's parameters, for example with a pretrained model's.
    ///
    /// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` if `weight` is not
    ///   ``weightShape(of:)`` or `bias` is not its first dimension. Nothing changes on error.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public mutating func setWeights(_ projection: Projection, weight: Tensor<Scalar>, bias: Tensor<Scalar>?) throws {
        let expected = weightShape(of: projection)
        guard weight.shape == expected else {
            throw AttentionError.shapeMismatch(
                argument: "\(projection.rawValue) weight", shape: weight.shape, other: "the layer", otherShape: expected,
                reason: "expected \(expected.shapeDescription) ([outputDimension, inputDimension])")
        }
        let layer = try Linear(weight: weight, bias: bias)
        switch projection {
        case .query: queryProjection = layer
        case .key: keyProjection = layer
        case .value: valueProjection = layer
        case .output: outputProjection = layer
        }
    }

    /// Self-attention: `input` serves as query, key and value.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func callAsFunction(
        _ input: Tensor<Scalar>, mask: AttentionMask = .none, bias: Tensor<Scalar>? = nil, scale: Scalar? = nil,
        returning outputs: AttentionOutputs = [], options: AttentionOptions = AttentionOptions()
    ) throws -> MultiHeadAttentionResult<Scalar> {
        try callAsFunction(query: input, key: input, value: input, mask: mask, bias: bias, scale: scale, returning: outputs, options: options)
    }

    /// Attention of `query` over `key` and `value` (cross-attention when they differ from `query`).
    ///
    /// - Parameters:
    ///   - query: `[B, Nq, embedDimension]` or `[Nq, embedDimension]`.
    ///   - key: `[B, Nk, keyInputDimension]` or `[Nk, keyInputDimension]`, the rank of `query`.
    ///   - value: `[B, Nk, valueInputDimension]` or `[Nk, valueInputDimension]`.
    ///   - mask: which keys each query may see, applied in every head.
    ///   - bias: added to every head's scaled scores, broadcast to `[B, numHeads, Nq, Nk]`.
    ///   - scale: multiplies each head's `Q·Kᵀ`; default `1/√headDimension`.
    ///   - outputs: the heads' weights and log-sum-exp to return besides the output, as
    ///     ``scaledDotProductAttention(query:key:value:mask:bias:scale:returning:options:)`` returns them.
    ///   - options: the implementation and threads of the projections and of the attention between them.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func callAsFunction(
        query: Tensor<Scalar>, key: Tensor<Scalar>, value: Tensor<Scalar>,
        mask: AttentionMask = .none, bias: Tensor<Scalar>? = nil, scale: Scalar? = nil,
        returning outputs: AttentionOutputs = [], options: AttentionOptions = AttentionOptions()
    ) throws -> MultiHeadAttentionResult<Scalar> {
        let batched = query.rank == 3
        for (name, x) in [("query", query), ("key", key), ("value", value)] {
            guard x.rank == (batched ? 3 : 2), x.rank == 2 || x.rank == 3 else {
                throw AttentionError.invalidShape(
                    argument: name, shape: x.shape,
                    reason: "expected [B, N, features] or [N, features], the same rank as query (\(query.rank))")
            }
        }
        let q = try splitHeads(queryProjection(query, argument: "query", options: options), heads: numHeads)
        let k = try splitHeads(keyProjection(key, argument: "key", options: options), heads: numKeyValueHeads)
        let v = try splitHeads(valueProjection(value, argument: "value", options: options), heads: numKeyValueHeads)
        let attended = try scaledDotProductAttention(
            query: q, key: k, value: v, mask: mask, bias: bias, scale: scale, returning: outputs, options: options)
        var merged = mergeHeads(attended.output)
        if !batched { merged = try merged.reshaped(Array(merged.shape.dropFirst())) }
        let output = try outputProjection(merged, options: options)
        // Unbatched input drops the batch dimension of the per-head outputs too.
        func unbatched(_ t: Tensor<Scalar>?) throws -> Tensor<Scalar>? {
            guard let t, !batched else { return t }
            return try t.reshaped(Array(t.shape.dropFirst()))
        }
        return MultiHeadAttentionResult(output: output, weights: try unbatched(attended.weights),
                                        logSumExp: try unbatched(attended.logSumExp), path: attended.path)
    }

    /// `[B, N, H·Dh]` (or `[N, H·Dh]`) to `[B, H, N, Dh]`.
    func splitHeads(_ x: Tensor<Scalar>, heads: Int) throws -> Tensor<Scalar> {
        let b = x.rank == 3 ? x.shape[0] : 1
        let n = x.shape[x.rank - 2], dh = headDimension
        var out = [Scalar](repeating: 0, count: x.count)
        for bi in 0..<b { for i in 0..<n { for h in 0..<heads { for c in 0..<dh {
            out[((bi * heads + h) * n + i) * dh + c] = x.scalars[((bi * n + i) * heads + h) * dh + c]
        } } } }
        return Tensor(uncheckedShape: [b, heads, n, dh], scalars: out)
    }

    /// `[B, H, N, Dh]` to `[B, N, H·Dh]`.
    func mergeHeads(_ x: Tensor<Scalar>) -> Tensor<Scalar> {
        let (b, heads, n, dh) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var out = [Scalar](repeating: 0, count: x.count)
        for bi in 0..<b { for h in 0..<heads { for i in 0..<n { for c in 0..<dh {
            out[((bi * n + i) * heads + h) * dh + c] = x.scalars[((bi * heads + h) * n + i) * dh + c]
        } } } }
        return Tensor(uncheckedShape: [b, n, heads * dh], scalars: out)
    }
}

/// The output of ``MultiHeadAttention``.
public struct MultiHeadAttentionResult<Scalar: AttentionScalar>: Sendable {
    /// `[B, Nq, embedDimension]` (or `[Nq, embedDimension]`).
    public let output: Tensor<Scalar>
    /// `[B, numHeads, Nq, Nk]` (or `[numHeads, Nq, Nk]`), if requested.
    public let weights: Tensor<Scalar>?
    /// `[B, numHeads, Nq]` (or `[numHeads, Nq]`), if requested; -∞ for a query that sees no key.
    public let logSumExp: Tensor<Scalar>?
    /// Which code computed the attention between the projections, and why.
    public let path: AttentionPath
}
