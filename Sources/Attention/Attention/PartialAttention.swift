import Foundation

/// Attention of some queries over a *subset* of the keys: the normalized output and the log-sum-exp
/// of the scores over that subset.
///
/// Attention over disjoint key sets `K₁ ∪ K₂ ∪ …` can be computed piece by piece and merged exactly:
/// ```
/// L = log Σₛ exp(Lₛ)            O = Σₛ exp(Lₛ - L) · Oₛ
/// ```
/// That is how the kernel splits long key sequences across threads, and how sequence-parallel
/// attention combines the results of several machines. A piece in which a row saw no key has
/// `Lₛ = -inf` and contributes nothing; a row that saw no key in any piece stays 0 with `L = -inf`.
public struct PartialAttention<Scalar: AttentionScalar>: Sendable {
    /// `[..., Dv]`: each row is normalized over its own key subset.
    public let output: Tensor<Scalar>
    /// `[...]`: the output's shape without its last dimension.
    public let logSumExp: Tensor<Scalar>

    /// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` unless
    ///   `logSumExp.shape == output.shape.dropLast()`.
    public init(output: Tensor<Scalar>, logSumExp: Tensor<Scalar>) throws {
        guard output.rank >= 1, logSumExp.shape == Array(output.shape.dropLast()) else {
            throw AttentionError.shapeMismatch(
                argument: "logSumExp", shape: logSumExp.shape, other: "output", otherShape: output.shape,
                reason: "expected the output's shape without its last dimension")
        }
        self.output = output
        self.logSumExp = logSumExp
    }

    /// The partial result of an attention call made with `returning: .logSumExp`.
    public init(_ result: AttentionResult<Scalar>) throws {
        guard let logSumExp = result.logSumExp else {
            throw AttentionError.invalidArgument(
                argument: "result", reason: "it has no log-sum-exp: compute it with returning: .logSumExp")
        }
        try self.init(output: result.output, logSumExp: logSumExp)
    }
}

/// Merges attention results over disjoint key sets into the result over their union (see
/// ``PartialAttention``). Accumulates in `Double`.
///
/// ```swift
/// let first = try scaledDotProductAttention(query: q, key: k1, value: v1, returning: .logSumExp)
/// let second = try scaledDotProductAttention(query: q, key: k2, value: v2, returning: .logSumExp)
/// let whole = try mergePartialAttention([PartialAttention(first), PartialAttention(second)])
/// // whole.output equals attention over the concatenated keys and values.
/// ```
///
/// - Throws: ``AttentionError`` if `parts` is empty or the parts' shapes differ.
public func mergePartialAttention<Scalar: AttentionScalar>(_ parts: [PartialAttention<Scalar>]) throws -> PartialAttention<Scalar> {
    guard let first = parts.first else {
        throw AttentionError.invalidArgument(argument: "parts", reason: "at least one partial result is needed")
    }
    if let odd = parts.firstIndex(where: { $0.output.shape != first.output.shape }) {
        throw AttentionError.shapeMismatch(
            argument: "parts[\(odd)].output", shape: parts[odd].output.shape, other: "parts[0].output",
            otherShape: first.output.shape, reason: "every part must have the same shape")
    }
    let rows = first.logSumExp.count
    let dv = first.output.shape.last ?? 0
    var output = [Scalar](repeating: 0, count: first.output.count)
    var logSumExp = [Scalar](repeating: -.infinity, count: rows)
    for row in 0..<rows {
        let ls = parts.map { $0.logSumExp.scalars[row].doubleValue }
        let maximum = ls.max() ?? -.infinity
        guard maximum > -.infinity else { continue }
        let total = ls.reduce(0.0) { $0 + exp($1 - maximum) }
        var merged = [Double](repeating: 0, count: dv)
        for (part, l) in zip(parts, ls) where l > -.infinity {
            let weight = exp(l - maximum) / total
            for c in 0..<dv { merged[c] += weight * part.output.scalars[row * dv + c].doubleValue }
        }
        for c in 0..<dv { output[row * dv + c] = Scalar(fromDouble: merged[c]) }
        logSumExp[row] = Scalar(fromDouble: maximum + log(total))
    }
    return try PartialAttention(
        output: Tensor(shape: first.output.shape, scalars: output),
        logSumExp: Tensor(shape: first.logSumExp.shape, scalars: logSumExp))
}
