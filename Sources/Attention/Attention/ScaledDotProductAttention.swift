import Foundation

/// Scaled dot-product attention: `O = softmax(scale · Q·Kᵀ + bias, masked) · V`.
///
/// This implements, for every batch element `b`, query head `h` and query `i`:
/// ```
/// g        = h / (Hq / Hkv)                         // the key/value head this query head reads
/// S[j]     = scale · Σ_c Q[b,h,i,c] · K[b,g,j,c] + bias[b,h,i,j]   if the mask allows (i, j)
///          = -∞                                                     otherwise
/// L        = log Σ_j exp(S[j])                      // log-sum-exp
/// P[j]     = exp(S[j] - L)                          // weights: ≥ 0, sum to 1
/// O[b,h,i] = Σ_j P[j] · V[b,g,j,:]
/// ```
/// A row whose every score is -∞ (no visible key) is *dead*: `O = 0`, `P = 0`, `L = -∞`. Never NaN.
///
/// Dimension letters: `B` batch, `Hq` query heads, `Hkv` key/value heads, `Nq` queries, `Nk` keys,
/// `D` query/key head dimension, `Dv` value head dimension.
///
/// | argument | shape |
/// |----------|-------|
/// | `query`  | `[B, Hq, Nq, D]`, `[Hq, Nq, D]`, `[Nq, D]`, or a single query `[D]` |
/// | `key`    | `[B, Hkv, Nk, D]`, `[Hkv, Nk, D]`, `[Nk, D]` (also for a single query) |
/// | `value`  | `[B, Hkv, Nk, Dv]`, `[Hkv, Nk, Dv]`, `[Nk, Dv]` |
/// | `bias`   | broadcastable to the weights' shape, e.g. `[Nq, Nk]` or `[1, Hq, Nq, Nk]` |
///
/// `Hq` must be a multiple of `Hkv`: that is grouped-query attention (`Hkv == 1` is multi-query
/// attention). Query head `h` reads key/value head `h / (Hq / Hkv)`, consecutive groups as in
/// PyTorch's `enable_gqa=True`; K and V are never copied or repeated.
///
/// ```swift
/// let q = try Tensor<Float>.randomNormal(shape: [2, 8, 128, 64], seed: 1)
/// let k = try Tensor<Float>.randomNormal(shape: [2, 2, 128, 64], seed: 2)   // GQA: 8 over 2
/// let v = try Tensor<Float>.randomNormal(shape: [2, 2, 128, 64], seed: 3)
/// let r = try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal, returning: .logSumExp)
/// r.output.shape      // [2, 8, 128, 64]
/// ```
///
/// Paths: `Float` runs a tiled FlashAttention-style kernel (online softmax over blocks of keys, SIMD
/// micro-kernels, AVX-512 or AVX2 when the CPU has it, all cores) that never materializes the `Nq × Nk` scores
/// unless weights are requested; every mask and the bias are applied inside it. `Double` runs the
/// reference. ``AttentionResult/path`` says which ran; ``AttentionOptions`` can choose.
///
/// Precision: the reference accumulates in `Double`. The tiled kernel accumulates in `Float` and
/// computes `exp` with a polynomial (relative error about 1e-7); its error against the reference is
/// tested to stay within twice that of a naive `Float` computation.
///
/// - Parameters:
///   - query: `[B, Hq, Nq, D]`, `[Hq, Nq, D]` or `[Nq, D]`.
///   - key: `[B, Hkv, Nk, D]` (or the same with fewer leading dimensions, as `query` has); `Hq` is a
///     multiple of `Hkv` (grouped-query attention when larger).
///   - value: `[B, Hkv, Nk, Dv]`, likewise.
///   - mask: which keys each query may see (`true` = may attend); see ``AttentionMask``.
///   - bias: added to the scaled scores before the softmax (ALiBi, relative positions). `-∞` hides
///     a key; NaN and `+∞` are rejected.
///   - scale: multiplies `Q·Kᵀ`; default `1/√D`.
///   - outputs: ``AttentionOutputs/weights`` and/or ``AttentionOutputs/logSumExp``.
///   - options: which implementation, how many threads.
/// - Throws: ``AttentionError`` naming the argument and shapes when shapes disagree, a sequence is
///   empty, head counts do not divide, the mask does not fit, or the scale is not finite; and when
///   `options` asks for something this machine or type cannot do.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func scaledDotProductAttention<Scalar: AttentionScalar>(
    query: Tensor<Scalar>, key: Tensor<Scalar>, value: Tensor<Scalar>,
    mask: AttentionMask = .none, bias: Tensor<Scalar>? = nil, scale: Scalar? = nil,
    returning outputs: AttentionOutputs = [], options: AttentionOptions = AttentionOptions()
) throws -> AttentionResult<Scalar> {
    let problem = try AttentionProblem(query: query, key: key, value: value, mask: mask, bias: bias, scale: scale)
    let kernels = Scalar._kernels
    let execution = try options.execution(tiledComputes: kernels != nil, scalar: Scalar.self)
    guard let isa = execution.instructionSet, let kernels else {
        return AttentionResult(Reference.attention(problem, keepWeights: outputs.contains(.weights)),
                               shape: problem.shape, outputs: outputs, reason: execution.reason)
    }
    return kernels.attention(problem, outputs, isa, execution.threads)
}

/// The oracle: the same computation and semantics as
/// ``scaledDotProductAttention(query:key:value:mask:bias:scale:returning:options:)``, done naively in `Double`,
/// always returning weights and log-sum-exp.
///
/// Use it to check a faster path: by the library's tolerance rule, a fast `Float` result's maximum
/// error against this is at most twice that of a naive `Float` computation.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func referenceScaledDotProductAttention<Scalar: AttentionScalar>(
    query: Tensor<Scalar>, key: Tensor<Scalar>, value: Tensor<Scalar>,
    mask: AttentionMask = .none, bias: Tensor<Scalar>? = nil, scale: Scalar? = nil
) throws -> AttentionResult<Double> {
    let problem = try AttentionProblem(query: query, key: key, value: value, mask: mask, bias: bias, scale: scale)
    return AttentionResult(Reference.attention(problem, keepWeights: true), shape: problem.shape, outputs: .all,
                           reason: "requested")
}

extension AttentionResult {
    init(_ result: Reference.Result, shape: AttentionShape, outputs: AttentionOutputs, reason: String) {
        func tensor(_ values: [Double], _ shape: [Int]) -> Tensor<Scalar> {
            Tensor(uncheckedShape: shape, scalars: values.map { Scalar(fromDouble: $0) })
        }
        self.output = tensor(result.output, shape.outputShape)
        self.weights = outputs.contains(.weights) ? result.weights.map { tensor($0, shape.weightsShape) } : nil
        self.logSumExp = outputs.contains(.logSumExp) ? tensor(result.logSumExp, shape.logSumExpShape) : nil
        self.path = AttentionPath(implementation: .reference, detail: reason)
    }
}
