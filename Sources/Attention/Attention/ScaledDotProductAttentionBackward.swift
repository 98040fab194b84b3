import Foundation

/// Gradients of ``scaledDotProductAttention(query:key:value:mask:bias:scale:returning:options:)``.
public struct AttentionGradients<Scalar: AttentionScalar>: Sendable {
    /// ∂L/∂Q, shaped like the query.
    public let query: Tensor<Scalar>
    /// ∂L/∂K, shaped like the key (summed over the query heads that share each key/value head).
    public let key: Tensor<Scalar>
    /// ∂L/∂V, shaped like the value (summed the same way).
    public let value: Tensor<Scalar>
    /// ∂L/∂bias, shaped like the bias (summed over its broadcast dimensions), if a bias was given.
    public let bias: Tensor<Scalar>?
    /// Which code computed the gradients, and why.
    public let path: AttentionPath
}

/// The backward pass of scaled dot-product attention: given ∂L/∂O, the gradients of the query, key,
/// value and bias.
///
/// `Float` runs the tiled backward kernel (probabilities recomputed block by block from the
/// log-sum-exp; O(N) memory beyond the bias's own gradient: transposed copies of the query and of
/// ∂L/∂O, and a ∂L/∂Q buffer per thread after the first; all cores, or one for a problem with
/// B·Hq·Nq·Nk·(D+Dv) below 2²²; a broadcast bias's gradient is summed over the dimensions it repeats
/// along); `Double` runs the reference in `Double`.
/// ``AttentionGradients/path`` says which.
///
/// Each line differentiates a line of the forward pass:
/// ```
/// forward                              backward
/// S = scale·Q·Kᵀ + bias (masked -inf)  dQ = scale·dS·K,  dK = scale·dSᵀ·Q,  dBias = dS
/// P = softmax(S)                       dS = P ⊙ (dP - rowsum(P ⊙ dP)),  rowsum(P ⊙ dP) = rowsum(dO ⊙ O)
/// O = P·V                              dP = dO·Vᵀ,  dV = Pᵀ·dO
/// ```
/// Hidden keys have P = 0 and so get no gradient; a dead row (no visible key) gives zero gradients.
/// With grouped-query attention, dK and dV sum over the query heads of each group.
///
/// - Parameters:
///   - query: the forward pass's query.
///   - key: the forward pass's key.
///   - value: the forward pass's value.
///   - outputGradient: ∂L/∂O, shaped like the forward output.
///   - mask: the forward pass's mask.
///   - bias: the forward pass's bias; its gradient is returned when given.
///   - scale: the forward pass's scale; default `1/√D`.
///   - forward: the forward pass's result for these same inputs, computed with `returning: .logSumExp`.
///     The tiled backward then reuses its output and log-sum-exp instead of running the forward again,
///     as training does (the forward has run already). Without it the forward is recomputed. It must be
///     the result of these inputs: only its shapes can be checked.
///   - options: which implementation, how many threads.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func scaledDotProductAttentionBackward<Scalar: AttentionScalar>(
    query: Tensor<Scalar>, key: Tensor<Scalar>, value: Tensor<Scalar>, outputGradient: Tensor<Scalar>,
    mask: AttentionMask = .none, bias: Tensor<Scalar>? = nil, scale: Scalar? = nil,
    forward: AttentionResult<Scalar>? = nil, options: AttentionOptions = AttentionOptions()
) throws -> AttentionGradients<Scalar> {
    let problem = try AttentionProblem(query: query, key: key, value: value, mask: mask, bias: bias, scale: scale)
    let s = problem.shape
    guard outputGradient.shape == s.outputShape else {
        throw AttentionError.shapeMismatch(argument: "outputGradient", shape: outputGradient.shape, other: "the output",
                                           otherShape: s.outputShape, reason: "the output gradient must have the output's shape")
    }
    if let forward {
        guard forward.output.shape == s.outputShape else {
            throw AttentionError.shapeMismatch(argument: "forward.output", shape: forward.output.shape, other: "the output",
                                               otherShape: s.outputShape, reason: "the saved forward must be of these inputs")
        }
        guard let lse = forward.logSumExp, lse.shape == Array(s.outputShape.dropLast()) else {
            throw AttentionError.invalidArgument(
                argument: "forward.logSumExp",
                reason: "the saved forward needs its log-sum-exp of shape \(Array(s.outputShape.dropLast()).shapeDescription) (call the forward with returning: .logSumExp)")
        }
    }
    let kernels = Scalar._kernels
    let execution = try options.execution(tiledComputes: kernels != nil, scalar: Scalar.self)
    if let isa = execution.instructionSet, let kernels {
        let saved = forward.flatMap { f in f.logSumExp.map { (output: f.output.scalars, logSumExp: $0.scalars) } }
        let g = kernels.attentionBackward(problem, outputGradient.scalars, saved, isa, execution.threads)
        return AttentionGradients(
            query: Tensor(uncheckedShape: query.shape, scalars: g.dQ), key: Tensor(uncheckedShape: key.shape, scalars: g.dK),
            value: Tensor(uncheckedShape: value.shape, scalars: g.dV),
            bias: g.dBias.flatMap { values in bias.map { Tensor(uncheckedShape: $0.shape, scalars: values) } },
            path: AttentionPath(implementation: .tiled(isa), detail: g.detail))
    }
    let g = Reference.attentionBackward(problem, outputGradient: outputGradient.scalars.map(\.doubleValue))
    func tensor(_ values: [Double], _ shape: [Int]) -> Tensor<Scalar> {
        Tensor(uncheckedShape: shape, scalars: values.map { Scalar(fromDouble: $0) })
    }
    return AttentionGradients(
        query: tensor(g.query, query.shape), key: tensor(g.key, key.shape), value: tensor(g.value, value.shape),
        bias: bias.map { tensor(g.bias, $0.shape) }, path: AttentionPath(implementation: .reference, detail: execution.reason))
}
