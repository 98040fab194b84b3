/// The extents of one attention call, normalized to rank 4 and validated.
///
/// Letters follow the papers: `B` batch, `Hq` query heads, `Hkv` key/value heads, `Nq` queries,
/// `Nk` keys, `D` query/key head dimension, `Dv` value head dimension.
struct AttentionShape: Sendable, Equatable {
    let B: Int, Hq: Int, Hkv: Int, Nq: Int, Nk: Int, D: Int, Dv: Int
    /// The rank of the caller's tensors: 1 (single query), 2 (unbatched), 3 (`[H, N, D]`) or 4.
    let inputRank: Int

    /// Query heads per key/value head: query head `h` reads key/value head `h / groupSize`.
    var groupSize: Int { Hq / Hkv }

    /// The shapes of the results as the caller sees them (leading dimensions dropped for lower ranks).
    var outputShape: [Int] { visible([B, Hq, Nq, Dv]) }
    var weightsShape: [Int] { visible([B, Hq, Nq, Nk]) }
    var logSumExpShape: [Int] { visible([B, Hq, Nq, 1]).dropLast() }

    private func visible(_ full: [Int]) -> [Int] {
        switch inputRank {
        case 1: return [full[3]]
        case 2: return Array(full[2...])
        case 3: return Array(full[1...])
        default: return full
        }
    }

    init(B: Int, Hq: Int, Hkv: Int, Nq: Int, Nk: Int, D: Int, Dv: Int, inputRank: Int) {
        self.B = B; self.Hq = Hq; self.Hkv = Hkv; self.Nq = Nq; self.Nk = Nk; self.D = D; self.Dv = Dv
        self.inputRank = inputRank
    }

    /// Validates the three shapes against each other.
    init(query: [Int], key: [Int], value: [Int]) throws {
        let rank = query.count
        guard (1...4).contains(rank) else {
            throw AttentionError.invalidShape(
                argument: "query", shape: query,
                reason: "expected [D], [N, D], [H, N, D] or [B, H, N, D]")
        }
        let keyRank = rank == 1 ? 2 : rank
        for (name, shape) in [("key", key), ("value", value)] where shape.count != keyRank {
            throw AttentionError.shapeMismatch(
                argument: name, shape: shape, other: "query", otherShape: query,
                reason: rank == 1
                    ? "a single query [D] needs \(name) of rank 2 ([N, D])"
                    : "\(name) must have the same rank as query (\(rank))")
        }
        // Pad to [B, H, N, D]; a single query is one row.
        func padded(_ shape: [Int]) -> [Int] { Array(repeating: 1, count: 4 - shape.count) + shape }
        let q = padded(rank == 1 ? [1] + query : query)
        let k = padded(key)
        let v = padded(value)
        for (name, shape) in [("query", query), ("key", key), ("value", value)] where shape.contains(0) {
            throw AttentionError.emptySequence(argument: name, shape: shape)
        }
        guard k[0] == q[0], v[0] == q[0] else {
            let (name, shape) = k[0] != q[0] ? ("key", key) : ("value", value)
            throw AttentionError.shapeMismatch(
                argument: name, shape: shape, other: "query", otherShape: query,
                reason: "batch sizes differ")
        }
        guard k[1] == v[1] else {
            throw AttentionError.shapeMismatch(
                argument: "value", shape: value, other: "key", otherShape: key,
                reason: "key and value must have the same number of heads")
        }
        guard q[1] % k[1] == 0 else {
            throw AttentionError.headCountMismatch(queryHeads: q[1], keyValueHeads: k[1])
        }
        guard k[2] == v[2] else {
            throw AttentionError.shapeMismatch(
                argument: "value", shape: value, other: "key", otherShape: key,
                reason: "key and value must have the same sequence length (\(k[2]) keys, \(v[2]) values)")
        }
        guard k[3] == q[3] else {
            throw AttentionError.shapeMismatch(
                argument: "key", shape: key, other: "query", otherShape: query,
                reason: "query and key must have the same head dimension (\(q[3]) vs \(k[3]))")
        }
        self.B = q[0]; self.Hq = q[1]; self.Hkv = k[1]
        self.Nq = q[2]; self.Nk = k[2]; self.D = q[3]; self.Dv = v[3]
        self.inputRank = rank
    }
}

/// Everything the reference (and later the kernels) need for one call: shapes, mask and bias
/// resolved against them, and the scale.
struct AttentionProblem<Scalar: AttentionScalar>: Sendable {
    let shape: AttentionShape
    let query: [Scalar]
    let key: [Scalar]
    let value: [Scalar]
    let mask: ResolvedMask
    let bias: Broadcast<Scalar>?
    let scale: Double

    init(
        query: Tensor<Scalar>, key: Tensor<Scalar>, value: Tensor<Scalar>,
        mask: AttentionMask, bias: Tensor<Scalar>?, scale: Scalar?
    ) throws {
        let shape = try AttentionShape(query: query.shape, key: key.shape, value: value.shape)
        self.scale = try Self.checkedScale(scale, headDimension: shape.D)
        self.shape = shape
        self.query = query.scalars
        self.key = key.scalars
        self.value = value.scalars
        self.mask = try ResolvedMask(
            mask, batchSize: shape.B, heads: shape.Hq, queryLength: shape.Nq, keyLength: shape.Nk,
            weightsShape: shape.weightsShape)
        self.bias = try Self.checkedBias(bias, shape: shape)
    }

    /// The scale as given (it must be finite), or 1/√D.
    static func checkedScale(_ scale: Scalar?, headDimension D: Int) throws -> Double {
        if let scale, !scale.isFinite {
            throw AttentionError.invalidArgument(argument: "scale", reason: "must be finite, got \(scale)")
        }
        return scale?.doubleValue ?? 1 / Double(D).squareRoot()
    }

    /// The bias broadcast to the weights of `shape`, after checking its values.
    static func checkedBias(_ bias: Tensor<Scalar>?, shape: AttentionShape) throws -> Broadcast<Scalar>? {
        guard let bias else { return nil }
        // -inf hides a key (like a false mask entry); NaN and +inf have no meaning.
        if let bad = bias.scalars.firstIndex(where: { $0.isNaN || $0 == .infinity }) {
            throw AttentionError.nonFinite(
                argument: "bias", index: unflatten(bad, shape: bias.shape), value: bias.scalars[bad].doubleValue)
        }
        return try Broadcast(bias, to: shape.weightsShape, argument: "bias")
    }
}

extension AttentionProblem {
    /// A problem whose parts were validated elsewhere (attention over a KV cache, whose keys and
    /// values are read from the cache's storage: `key` and `value` may then be empty).
    init(shape: AttentionShape, query: [Scalar], key: [Scalar], value: [Scalar], mask: ResolvedMask,
         bias: Broadcast<Scalar>?, scale: Double) {
        self.shape = shape
        self.query = query
        self.key = key
        self.value = value
        self.mask = mask
        self.bias = bias
        self.scale = scale
    }
}

/// The multi-index of the element at `flat` in a row-major tensor of `shape`.
func unflatten(_ flat: Int, shape: [Int]) -> [Int] {
    var rest = flat
    var index = Array(repeating: 0, count: shape.count)
    for axis in shape.indices.reversed() where shape[axis] > 0 {
        index[axis] = rest % shape[axis]
        rest /= shape[axis]
    }
    return index
}
