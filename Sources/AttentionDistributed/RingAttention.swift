import Attention
import Foundation

/// What one rank's share of ring attention computed.
public struct RingAttentionResult<Scalar: AttentionScalar>: Sendable {
    /// This rank's queries' outputs, `[B, Hq, n, Dv]` (or the query's rank), in the order of its shard.
    public let output: Tensor<Scalar>
    /// Their log-sum-exp over every key of every rank, `[B, Hq, n]`; -infinity for a query that sees no key.
    public let logSumExp: Tensor<Scalar>
    /// What the local attention calls ran (the last one's path), nil if the mask hid every block.
    public let path: AttentionPath?
    /// Traffic and time on this rank.
    public let statistics: RingStatistics
}

/// Traffic and time on one rank of ring attention.
public struct RingStatistics: Sendable, Equatable, Codable {
    /// Bytes of keys and values this rank sent to the next.
    public var bytesSent = 0
    /// Bytes it received from the previous.
    public var bytesReceived = 0
    /// Seconds spent in attention on its own queries.
    public var computeSeconds = 0.0
    /// Seconds spent waiting for transfers after its compute of a step was done: the part of the
    /// communication that the compute did not hide.
    public var waitSeconds = 0.0
    /// (query slice, key slice) blocks computed.
    public var blocksComputed = 0
    /// Blocks the mask hides entirely, never computed.
    public var blocksSkipped = 0

    /// Nothing counted yet.
    public init() {}
}

/// Scaled dot-product attention over a sequence split across the ranks of `communicator`: each rank
/// holds a shard of the queries, keys and values; the key/value shards travel around the ring
/// (rank `r` sends to `r + 1`) while each rank attends its queries to the shard it holds, and the
/// partial results are merged exactly by log-sum-exp. Every rank calls it with its own shards.
///
/// The result equals `scaledDotProductAttention(query:key:value:mask:bias:scale:returning:options:)`
/// over the whole sequence, restricted to this rank's queries: the same masks with the same
/// alignment (causal and sliding windows bottom-right aligned to the whole sequences), key lengths
/// and diagonal bands in global positions, grouped-query attention, dead rows 0 with log-sum-exp
/// -infinity. Blocks that the mask hides entirely are skipped; with a causal mask a ``ShardLayout/zigZag``
/// layout gives every rank the same work.
///
/// Transfers are non-blocking and overlap the local attention; each rank holds its shards and two
/// key/value blocks at a time, so its memory falls as 1/P.
///
/// ```swift
/// let shards = try SequenceShards(length: 4096, ranks: world.size, layout: .zigZag)
/// let mine = try ringAttention(query: q, key: k, value: v, queryShards: shards, keyShards: shards,
///                              mask: .causal, communicator: world)
/// ```
///
/// - Parameters:
///   - query: this rank's queries, `[B, Hq, n, D]` (or `[Hq, n, D]`, `[n, D]`), `n` =
///     `queryShards.count(ofRank: rank)`, positions in the order of `queryShards.ranges(ofRank:)`.
///   - key: this rank's keys, `[B, Hkv, m, D]`, `m` = `keyShards.count(ofRank: rank)`.
///   - value: this rank's values, `[B, Hkv, m, Dv]`.
///   - queryShards: how the queries are dealt out; its `ranks` is the communicator's size.
///   - keyShards: how the keys and values are.
///   - mask: causal, sliding-window, diagonal-band and key-length components; boolean masks are not
///     split across ranks and are rejected.
///   - scale: multiplies `Q·Kᵀ`; default `1/√D`.
///   - communicator: the ranks; every rank must call with the same problem.
///   - timeout: how long any one wait may take before the call gives up on a peer.
///   - options: the local attention's implementation and threads.
/// - Throws: `AttentionError` for this rank's bad arguments (after telling the other ranks, which
///   then throw ``DistributedError/peersFailed(ranks:code:)``); ``DistributedError/ranksDisagree(what:)``
///   when ranks were given different problems; ``DistributedError/timedOut(operation:seconds:)``
///   when a peer stops.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func ringAttention<Scalar: AttentionScalar>(
    query: Tensor<Scalar>, key: Tensor<Scalar>, value: Tensor<Scalar>,
    queryShards: SequenceShards, keyShards: SequenceShards,
    mask: AttentionMask = .none, scale: Scalar? = nil,
    communicator: any Communicator, timeout: Duration = .seconds(600),
    options: AttentionOptions = AttentionOptions()
) throws -> RingAttentionResult<Scalar> {
    let problem = try communicator.agreeing(timeout: timeout) {
        try RingProblem(query: query, key: key, value: value, queryShards: queryShards, keyShards: keyShards,
                        mask: mask, scale: scale, rank: communicator.rank, size: communicator.size)
    }
    try problem.checkSameEverywhere(communicator, timeout: timeout)
    var ring = RingState(problem: problem, query: query, key: key, value: value, rank: communicator.rank)
    try ring.run(communicator, scale: scale, timeout: timeout, options: options)
    return try ring.result(queryShape: query.shape)
}

/// The problem as this rank sees it, checked.
struct RingProblem {
    let B, Hq, Hkv, D, Dv: Int
    let queryShards, keyShards: SequenceShards
    /// The visible band in global positions: query `i` sees key `j` when `i + lower <= j <= i + upper`.
    let lower, upper: Int?
    let keyLengths: [Int]?
    let scale: Double?

    init<Scalar: AttentionScalar>(
        query: Tensor<Scalar>, key: Tensor<Scalar>, value: Tensor<Scalar>, queryShards: SequenceShards,
        keyShards: SequenceShards, mask: AttentionMask, scale: Scalar?, rank: Int, size: Int
    ) throws {
        for (name, shards) in [("queryShards", queryShards), ("keyShards", keyShards)] where shards.ranks != size {
            throw AttentionError.invalidArgument(
                argument: name, reason: "\(shards.ranks) ranks, but the communicator has \(size)")
        }
        let q = try Self.rank4(query, "query"), k = try Self.rank4(key, "key"), v = try Self.rank4(value, "value")
        guard query.rank == key.rank, key.rank == value.rank else {
            throw AttentionError.shapeMismatch(argument: "key", shape: key.shape, other: "query", otherShape: query.shape,
                                               reason: "query, key and value must have the same rank")
        }
        let (n, m) = (queryShards.count(ofRank: rank), keyShards.count(ofRank: rank))
        guard q[2] == n else {
            throw AttentionError.invalidShape(
                argument: "query", shape: query.shape,
                reason: "rank \(rank) holds \(n) of the \(queryShards.length) query positions (\(queryShards.layout.rawValue) shards), not \(q[2])")
        }
        for (name, tensor, shape) in [("key", key, k), ("value", value, v)] where shape[2] != m {
            throw AttentionError.invalidShape(
                argument: name, shape: tensor.shape,
                reason: "rank \(rank) holds \(m) of the \(keyShards.length) key positions (\(keyShards.layout.rawValue) shards), not \(shape[2])")
        }
        guard k[0] == q[0], v[0] == q[0] else {
            throw AttentionError.shapeMismatch(argument: "key", shape: key.shape, other: "query", otherShape: query.shape,
                                               reason: "the batch sizes differ")
        }
        guard v[1] == k[1] else {
            throw AttentionError.shapeMismatch(argument: "value", shape: value.shape, other: "key", otherShape: key.shape,
                                               reason: "the head counts differ")
        }
        guard k[3] == q[3] else {
            throw AttentionError.shapeMismatch(argument: "key", shape: key.shape, other: "query", otherShape: query.shape,
                                               reason: "the head dimensions differ")
        }
        for (name, tensor) in [("query", query), ("key", key), ("value", value)] where tensor.shape.contains(0) {
            throw AttentionError.emptySequence(argument: name, shape: tensor.shape)
        }
        guard q[1] % k[1] == 0 else { throw AttentionError.headCountMismatch(queryHeads: q[1], keyValueHeads: k[1]) }
        (B, Hq, Hkv, D, Dv) = (q[0], q[1], k[1], q[3], v[3])
        self.queryShards = queryShards
        self.keyShards = keyShards
        if let scale, !scale.isFinite {
            throw AttentionError.invalidArgument(argument: "scale", reason: "\(scale) is not finite")
        }
        self.scale = scale?.doubleValue

        // The mask over the whole sequences, resolved and checked as one process would.
        let (Nq, Nk) = (queryShards.length, keyShards.length)
        let resolved = try ResolvedMask(mask, batchSize: B, heads: Hq, queryLength: Nq, keyLength: Nk,
                                        weightsShape: [B, Hq, Nq, Nk])
        guard !resolved.hasBooleanMasks else {
            throw AttentionError.invalidArgument(
                argument: "mask", reason: "ring attention does not split boolean masks across ranks: use causal, sliding-window, diagonal-band or key-length masks")
        }
        (lower, upper, keyLengths) = (resolved.lowerOffset, resolved.upperOffset, resolved.keyLengths)
    }

    /// `[B, H, N, X]` of a rank-2, -3 or -4 tensor.
    static func rank4<Scalar>(_ tensor: Tensor<Scalar>, _ argument: String) throws -> [Int] {
        guard (2...4).contains(tensor.rank) else {
            throw AttentionError.invalidShape(
                argument: argument, shape: tensor.shape, reason: "ring attention takes [B, H, N, D], [H, N, D] or [N, D]")
        }
        return Array(repeating: 1, count: 4 - tensor.rank) + tensor.shape
    }

    /// Throws ``DistributedError/ranksDisagree(what:)`` unless every rank has this problem.
    func checkSameEverywhere(_ communicator: some Communicator, timeout: Duration) throws {
        func code(_ value: Int?) -> Int64 { value.map { Int64($0) & (Int64.max >> 1) } ?? (Int64.max >> 1) + 1 }
        var lengthsHash: UInt64 = 0xcbf2_9ce4_8422_2325
        for length in keyLengths ?? [] { lengthsHash = (lengthsHash ^ UInt64(length)) &* 0x100_0000_01b3 }
        let scaleBits = scale.map { Int64(bitPattern: $0.bitPattern >> 2) }
        // (what, value, whether the value means something to the user: sizes do, codes and hashes not)
        let fields: [(String, Int64, Bool)] = [
            ("the batch size", Int64(B), true), ("the query head count", Int64(Hq), true),
            ("the key/value head count", Int64(Hkv), true), ("the head dimension", Int64(D), true),
            ("the value head dimension", Int64(Dv), true), ("the query length", Int64(queryShards.length), true),
            ("the key length", Int64(keyShards.length), true),
            ("the query shard layout", queryShards.layout == .zigZag ? 1 : 0, false),
            ("the key shard layout", keyShards.layout == .zigZag ? 1 : 0, false),
            ("the mask's lower bound", code(lower), false), ("the mask's upper bound", code(upper), false),
            ("the key lengths", keyLengths == nil ? -1 : Int64(bitPattern: lengthsHash >> 2), false),
            ("the scale", scaleBits ?? -1, false),
        ]
        let values = fields.map(\.1)
        let reduced = try communicator.maximum(of: values + values.map { -$0 }, timeout: timeout)
        for (index, (what, _, numeric)) in fields.enumerated() {
            let (largest, smallest) = (reduced[index], -reduced[fields.count + index])
            guard largest != smallest else { continue }
            throw DistributedError.ranksDisagree(what: numeric ? "\(what) (from \(smallest) to \(largest))" : what)
        }
    }
}

/// The running state of one rank: its query slices with their partial results, and the two
/// key/value buffers of the ring.
struct RingState<Scalar: AttentionScalar> {
    /// One contiguous range of this rank's query positions, with its result over the keys so far
    /// (in Double, so that merging P partial results rounds once, at the end).
    struct QueryPart {
        let positions: Range<Int>
        let query: Tensor<Scalar>
        var output: [Double]
        var logSumExp: [Double]
    }

    let problem: RingProblem
    let rank: Int
    var parts: [QueryPart] = []
    var current: MessageBuffer
    var incoming: MessageBuffer
    var statistics = RingStatistics()
    var path: AttentionPath?

    init(problem: RingProblem, query: Tensor<Scalar>, key: Tensor<Scalar>, value: Tensor<Scalar>, rank: Int) {
        self.problem = problem
        self.rank = rank
        let p = problem
        let n = p.queryShards.count(ofRank: rank)
        var offset = 0
        let ranges = p.queryShards.ranges(ofRank: rank)
        for positions in ranges {
            // One range is the whole shard: its tensor, shared, not copied.
            let rows = ranges.count == 1 ? query.scalars
                : rowSlice(query.scalars, heads: p.B * p.Hq, rows: n, width: p.D, from: offset, count: positions.count)
            parts.append(QueryPart(
                positions: positions, query: Tensor(rows, [p.B, p.Hq, positions.count, p.D]),
                output: Array(repeating: 0, count: p.B * p.Hq * positions.count * p.Dv),
                logSumExp: Array(repeating: -.infinity, count: p.B * p.Hq * positions.count)))
            offset += positions.count
        }
        let largest = (0..<p.keyShards.ranks).map(p.keyShards.count(ofRank:)).max() ?? 0
        let bytes = p.B * p.Hkv * largest * (p.D + p.Dv) * MemoryLayout<Scalar>.stride
        current = MessageBuffer(byteCount: bytes)
        incoming = MessageBuffer(byteCount: bytes)
        // This rank's own block first: keys, then values.
        key.withUnsafeBufferPointer { k in
            value.withUnsafeBufferPointer { v in
                let base = current.bytes.baseAddress!.assumingMemoryBound(to: Scalar.self)
                base.update(from: k.baseAddress!, count: k.count)
                (base + k.count).update(from: v.baseAddress!, count: v.count)
            }
        }
    }

    /// Bytes of the key/value block that `origin` holds.
    func blockBytes(of origin: Int) -> Int {
        problem.B * problem.Hkv * problem.keyShards.count(ofRank: origin) * (problem.D + problem.Dv) * MemoryLayout<Scalar>.stride
    }

    mutating func run(_ communicator: some Communicator, scale: Scalar?, timeout: Duration, options: AttentionOptions) throws {
        let size = communicator.size
        let clock = ContinuousClock()
        for step in 0..<size {
            let origin = (rank - step + size) % size
            var transfers: [any Transfer] = []
            if step < size - 1 {
                let next = (rank + 1) % size, previous = (rank - 1 + size) % size
                let arriving = (origin - 1 + size) % size
                transfers.append(try communicator.send(current, byteCount: blockBytes(of: origin), to: next, tag: step))
                transfers.append(try communicator.receive(into: incoming, byteCount: blockBytes(of: arriving),
                                                          from: previous, tag: step))
                statistics.bytesSent += blockBytes(of: origin)
                statistics.bytesReceived += blockBytes(of: arriving)
            }
            let start = clock.now
            // MPI moves a large message only while someone calls it: a thread polls the transfers
            // while this one computes (it makes no MPI call meanwhile, as MPI_THREAD_SERIALIZED asks).
            let pump = ProgressPump(transfers)
            let computed = Result { try attendToBlock(of: origin, scale: scale, options: options) }
            try pump.stop()
            try computed.get()
            statistics.computeSeconds += (clock.now - start).seconds
            statistics.waitSeconds += try communicator.wait(for: transfers, timeout: timeout).seconds
            swap(&current, &incoming)
        }
    }

    /// Attends every query part to the key/value block in `current`, which `origin` holds.
    mutating func attendToBlock(of origin: Int, scale: Scalar?, options: AttentionOptions) throws {
        let p = problem
        let m = p.keyShards.count(ofRank: origin)
        let base = UnsafeBufferPointer(start: current.bytes.baseAddress!.assumingMemoryBound(to: Scalar.self),
                                       count: p.B * p.Hkv * m * (p.D + p.Dv))
        let keys = UnsafeBufferPointer(rebasing: base[0 ..< p.B * p.Hkv * m * p.D])
        let values = UnsafeBufferPointer(rebasing: base[p.B * p.Hkv * m * p.D ..< base.count])
        var offset = 0
        for positions in p.keyShards.ranges(ofRank: origin) {
            defer { offset += positions.count }
            // The block's rows, read by the kernel where they arrived.
            let rows = KeyValueRows(keys: keys, values: values, batchSize: p.B, heads: p.Hkv, rowsPerHead: m,
                                    firstRow: offset, count: positions.count, keyDimension: p.D, valueDimension: p.Dv)
            for index in parts.indices {
                guard let mask = blockMask(queries: parts[index].positions, keys: positions) else {
                    statistics.blocksSkipped += 1
                    continue
                }
                let partial = try scaledDotProductAttention(
                    query: parts[index].query, rows: rows, mask: mask, scale: scale, returning: .logSumExp, options: options)
                Self.merge(partial, valueDimension: p.Dv, into: &parts[index])
                path = partial.path
                statistics.blocksComputed += 1
            }
        }
    }

    /// The mask of queries at `queries` against keys at `keys` (global positions), or nil when it
    /// hides every pair.
    func blockMask(queries: Range<Int>, keys: Range<Int>) -> AttentionMask? {
        let p = problem
        let shift = queries.lowerBound - keys.lowerBound
        let lower = p.lower.map { $0 + shift }, upper = p.upper.map { $0 + shift }
        let (n, m) = (queries.count, keys.count)
        if let upper, upper + n - 1 < 0 { return nil }
        if let lower, lower > m - 1 { return nil }
        if let lower, let upper, lower > upper { return nil }
        var mask = AttentionMask.none
        let bandNeeded = (lower.map { $0 + n - 1 > 0 } ?? false) || (upper.map { $0 < m - 1 } ?? false)
        if bandNeeded { mask = mask && .diagonalBand(lower: lower, upper: upper) }
        if let lengths = p.keyLengths {
            let local = lengths.map { Swift.min(Swift.max($0 - keys.lowerBound, 0), m) }
            if local.allSatisfy({ $0 == 0 }) { return nil }
            if local.contains(where: { $0 < m }) { mask = mask && .keyLengths(local) }
        }
        return mask
    }

    /// Folds a partial result over some keys into the part's running result over the keys so far.
    static func merge(_ partial: AttentionResult<Scalar>, valueDimension dv: Int, into part: inout QueryPart) {
        guard let lse = partial.logSumExp else { return }
        partial.output.withUnsafeBufferPointer { o in
            lse.withUnsafeBufferPointer { l in
                for row in 0..<l.count {
                    let new = l[row].doubleValue
                    guard new > -.infinity else { continue }
                    let old = part.logSumExp[row]
                    let top = Swift.max(old, new)
                    let (wOld, wNew) = (exp(old - top), exp(new - top))
                    let total = wOld + wNew
                    for c in row * dv ..< (row + 1) * dv {
                        part.output[c] = (wOld * part.output[c] + wNew * o[c].doubleValue) / total
                    }
                    part.logSumExp[row] = top + log(total)
                }
            }
        }
    }

    /// The parts put back in shard order, shaped like the query (with `Dv` for `D`).
    func result(queryShape: [Int]) throws -> RingAttentionResult<Scalar> {
        let p = problem
        let n = p.queryShards.count(ofRank: rank)
        var output = [Scalar](repeating: 0, count: p.B * p.Hq * n * p.Dv)
        var logSumExp = [Scalar](repeating: -.infinity, count: p.B * p.Hq * n)
        var offset = 0
        for part in parts {
            let count = part.positions.count
            for head in 0 ..< p.B * p.Hq {
                for i in 0..<count {
                    logSumExp[head * n + offset + i] = Scalar(fromDouble: part.logSumExp[head * count + i])
                    for c in 0..<p.Dv {
                        output[(head * n + offset + i) * p.Dv + c] = Scalar(fromDouble: part.output[(head * count + i) * p.Dv + c])
                    }
                }
            }
            offset += count
        }
        let outputShape = Array(queryShape.dropLast()) + [p.Dv]
        return RingAttentionResult(
            output: try Tensor(shape: outputShape, scalars: output),
            logSumExp: try Tensor(shape: Array(queryShape.dropLast()), scalars: logSumExp),
            path: path, statistics: statistics)
    }
}

/// A thread that polls transfers until they complete or it is stopped.
final class ProgressPump: @unchecked Sendable {
    private let transfers: [any Transfer]
    private let condition = NSCondition()
    private var stopping = false
    private var finished = false
    private var failure: (any Error)?

    init(_ transfers: [any Transfer]) {
        self.transfers = transfers
        guard !transfers.isEmpty else {
            finished = true
            return
        }
        Thread.detachNewThread { [self] in
            var pending = self.transfers
            do {
                while !pending.isEmpty, !condition.withLock({ stopping }) {
                    pending = try pending.filter { try !$0.isComplete() }
                    usleep(100)
                }
            } catch {
                condition.withLock { failure = error }
            }
            condition.withLock {
                finished = true
                condition.broadcast()
            }
        }
    }

    /// Stops polling and waits for the thread to end; throws what a transfer failed with.
    func stop() throws {
        condition.lock()
        stopping = true
        while !finished { condition.wait() }
        let failure = self.failure
        condition.unlock()
        if let failure { throw failure }
    }
}

/// Rows `from ..< from + count` of each of `heads` matrices of `rows × width` stored one after another.
func rowSlice<Scalar>(_ scalars: some RandomAccessCollection<Scalar>, heads: Int, rows: Int, width: Int, from: Int, count: Int)
    -> [Scalar] where Scalar: Sendable
{
    var result: [Scalar] = []
    result.reserveCapacity(heads * count * width)
    let start = scalars.startIndex
    for head in 0..<heads {
        let first = scalars.index(start, offsetBy: (head * rows + from) * width)
        result.append(contentsOf: scalars[first ..< scalars.index(first, offsetBy: count * width)])
    }
    return result
}

extension Tensor {
    /// A tensor of a shape computed to fit its scalars.
    init(_ scalars: [Element], _ shape: [Int]) {
        self.init(uncheckedShape: shape, scalars: scalars)
    }
}
