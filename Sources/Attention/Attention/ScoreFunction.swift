import Foundation

/// How a query and a key are compared before the softmax. These are the score functions the
/// attention literature names; ``scaledDotProductAttention(query:key:value:mask:bias:scale:returning:options:)``
/// is the fast special case ``scaledDotProduct``.
///
/// Shapes: a query has `Dq` components, a key `Dk`; the dot-product forms need `Dq == Dk`.
public enum ScoreFunction<Scalar: AttentionScalar>: Sendable {
    /// `q·k`.
    case dotProduct
    /// `q·k / √Dk`, the Transformer's choice: it keeps the scores' spread near 1 whatever the dimension.
    case scaledDotProduct
    /// `q·k · factor`.
    case scaled(by: Scalar)
    /// `q·k / T`: low temperature sharpens the weights toward one-hot, high temperature flattens them.
    case temperature(Scalar)
    /// Additive (Bahdanau) attention: `vᵀ tanh(W₁ q + W₂ k)` with `W₁ [A, Dq]`, `W₂ [A, Dk]`, `v [A]`.
    case additive(queryWeight: Tensor<Scalar>, keyWeight: Tensor<Scalar>, vector: Tensor<Scalar>)
    /// General (Luong, multiplicative) attention: `qᵀ W k` with `W [Dq, Dk]`.
    case general(weight: Tensor<Scalar>)

    /// Checks the parameters against the query and key dimensions.
    func validate(queryDimension dq: Int, keyDimension dk: Int, queryShape: [Int], keyShape: [Int]) throws {
        func dotProductNeedsEqualDimensions() throws {
            guard dq == dk else {
                throw AttentionError.shapeMismatch(
                    argument: "key", shape: keyShape, other: "query", otherShape: queryShape,
                    reason: "a dot-product score needs equal query and key dimensions (\(dq) vs \(dk))")
            }
        }
        switch self {
        case .dotProduct, .scaledDotProduct:
            try dotProductNeedsEqualDimensions()
        case .scaled(let factor):
            try dotProductNeedsEqualDimensions()
            guard factor.isFinite else {
                throw AttentionError.invalidArgument(argument: "scale", reason: "must be finite, got \(factor)")
            }
        case .temperature(let t):
            try dotProductNeedsEqualDimensions()
            guard t.isFinite, t > 0 else {
                throw AttentionError.invalidArgument(argument: "temperature", reason: "must be finite and positive, got \(t)")
            }
        case let .additive(w1, w2, v):
            guard v.rank == 1, !v.shape.contains(0) else {
                throw AttentionError.invalidShape(argument: "vector", shape: v.shape, reason: "expected [A] with A > 0")
            }
            let a = v.shape[0]
            guard w1.shape == [a, dq] else {
                throw AttentionError.invalidShape(argument: "queryWeight", shape: w1.shape,
                                                  reason: "expected [\(a), \(dq)] ([A, Dq])")
            }
            guard w2.shape == [a, dk] else {
                throw AttentionError.invalidShape(argument: "keyWeight", shape: w2.shape,
                                                  reason: "expected [\(a), \(dk)] ([A, Dk])")
            }
        case .general(let w):
            guard w.shape == [dq, dk] else {
                throw AttentionError.invalidShape(argument: "weight", shape: w.shape,
                                                  reason: "expected [\(dq), \(dk)] ([Dq, Dk])")
            }
        }
    }

    /// The score of one query against one key, in `Double`.
    func score(_ q: ArraySlice<Double>, _ k: ArraySlice<Double>) -> Double {
        func dot(_ a: ArraySlice<Double>, _ b: ArraySlice<Double>) -> Double {
            zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
        }
        switch self {
        case .dotProduct: return dot(q, k)
        case .scaledDotProduct: return dot(q, k) / Double(k.count).squareRoot()
        case .scaled(let factor): return dot(q, k) * factor.doubleValue
        case .temperature(let t): return dot(q, k) / t.doubleValue
        case let .additive(w1, w2, v):
            let a = v.count
            var total = 0.0
            for r in 0..<a {
                var hidden = 0.0
                for (c, x) in q.enumerated() { hidden += w1.scalars[r * q.count + c].doubleValue * x }
                for (c, x) in k.enumerated() { hidden += w2.scalars[r * k.count + c].doubleValue * x }
                total += v.scalars[r].doubleValue * tanh(hidden)
            }
            return total
        case .general(let w):
            var total = 0.0
            for (r, x) in q.enumerated() {
                var wk = 0.0
                for (c, y) in k.enumerated() { wk += w.scalars[r * k.count + c].doubleValue * y }
                total += x * wk
            }
            return total
        }
    }
}

/// Attention with any ``ScoreFunction``, computed by the reference (in `Double`).
///
/// `query` is `[Nq, Dq]` or a single query `[Dq]`; `key` is `[Nk, Dk]`; `value` is `[Nk, Dv]`.
/// The result has the shapes of ``AttentionResult`` for rank 2 (or rank 1) input, with weights and
/// log-sum-exp always filled in. Masks behave as everywhere else (dead rows output 0).
///
/// ```swift
/// let r = try scoredAttention(query: q, key: k, value: v, score: .additive(queryWeight: w1, keyWeight: w2, vector: a))
/// ```
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func scoredAttention<Scalar: AttentionScalar>(
    query: Tensor<Scalar>, key: Tensor<Scalar>, value: Tensor<Scalar>,
    score: ScoreFunction<Scalar>, mask: AttentionMask = .none
) throws -> AttentionResult<Scalar> {
    guard query.rank == 1 || query.rank == 2 else {
        throw AttentionError.invalidShape(argument: "query", shape: query.shape, reason: "expected [Nq, Dq] or [Dq]")
    }
    guard key.rank == 2 else {
        throw AttentionError.invalidShape(argument: "key", shape: key.shape, reason: "expected [Nk, Dk]")
    }
    guard value.rank == 2 else {
        throw AttentionError.invalidShape(argument: "value", shape: value.shape, reason: "expected [Nk, Dv]")
    }
    let queries = query.rank == 1 ? [1] + query.shape : query.shape
    for (name, shape) in [("query", query.shape), ("key", key.shape), ("value", value.shape)] where shape.contains(0) {
        throw AttentionError.emptySequence(argument: name, shape: shape)
    }
    guard key.shape[0] == value.shape[0] else {
        throw AttentionError.shapeMismatch(
            argument: "value", shape: value.shape, other: "key", otherShape: key.shape,
            reason: "key and value must have the same sequence length")
    }
    let (nq, dq, nk, dk, dv) = (queries[0], queries[1], key.shape[0], key.shape[1], value.shape[1])
    try score.validate(queryDimension: dq, keyDimension: dk, queryShape: query.shape, keyShape: key.shape)

    let shape = AttentionShape(B: 1, Hq: 1, Hkv: 1, Nq: nq, Nk: nk, D: dq, Dv: dv, inputRank: query.rank)
    let mask = try ResolvedMask(mask, batchSize: 1, heads: 1, queryLength: nq, keyLength: nk,
                                weightsShape: shape.weightsShape)
    let q = query.scalars.map(\.doubleValue), k = key.scalars.map(\.doubleValue)
    let v = value.scalars.map(\.doubleValue)
    let result = Reference.attention(
        shape: shape, mask: mask, keepWeights: true, bias: nil,
        score: { _, _, i, j in score.score(q[i * dq..<(i + 1) * dq], k[j * dk..<(j + 1) * dk]) },
        value: { _, _, j, c in v[j * dv + c] })
    return AttentionResult(result, shape: shape, outputs: .all, reason: "score functions other than scaled dot product run on the reference")
}

/// One query against a few keys, the form attention is first taught in: returns the raw scores,
/// the softmax weights and the weighted average of the values.
///
/// ```swift
/// let r = try singleQueryAttention(query: [0.5, 0.5], keys: [[0.1, 0.2], [0.2, 0.3]],
///                                  values: [[0.6, 0.8], [0.7, 0.9]], scale: 1)
/// r.scores   // [0.15, 0.25]
/// r.weights  // [0.4750..., 0.5249...]
/// r.output   // [0.6524979187478941, 0.852497918747894]
/// ```
///
/// - Parameters:
///   - query: the query vector, `D` values.
///   - keys: the keys, each of `D` values.
///   - values: one value vector per key, all of one length.
///   - scale: multiplies each dot product; default `1/√D`.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func singleQueryAttention<Scalar: AttentionScalar>(
    query: [Scalar], keys: [[Scalar]], values: [[Scalar]], scale: Scalar? = nil
) throws -> SingleQueryAttention<Scalar> {
    let k = try Tensor<Scalar>(keys, argument: "keys"), v = try Tensor<Scalar>(values, argument: "values")
    let score: ScoreFunction<Scalar> = scale.map { .scaled(by: $0) } ?? .scaledDotProduct
    let result = try scoredAttention(query: Tensor<Scalar>(query), key: k, value: v, score: score)
    let q = query.map(\.doubleValue)
    let scores = keys.map { key in
        Scalar(fromDouble: score.score(q[...], key.map(\.doubleValue)[...]))
    }
    return SingleQueryAttention(scores: scores, weights: result.weights?.scalars ?? [],
                                output: result.output.scalars)
}

/// The three steps of attention for one query: compare, normalize, blend.
public struct SingleQueryAttention<Scalar: AttentionScalar>: Sendable, Equatable {
    /// The score of the query against each key (before the softmax).
    public let scores: [Scalar]
    /// `softmax(scores)`: non-negative, summing to 1.
    public let weights: [Scalar]
    /// `Σ_j weights[j] · values[j]`.
    public let output: [Scalar]
}
