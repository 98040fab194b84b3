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
/// Grouped-query attention runs without copies, as always. A decoding step's call (one query per
/// head, no bias, no weights or log-sum-exp asked for, a mask of `.causal` or `.slidingWindow(left:right:)`
/// at most, value heads in pieces of sixteen, and too little work to share among threads) takes a
/// single pass per key/value head instead: the same results up to rounding, in about two thirds of
/// the time (`result.path` says which ran).
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
    let q = try cache.checkedQueryShape(query, mask: mask)
    let execution = try options.execution(tiledComputes: true, scalar: Float.self)
    if let isa = execution.instructionSet, bias == nil, outputs.isEmpty,
       let result = try cache.singleQueryAttention(query, q, mask: mask, scale: scale, isa: isa) {
        return result
    }
    let problem = try cache.problem(query: query, q, mask: mask, bias: bias, scale: scale)
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
    /// The problem of a query whose shape `q` ``checkedQueryShape(_:mask:)`` returned: the mask resolved
    /// with the cache's lengths, window and per-element alignment, the bias and scale checked. The
    /// problem's `key` and `value` are empty: the kernel reads the cache.
    func problem(query: Tensor<Float>, _ q: (B: Int, H: Int, Nq: Int, D: Int), mask: AttentionMask, bias: Tensor<Float>?,
                 scale: Float?) throws -> AttentionProblem<Float> {
        let (shape, Nk, Nq) = (query.shape, keyLength, q.Nq)
        let attentionShape = AttentionShape(B: q.B, Hq: q.H, Hkv: keyValueHeads, Nq: Nq, Nk: Nk, D: headDimension,
                                            Dv: valueHeadDimension, inputRank: shape.count)
        var components = mask.components
        // Elements holding fewer keys than the longest see only theirs, aligned with their own last
        // key (Nk is the most any holds, so the shifts are all 0 exactly when none holds fewer).
        let uneven = (0..<batchSize).contains { held($0) < Nk }
        if uneven { components.append(.keyLengths((0..<batchSize).map(held))) }
        if let window = slidingWindow { components.append(.slidingWindow(left: window - 1, right: 0, alignment: .bottomRight)) }
        let resolved = try ResolvedMask(
            AttentionMask(components), batchSize: q.B, heads: q.H, queryLength: Nq, keyLength: Nk,
            weightsShape: attentionShape.weightsShape, diagonalShifts: uneven ? (0..<batchSize).map { held($0) - Nk } : nil)
        return AttentionProblem(shape: attentionShape, query: query.scalars, key: [], value: [], mask: resolved,
                                bias: try AttentionProblem.checkedBias(bias, shape: attentionShape),
                                scale: try AttentionProblem.checkedScale(scale, headDimension: headDimension))
    }

    /// The query's `[B, H, Nq, D]` (the missing leading extents 1), checked against the cache, and
    /// the mask's alignment: the checks every call makes before anything runs.
    func checkedQueryShape(_ query: Tensor<Float>, mask: AttentionMask) throws -> (B: Int, H: Int, Nq: Int, D: Int) {
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
        return (q.0, q.1, Nq, q.3)
    }

    /// Attention of one query per head, with no bias and a mask that only limits how far back each
    /// query sees (none, `.causal` or `.slidingWindow(left:right:)`, bottom-right aligned): each
    /// element's visible keys are the last ones it holds, and the single-query kernel reads them in
    /// one pass (``SingleQueryDescriptor``). Nil when the call is not of that kind, or is large
    /// enough for the tiled forward to share among threads (the same threshold: ``ForwardPlan/singleThreadWork``).
    func singleQueryAttention(_ query: Tensor<Float>, _ q: (B: Int, H: Int, Nq: Int, D: Int), mask: AttentionMask, scale: Float?,
                              isa: KernelInstructionSet) throws -> AttentionResult<Float>? {
        let (D, Dv, Nk) = (headDimension, valueHeadDimension, keyLength)
        let (B, Hq, Hkv) = (q.B, q.H, keyValueHeads), group = Hq / Hkv
        let shape = AttentionShape(B: B, Hq: Hq, Hkv: Hkv, Nq: q.Nq, Nk: Nk, D: D, Dv: Dv, inputRank: query.shape.count)
        // Decided by the work alone, not by the threads allowed: a sequence decoding alone and the
        // same sequence in a batched step (one thread each) must take the same path, bit for bit.
        guard q.Nq == 1, SingleQueryDescriptor.supports(valueHeadDimension: Dv), ForwardPlan.fitsOneThread(shape) else { return nil }
        // How many of its last keys a query sees (the cache's own window included).
        var reach = slidingWindow ?? Int.max
        for component in mask.components {
            switch component {
            case .causal(.bottomRight): continue
            case let .slidingWindow(left, right, .bottomRight) where left >= 0 && right >= 0: reach = min(reach, left + 1)
            default: return nil
            }
        }
        let scaleLog2 = Float(try AttentionProblem<Float>.checkedScale(scale, headDimension: D) * 1.442_695_040_888_963_4)
        let scalars = [Float](unsafeUninitializedCapacity: B * Hq * Dv) { output, initialized in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * B) { visible in
                var most = 0
                for b in 0..<B {
                    let count = min(held(b), reach)
                    (visible[b], visible[B + b]) = (firstRow(b) + held(b) - count, count)
                    most = max(most, count)
                }
                let scratch = SingleQueryDescriptor.scratch(groupSize: group, D: D, Dv: Dv, keys: most)
                withUnsafeTemporaryAllocation(of: Float.self, capacity: scratch) { scratch in
                    query.withUnsafeBufferPointer { x in
                        withExtendedLifetime(buffer) {
                            var descriptor = SingleQueryDescriptor(
                                query: x.baseAddress!, keys: UnsafeRawPointer(buffer.keys), values: UnsafeRawPointer(buffer.values),
                                output: output.baseAddress!, firstRows: UnsafePointer(visible.baseAddress!),
                                counts: UnsafePointer(visible.baseAddress! + B), Hq: Hq, Hkv: Hkv, D: D, Dv: Dv,
                                rowsPerHead: rowsPerHead, scaleLog2: scaleLog2, storage: storage.kernelStorage)
                            let kernels = isa.kernels
                            for pair in 0..<(B * Hkv) { kernels.singleQuery(&descriptor, pair, scratch.baseAddress!) }
                        }
                    }
                }
            }
            initialized = B * Hq * Dv
        }
        return AttentionResult(output: Tensor(uncheckedShape: shape.outputShape, scalars: scalars), weights: nil, logSumExp: nil,
                               path: AttentionPath(singleQuery: isa, pairs: B * Hkv, groupSize: group))
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
