/// What ``scaledDotProductAttention(query:key:value:mask:bias:scale:returning:options:)`` should return
/// besides the output.
public struct AttentionOutputs: OptionSet, Sendable {
    /// The set's bits, one per output.
    public let rawValue: Int
    /// The outputs whose bits `rawValue` holds.
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// The attention weights `[B, Hq, Nq, Nk]`. Costs `Nq × Nk` memory per head.
    public static let weights = AttentionOutputs(rawValue: 1 << 0)
    /// The log-sum-exp of each row's scaled, masked scores `[B, Hq, Nq]`.
    public static let logSumExp = AttentionOutputs(rawValue: 1 << 1)
    /// Both.
    public static let all: AttentionOutputs = [.weights, .logSumExp]
}

/// The result of an attention call. Shapes drop the leading dimensions the inputs dropped:
///
/// | input       | output          | weights          | logSumExp     |
/// |-------------|-----------------|------------------|---------------|
/// | `[B,H,N,D]` | `[B, Hq, Nq, Dv]` | `[B, Hq, Nq, Nk]` | `[B, Hq, Nq]` |
/// | `[H,N,D]`   | `[Hq, Nq, Dv]`    | `[Hq, Nq, Nk]`    | `[Hq, Nq]`    |
/// | `[N,D]`     | `[Nq, Dv]`        | `[Nq, Nk]`        | `[Nq]`        |
/// | `[D]`       | `[Dv]`            | `[Nk]`            | `[]` (one value) |
public struct AttentionResult<Scalar: AttentionScalar>: Sendable {
    /// The weighted averages of the values, one per query.
    public let output: Tensor<Scalar>
    /// The weights `P = softmax(scale · Q·Kᵀ + bias, masked)`, if requested. Rows sum to 1, dead rows are 0.
    public let weights: Tensor<Scalar>?
    /// `L_i = log Σ_j exp(S_ij)` over the visible keys, if requested; `-infinity` for a dead row.
    /// With it, `P_ij = exp(S_ij - L_i)`: the backward pass and the merging of partial results need it.
    public let logSumExp: Tensor<Scalar>?
    /// Which code computed the result, and why (for example, `Double` always runs on the reference).
    public let path: AttentionPath
}

extension Tensor where Element: AttentionScalar {
    /// Throws if any element is NaN or infinite, naming `argument` and the first offending index.
    ///
    /// Attention itself is defined for any finite input; the `attention` command runs this check on
    /// every input by default, because a NaN in one key silently spreads to every query that sees it.
    public func checkFinite(argument: String) throws {
        if let bad = scalars.firstIndex(where: { !$0.isFinite }) {
            throw AttentionError.nonFinite(
                argument: argument, index: unflatten(bad, shape: shape), value: scalars[bad].doubleValue)
        }
    }
}
