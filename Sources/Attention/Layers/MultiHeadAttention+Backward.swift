/// Gradients of every parameter and input of a ``MultiHeadAttention`` layer.
public struct MultiHeadAttentionGradients<Scalar: AttentionScalar>: Sendable {
    /// ∂L/∂query, ∂L/∂key, ∂L/∂value inputs (for self-attention, the input's gradient is their sum).
    public let query: Tensor<Scalar>
    /// With respect to the key input, its shape.
    public let key: Tensor<Scalar>
    /// With respect to the value input, its shape.
    public let value: Tensor<Scalar>
    /// Per projection: the weight's and bias's gradients.
    public let projections: [MultiHeadAttention<Scalar>.Projection: LinearGradients<Scalar>]
}

extension MultiHeadAttention {
    /// The backward pass: recomputes the forward's intermediates, then runs it in reverse —
    /// output projection, merge of heads, attention (``scaledDotProductAttentionBackward(query:key:value:outputGradient:mask:bias:scale:forward:options:)``),
    /// split into heads, the three input projections.
    ///
    /// - Parameters:
    ///   - query: the forward pass's query input.
    ///   - key: the forward pass's key input.
    ///   - value: the forward pass's value input.
    ///   - outputGradient: ∂L/∂output, shaped like the layer's output.
    ///   - mask: the forward pass's mask.
    ///   - bias: the forward pass's bias.
    ///   - scale: the forward pass's scale; default `1/√headDimension`.
    ///   - options: the implementation and threads of every product and of attention, forward and backward.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func backward(
        query: Tensor<Scalar>, key: Tensor<Scalar>, value: Tensor<Scalar>, outputGradient: Tensor<Scalar>,
        mask: AttentionMask = .none, bias: Tensor<Scalar>? = nil, scale: Scalar? = nil, options: AttentionOptions = AttentionOptions()
    ) throws -> MultiHeadAttentionGradients<Scalar> {
        let batched = query.rank == 3
        let projectedQ = try queryProjection(query, argument: "query", options: options)
        let projectedK = try keyProjection(key, argument: "key", options: options)
        let projectedV = try valueProjection(value, argument: "value", options: options)
        let q = try splitHeads(projectedQ, heads: numHeads)
        let k = try splitHeads(projectedK, heads: numKeyValueHeads)
        let v = try splitHeads(projectedV, heads: numKeyValueHeads)
        let attended = try scaledDotProductAttention(query: q, key: k, value: v, mask: mask, bias: bias, scale: scale, returning: .logSumExp,
                                                     options: options)
        var merged = mergeHeads(attended.output)
        if !batched { merged = try merged.reshaped(Array(merged.shape.dropFirst())) }

        let output = try outputProjection.backward(input: merged, outputGradient: outputGradient, options: options)
        let dMerged = batched ? output.input : try output.input.reshaped([1] + output.input.shape)
        let dHeads = try splitHeads(dMerged, heads: numHeads)
        // The attention's own forward has just run: its backward reuses it rather than running it again.
        let attention = try scaledDotProductAttentionBackward(query: q, key: k, value: v, outputGradient: dHeads, mask: mask, bias: bias,
                                                              scale: scale, forward: attended, options: options)
        func unsplit(_ t: Tensor<Scalar>, like projected: Tensor<Scalar>) throws -> Tensor<Scalar> {
            try mergeHeads(t).reshaped(projected.shape)
        }
        let dq = try queryProjection.backward(input: query, outputGradient: unsplit(attention.query, like: projectedQ), options: options)
        let dk = try keyProjection.backward(input: key, outputGradient: unsplit(attention.key, like: projectedK), options: options)
        let dv = try valueProjection.backward(input: value, outputGradient: unsplit(attention.value, like: projectedV), options: options)
        return MultiHeadAttentionGradients(
            query: dq.input, key: dk.input, value: dv.input,
            projections: [.query: dq, .key: dk, .value: dv, .output: output])
    }
}
