/// Where the diagonal of a causal mask or a sliding window sits when the query and key lengths differ.
///
/// With `Nq` queries and `Nk` keys, query `i` is aligned with key `i + Nk - Nq` (bottom-right) or with
/// key `i` (top-left). When `Nq == Nk` the two coincide.
public enum CausalAlignment: String, Sendable, CaseIterable {
    /// Query `i` sees key `j` when `j <= i + Nk - Nq`: the last query sees every key. This is what
    /// decoding with a KV cache needs (new queries come after the cached keys), as in FlashAttention 2.1+.
    case bottomRight
    /// Query `i` sees key `j` when `j <= i`, as PyTorch's `is_causal=True`.
    case topLeft

    /// The key index aligned with query 0.
    func diagonalOffset(queryLength: Int, keyLength: Int) -> Int {
        self == .bottomRight ? keyLength - queryLength : 0
    }
}

/// Which keys each query may attend to. One polarity everywhere: `true` means "may attend".
///
/// A mask is a list of components; a key is visible when every component allows it (intersection).
/// Compose with ``intersection(_:)`` or `&&`:
///
/// ```swift
/// let mask: AttentionMask = .causal && .slidingWindow(left: 128, right: 0) && .keyLengths([7, 5])
/// ```
///
/// A query row that sees no key at all is *dead*: its output is 0, its weights are 0 and its
/// log-sum-exp is -infinity. Attention never produces NaN for it.
///
/// An additive bias (for example ALiBi) is not a mask: it is passed to
/// ``scaledDotProductAttention(query:key:value:mask:bias:scale:returning:options:)`` as `bias`, and a `-infinity`
/// bias entry hides its key just as a `false` mask entry does.
public struct AttentionMask: Sendable {
    /// One restriction on which keys are visible.
    public enum Component: Sendable {
        /// See ``AttentionMask/causal(_:)``.
        case causal(CausalAlignment)
        /// See ``AttentionMask/slidingWindow(left:right:alignment:)``.
        case slidingWindow(left: Int, right: Int, alignment: CausalAlignment)
        /// See ``AttentionMask/diagonalBand(lower:upper:)``.
        case diagonalBand(lower: Int?, upper: Int?)
        /// See ``AttentionMask/keyLengths(_:)``.
        case keyLengths([Int])
        /// See ``AttentionMask/boolean(_:)``.
        case boolean(Tensor<Bool>)
    }

    /// The restrictions, all of which must allow a key for it to be visible. Empty means no mask.
    public let components: [Component]

    /// Creates a mask from its components.
    public init(_ components: [Component]) { self.components = components }

    /// Every query sees every key.
    public static let none = AttentionMask([])

    /// Causal, bottom-right aligned: query `i` sees key `j` when `j <= i + Nk - Nq`.
    ///
    /// With `Nq = 2`, `Nk = 5` (1 = may attend):
    /// ```
    /// 1 1 1 1 0
    /// 1 1 1 1 1
    /// ```
    /// With `Nq = 5`, `Nk = 2` the first three queries see nothing (dead rows, output 0):
    /// ```
    /// 0 0
    /// 0 0
    /// 0 0
    /// 1 0
    /// 1 1
    /// ```
    public static let causal = AttentionMask([.causal(.bottomRight)])

    /// Causal with an explicit alignment.
    ///
    /// `.causal(.topLeft)` is PyTorch's `is_causal=True`: query `i` sees key `j` when `j <= i`.
    /// With `Nq = 2`, `Nk = 5`:
    /// ```
    /// 1 0 0 0 0
    /// 1 1 0 0 0
    /// ```
    public static func causal(_ alignment: CausalAlignment) -> AttentionMask {
        AttentionMask([.causal(alignment)])
    }

    /// A band around the aligned diagonal: query `i` sees key `j` when
    /// `d - left <= j <= d + right`, where `d = i + Nk - Nq` (bottom-right) or `d = i` (top-left).
    ///
    /// `left` and `right` must not be negative. `slidingWindow(left: 1, right: 1)` with `Nq = Nk = 5`:
    /// ```
    /// 1 1 0 0 0
    /// 1 1 1 0 0
    /// 0 1 1 1 0
    /// 0 0 1 1 1
    /// 0 0 0 1 1
    /// ```
    /// Intersected with ``causal``, `slidingWindow(left: w, right: 0)` is the usual causal local attention
    /// in which each query sees itself and the `w` keys before it.
    public static func slidingWindow(left: Int, right: Int, alignment: CausalAlignment = .bottomRight)
        -> AttentionMask
    {
        AttentionMask([.slidingWindow(left: left, right: right, alignment: alignment)])
    }

    /// A band at fixed offsets from the top-left diagonal: query `i` sees key `j` when
    /// `i + lower <= j <= i + upper`; `nil` leaves that side open.
    ///
    /// Unlike ``causal`` and ``slidingWindow(left:right:alignment:)``, the offsets do not depend on the
    /// lengths and may be negative, and `lower > upper` hides every key. This is the mask of one block
    /// of a larger problem: with queries `qs ..< qs + nq` and keys `ks ..< ks + nk` of a causal
    /// problem, the block's mask is `diagonalBand(lower: nil, upper: qs - ks + Nk - Nq)` (ring
    /// attention computes such blocks). `diagonalBand(lower: nil, upper: -1)` with `Nq = 3`, `Nk = 4`:
    /// ```
    /// 0 0 0 0
    /// 1 0 0 0
    /// 1 1 0 0
    /// ```
    public static func diagonalBand(lower: Int?, upper: Int?) -> AttentionMask {
        AttentionMask([.diagonalBand(lower: lower, upper: upper)])
    }

    /// Key padding: batch element `b` has `lengths[b]` real keys; keys `j >= lengths[b]` are hidden.
    ///
    /// There must be one length per batch element (one in all for unbatched input), each in `0...Nk`.
    /// `keyLengths([3])` with `Nq = 2`, `Nk = 5`:
    /// ```
    /// 1 1 1 0 0
    /// 1 1 1 0 0
    /// ```
    /// A length of 0 hides every key: every row of that batch element is dead and outputs 0.
    public static func keyLengths(_ lengths: [Int]) -> AttentionMask {
        AttentionMask([.keyLengths(lengths)])
    }

    /// An explicit mask, `true` = may attend, broadcastable to the weights' shape `[B, Hq, Nq, Nk]`.
    ///
    /// Broadcasting aligns trailing dimensions, as NumPy and PyTorch do: a `[Nq, Nk]` mask applies to
    /// every batch element and head, `[B, 1, 1, Nk]` is a per-batch key mask. Every dimension must equal
    /// the target's or be 1.
    /// ```
    /// [[true, false, true],        1 0 1
    ///  [false, false, false]]  ->  0 0 0   (row 1 is dead: output 0)
    /// ```
    public static func boolean(_ mask: Tensor<Bool>) -> AttentionMask {
        AttentionMask([.boolean(mask)])
    }

    /// The mask that allows a key only where both masks allow it.
    public func intersection(_ other: AttentionMask) -> AttentionMask {
        AttentionMask(components + other.components)
    }

    /// The intersection of two masks.
    public static func && (lhs: AttentionMask, rhs: AttentionMask) -> AttentionMask {
        lhs.intersection(rhs)
    }

    /// Whether the mask restricts anything.
    public var isEmpty: Bool { components.isEmpty }
}

extension AttentionMask {
    /// The mask as rows of booleans for one batch element and head: `result[i][j]` says whether
    /// query `i` may attend to key `j`.
    ///
    /// ```swift
    /// try AttentionMask.causal.matrix(queryLength: 2, keyLength: 5)
    /// // [[true, true, true, true, false], [true, true, true, true, true]]
    /// ```
    ///
    /// - Parameters:
    ///   - queryLength: the queries, rows of the matrix.
    ///   - keyLength: the keys, its columns.
    ///   - batchSize: the problem's batch size, needed to validate key lengths and broadcast boolean
    ///     masks; default 1.
    ///   - heads: the problem's head count, likewise; default 1.
    ///   - batch: which batch element's slice to return; default 0.
    ///   - head: which head's slice; default 0.
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for a batch size or head count
    ///   below 1, negative lengths or more than 2^26 pairs, a batch element or head outside the
    ///   problem, and whatever the mask's components refuse for these extents.
    public func matrix(
        queryLength: Int, keyLength: Int, batchSize: Int = 1, heads: Int = 1, batch: Int = 0, head: Int = 0
    ) throws -> [[Bool]] {
        _ = try checkedInteger(batchSize, in: 1...Int.max, argument: "batchSize")
        _ = try checkedInteger(heads, in: 1...Int.max, argument: "heads")
        // Rows of booleans are built for every pair: a matrix larger than this is a mistake.
        _ = try checkedElementCount([queryLength, keyLength], argument: "queryLength × keyLength", atMost: 1 << 26)
        guard (0..<batchSize).contains(batch), (0..<heads).contains(head) else {
            throw AttentionError.invalidArgument(
                argument: "batch/head",
                reason: "(\(batch), \(head)) is outside a problem of \(batchSize) batch elements and \(heads) heads")
        }
        let resolved = try ResolvedMask(
            self, batchSize: batchSize, heads: heads, queryLength: queryLength, keyLength: keyLength,
            weightsShape: [batchSize, heads, queryLength, keyLength])
        return (0..<queryLength).map { i in
            (0..<keyLength).map { j in resolved.allows(batch: batch, head: head, query: i, key: j) }
        }
    }
}
