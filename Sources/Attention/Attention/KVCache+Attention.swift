import _AttentionKernels

/// Scaled dot-product attention of new queries over the keys and values in a ``KVCache``.
///
/// The same computation and semantics as
/// ``scaledDotProductAttention(query:key:value:mask:bias:scale:returning:options:)`` with the cache's
/// keys and values as `key` and `value` (see ``KVCache/keys``), and:
/// - The queries are the last `Nq` positions appended: query `i` of batch element `b` is aligned with
///   its key `lengths[b] - Nq + i` (bottom-right, per batch element). `.causal` is what a chunk of
///   several new queries (chunked prefill) needs; a single new query sees every key anyway.
/// - Each batch element sees only the keys it holds (its length); a sliding-window cache adds
///   `.slidingWindow(left: W - 1, right: 0)`, which is also causal.
/// - `mask` and `bias` are as usual over `[B, Hq, Nq, Nk]`, `Nk` the most keys any element holds.
///   Top-left aligned components are refused: over a cache, queries come after the keys.
///
/// The tiled kernel reads the cache's storage directly: 16-bit keys and values are widened in
/// registers (or, for many queries, a block at a time into per-thread scratch), never copied whole.
/// Grouped-query attention runs without copies, as always.
///
/// | argument | shape |
/// |----------|-------|
/// | `query`  | `[B, Hq, Nq, D]`, `[Hq, Nq, D]` (B = 1), `[Nq, D]` or `[D]` (B = Hkv = 1) |
///
/// - Throws: ``AttentionError`` when the query does not fit the cache (batch size, head dimension,
///   heads not a multiple of the cache's), the cache is empty, the mask is top-left aligned or does
///   not fit, a sliding-window cache gets more queries than it can serve (`capacity - W + 1`), or
///   `options` asks for something this machine cannot do.
public func scaledDotProductAttention(
    query: Tensor<Float>, cache: KVCache, mask: AttentionMask = .none, bias: Tensor<Float>? = nil,
    scale: Float? = nil, returning outputs: AttentionOutputs = [], options: AttentionOptions = AttentionOptions()
) throws -> AttentionResult<Float> {
    let problem = try cache.problem(query: query, mask: mask, bias: bias, scale: scale)
    let execution = try options.execution(tiledComputes: true, scalar: Float.self)
    guard let isa = execution.instructionSet else {
        // The reference, on the keys and values as stored (rounded), widened.
        let full = AttentionProblem(shape: problem.shape, query: problem.query, key: cache.keys.scalars,
                                    value: cache.values.scalars, mask: problem.mask, bias: problem.bias, scale: problem.scale)
        return AttentionResult(Reference.attention(full, keepWeights: outputs.contains(.weights)),
                               shape: problem.shape, outputs: outputs, reason: execution.reason)
    }
    return cache.withSource { source in
        TiledAttention.forward(problem, source: source, outputs: outputs, isa: isa, threads: execution.threads)
    }
}

extension KVCache {
    /// Validates a query against the cache and resolves the mask with the cache's lengths, window and
    /// per-element alignment. The problem's `key` and `value` are empty: the kernel reads the cache.
    func problem(query: Tensor<Float>, mask: AttentionMask, bias: Tensor<Float>?, scale: Float?) throws
        -> AttentionProblem<Float> {
        let shape = query.shape
        guard (1...4).contains(shape.count) else {
            throw AttentionError.invalidShape(argument: "query", shape: shape, reason: "expected [D], [N, D], [H, N, D] or [B, H, N, D]")
        }
        if shape.contains(0) { throw AttentionError.emptySequence(argument: "query", shape: shape) }
        // [B, H, N, D], the missing leading extents 1 (a single query is one row). Read without
        // building arrays: a decoding step validates a query per layer.
        let rank = shape.count
        let q = (rank == 4 ? shape[0] : 1, rank >= 3 ? shape[rank - 3] : 1, rank >= 2 ? shape[rank - 2] : 1, shape[rank - 1])
        var cacheShape: [Int] { [batchSize, keyValueHeads, capacity, headDimension] }
        guard q.0 == batchSize else {
            throw AttentionError.shapeMismatch(argument: "query", shape: shape, other: "cache", otherShape: cacheShape,
                                               reason: "the query's batch size is \(q.0) and the cache's \(batchSize)")
        }
        guard q.3 == headDimension else {
            throw AttentionError.shapeMismatch(argument: "query", shape: shape, other: "cache", otherShape: cacheShape,
                                               reason: "the query's head dimension is \(q.3) and the cache's \(headDimension)")
        }
        guard q.1 % keyValueHeads == 0 else {
            throw AttentionError.headCountMismatch(queryHeads: q.1, keyValueHeads: keyValueHeads)
        }
        let Nk = keyLength
        guard Nk > 0 else { throw AttentionError.emptySequence(argument: "cache", shape: [batchSize, keyValueHeads, 0, headDimension]) }
        let Nq = q.2
        if let largest = largestChunk, let window = slidingWindow, Nq > largest {
            throw AttentionError.invalidShape(
                argument: "query", shape: shape,
                reason: "a sliding-window cache of capacity \(capacity) and window \(window) serves at most \(largest) queries at once (the first one's window must still be held)")
        }
        for component in mask.components {
            switch component {
            case .causal(.topLeft), .slidingWindow(_, _, .topLeft):
                throw AttentionError.invalidArgument(
                    argument: "mask", reason: "over a KV cache, queries come after the cached keys: use bottom-right alignment (.causal, .slidingWindow(left:right:))")
            case .diagonalBand:
                throw AttentionError.invalidArgument(
                    argument: "mask", reason: "over a KV cache, a diagonal band's offsets would shift with each batch element's length: use .causal or .slidingWindow(left:right:)")
            default: continue
            }
        }
        let attentionShape = AttentionShape(B: q.0, Hq: q.1, Hkv: keyValueHeads, Nq: Nq, Nk: Nk, D: headDimension,
                                            Dv: valueHeadDimension, inputRank: shape.count)
        var components = mask.components
        // Elements holding fewer keys than the longest see only theirs, aligned with their own last
        // key (Nk is the most any holds, so the shifts are all 0 exactly when none holds fewer).
        let uneven = (0..<batchSize).contains { held($0) < Nk }
        if uneven { components.append(.keyLengths((0..<batchSize).map(held))) }
        if let window = slidingWindow { components.append(.slidingWindow(left: window - 1, right: 0, alignment: .bottomRight)) }
        let resolved = try ResolvedMask(
            AttentionMask(components), batchSize: q.0, heads: q.1, queryLength: Nq, keyLength: Nk,
            weightsShape: attentionShape.weightsShape, diagonalShifts: uneven ? (0..<batchSize).map { held($0) - Nk } : nil)
        return AttentionProblem(shape: attentionShape, query: query.scalars, key: [], value: [], mask: resolved,
                                bias: try AttentionProblem.checkedBias(bias, shape: attentionShape),
                                scale: try AttentionProblem.checkedScale(scale, headDimension: headDimension))
    }

    /// Calls `body` with the kernel's view of the storage, valid for the call.
    func withSource<R>(_ body: (TiledAttention.KeyValueSource) -> R) -> R {
        withExtendedLifetime(buffer) {
            let offsets = slidingWindow == nil ? nil : (0..<batchSize).map(firstRow)
            return body(TiledAttention.KeyValueSource(
                keys: UnsafeRawPointer(buffer.keys), values: UnsafeRawPointer(buffer.values),
                storage: storage.kernelStorage, rowsPerHead: rowsPerHead, rowOffsets: offsets, keysInterleaved: true))
        }
    }
}
