import Attention
import AttentionDistributed
import AttentionTestSupport
import Foundation
import Testing

/// Runs `body` once per rank of a group of threads, each rank on its own thread (ranks wait on one
/// another, so they must all run at once), and returns what each returned, in rank order.
func onRanks<T: Sendable>(_ size: Int, _ body: @escaping @Sendable (LocalCommunicator) throws -> T) -> [Result<T, any Error>] {
    let group = LocalCommunicator.group(size: size)
    let results = Results<T>(count: size)
    let done = DispatchGroup()
    for communicator in group {
        done.enter()
        let thread = Thread {
            results.set(communicator.rank, Result { try body(communicator) })
            done.leave()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
    done.wait()
    return results.values
}

final class Results<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<T, any Error>?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: Result<T, any Error>) { lock.withLock { slots[index] = value } }
    var values: [Result<T, any Error>] { lock.withLock { slots.map { $0! } } }
}

/// The rows of `tensor` ([B, H, N, X]) at `ranges` of its sequence axis, concatenated.
func shard(_ tensor: Tensor<Float>, _ ranges: [Range<Int>]) throws -> Tensor<Float> {
    let (B, H, N, X) = (tensor.shape[0], tensor.shape[1], tensor.shape[2], tensor.shape[3])
    let n = ranges.reduce(0) { $0 + $1.count }
    var scalars: [Float] = []
    for head in 0..<(B * H) {
        for range in ranges { scalars += tensor.scalars[((head * N + range.lowerBound) * X)..<((head * N + range.upperBound) * X)] }
    }
    return try Tensor(shape: [B, H, n, X], scalars: scalars)
}

/// Puts a rank's rows ([B, H, n, X], positions at `ranges`) back into the whole `[B, H, N, X]`.
func unshard<Scalar>(_ part: [Scalar], _ ranges: [Range<Int>], into whole: inout [Scalar], heads: Int, length N: Int, width X: Int) {
    let n = ranges.reduce(0) { $0 + $1.count }
    for head in 0..<heads {
        var row = 0
        for range in ranges {
            for position in range {
                for c in 0..<X { whole[(head * N + position) * X + c] = part[(head * n + row) * X + c] }
                row += 1
            }
        }
    }
}

@Suite("Ring attention")
struct RingAttentionTests {
    struct Case: CustomStringConvertible, Sendable {
        let name: String
        let Nq, Nk: Int
        let layout: ShardLayout
        let mask: AttentionMask
        var description: String { "\(name) Nq\(Nq) Nk\(Nk) \(layout)" }
    }

    static let cases: [Case] = [
        Case(name: "no mask", Nq: 37, Nk: 37, layout: .contiguous, mask: .none),
        Case(name: "causal", Nq: 37, Nk: 37, layout: .zigZag, mask: .causal),
        Case(name: "causal", Nq: 37, Nk: 37, layout: .contiguous, mask: .causal),
        Case(name: "causal, more keys", Nq: 23, Nk: 41, layout: .zigZag, mask: .causal),
        Case(name: "causal top-left", Nq: 23, Nk: 41, layout: .contiguous, mask: .causal(.topLeft)),
        Case(name: "causal, dead rows", Nq: 41, Nk: 23, layout: .zigZag, mask: .causal),
        Case(name: "causal window", Nq: 37, Nk: 37, layout: .zigZag, mask: .causal && .slidingWindow(left: 5, right: 0)),
        Case(name: "two-sided window", Nq: 29, Nk: 31, layout: .contiguous, mask: .slidingWindow(left: 3, right: 2)),
        Case(name: "key lengths and causal", Nq: 37, Nk: 37, layout: .zigZag, mask: .causal && .keyLengths([30, 11])),
        Case(name: "diagonal band", Nq: 33, Nk: 35, layout: .zigZag, mask: .diagonalBand(lower: -4, upper: 2)),
    ]

    @Test("Over 1 to 4 ranks, equals one process within the tolerance rule (GQA, Dv ≠ D, odd lengths)",
          arguments: 1...4, cases)
    func equalsOneProcess(ranks: Int, _ c: Case) throws {
        let (B, Hq, Hkv, D, Dv) = (2, 4, 2, 16, 8)
        var g = SplitMix64(seed: UInt64(c.Nq * 1000 + c.Nk))
        let q = try Tensor<Float>.randomNormal(shape: [B, Hq, c.Nq, D], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [B, Hkv, c.Nk, D], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [B, Hkv, c.Nk, Dv], using: &g)
        let queryShards = try SequenceShards(length: c.Nq, ranks: ranks, layout: c.layout)
        let keyShards = try SequenceShards(length: c.Nk, ranks: ranks, layout: c.layout)
        let mask = c.mask
        let results = onRanks(ranks) { world in
            try ringAttention(
                query: shard(q, queryShards.ranges(ofRank: world.rank)), key: shard(k, keyShards.ranges(ofRank: world.rank)),
                value: shard(v, keyShards.ranges(ofRank: world.rank)), queryShards: queryShards, keyShards: keyShards,
                mask: mask, communicator: world, timeout: .seconds(60), options: AttentionOptions(threads: 1))
        }
        var output = [Float](repeating: .nan, count: B * Hq * c.Nq * Dv)
        var logSumExp = [Float](repeating: .nan, count: B * Hq * c.Nq)
        for (rank, result) in results.enumerated() {
            let mine = try result.get()
            let ranges = queryShards.ranges(ofRank: rank)
            #expect(mine.output.shape == [B, Hq, queryShards.count(ofRank: rank), Dv])
            unshard(mine.output.scalars, ranges, into: &output, heads: B * Hq, length: c.Nq, width: Dv)
            unshard(mine.logSumExp.scalars, ranges, into: &logSumExp, heads: B * Hq, length: c.Nq, width: 1)
        }
        let (error, naive, reference) = try errorsAgainstReference(output, query: q, key: k, value: v, mask: mask)
        let single = try scaledDotProductAttention(query: q, key: k, value: v, mask: mask, options: AttentionOptions(threads: 1))
        let (singleError, _, _) = try errorsAgainstReference(single.output.scalars, query: q, key: k, value: v, mask: mask)
        #expect(error <= ringTolerance(naive: naive, single: singleError),
                "\(c) over \(ranks): error \(error), naive \(naive), one process \(singleError)")
        #expect(maxAbsDifference(logSumExp, reference.logSumExp!.scalars) <= 1e-5, "\(c) over \(ranks): log-sum-exp")
        #expect(!output.contains { $0.isNaN } && !logSumExp.contains { $0.isNaN })
    }

    @Test("Double runs the reference on each block and equals the Double reference over the whole")
    func double() throws {
        let (N, ranks) = (29, 3)
        var g = SplitMix64(seed: 11)
        let q = try Tensor<Float>.randomNormal(shape: [1, 2, N, 8], using: &g).map(Double.init)
        let shards = try SequenceShards(length: N, ranks: ranks, layout: .zigZag)
        @Sendable func part(_ rank: Int) throws -> Tensor<Double> {
            let ranges = shards.ranges(ofRank: rank)
            var scalars: [Double] = []
            for head in 0..<2 { for r in ranges { scalars += q.scalars[((head * N + r.lowerBound) * 8)..<((head * N + r.upperBound) * 8)] } }
            return try Tensor(shape: [1, 2, shards.count(ofRank: rank), 8], scalars: scalars)
        }
        let results = onRanks(ranks) { world in
            let mine = try part(world.rank)
            return try ringAttention(query: mine, key: mine, value: mine, queryShards: shards, keyShards: shards,
                                     mask: .causal, communicator: world).output.scalars
        }
        var output = [Double](repeating: .nan, count: 2 * N * 8)
        for (rank, result) in results.enumerated() {
            unshard(try result.get(), shards.ranges(ofRank: rank), into: &output, heads: 2, length: N, width: 8)
        }
        let reference = try referenceScaledDotProductAttention(query: q, key: q, value: q, mask: .causal)
        #expect(maxAbsDifference(output, reference.output.scalars) <= 1e-12)
    }

    @Test("A causal mask skips the blocks it hides; every block of keys and values goes around the ring once")
    func statistics() throws {
        let (N, D) = (64, 8)
        var g = SplitMix64(seed: 7)
        let q = try Tensor<Float>.randomNormal(shape: [1, 2, N, D], using: &g)
        let shards = try SequenceShards(length: N, ranks: 4, layout: .zigZag)
        let results = onRanks(4) { world in
            let mine = try shard(q, shards.ranges(ofRank: world.rank))
            return try ringAttention(query: mine, key: mine, value: mine, queryShards: shards, keyShards: shards,
                                     mask: .causal, communicator: world, options: AttentionOptions(threads: 1)).statistics
        }
        let statistics = try results.map { try $0.get() }
        for (rank, s) in statistics.enumerated() {
            // Each rank holds 2 slices and sees 4 blocks of 2 slices: 16 pairs, 6 of them hidden or... at least one hidden.
            #expect(s.blocksComputed + s.blocksSkipped == 16, "rank \(rank): \(s)")
            #expect(s.blocksSkipped >= 6, "rank \(rank): \(s)")
            // Three steps send a block of 16 positions: keys and values of 2 heads × 8 floats.
            #expect(s.bytesSent == 3 * 16 * 2 * (D + D) * 4 && s.bytesReceived == s.bytesSent, "rank \(rank): \(s)")
        }
    }

    @Test("A bad shard on one rank: that rank names it, the others say which rank failed")
    func badShardOnOneRank() throws {
        let shards = try SequenceShards(length: 12, ranks: 3)
        let results = onRanks(3) { world in
            let n = world.rank == 1 ? 5 : 4
            let x = try Tensor<Float>(zeros: [1, 1, n, 4])
            let kv = try Tensor<Float>(zeros: [1, 1, 4, 4])
            return try ringAttention(query: x, key: kv, value: kv, queryShards: shards, keyShards: shards,
                                     communicator: world, timeout: .seconds(20)).output.count
        }
        #expect(thrownError { _ = try results[1].get() } == .invalidShape("query"))
        for rank in [0, 2] {
            #expect(throws: DistributedError.peersFailed(ranks: [1], code: 1)) { _ = try results[rank].get() }
        }
    }

    @Test("Ranks given different problems all stop, naming what differs")
    func disagreement() throws {
        let shards = try SequenceShards(length: 8, ranks: 2)
        let results = onRanks(2) { world in
            let x = try Tensor<Float>(zeros: [1, 1, 4, world.rank == 0 ? 8 : 16])
            return try ringAttention(query: x, key: x, value: x, queryShards: shards, keyShards: shards,
                                     communicator: world, timeout: .seconds(20)).output.count
        }
        for result in results {
            #expect(throws: DistributedError.ranksDisagree(what: "the head dimension (from 8 to 16)")) { _ = try result.get() }
        }
        let masks = onRanks(2) { world in
            let x = try Tensor<Float>(zeros: [1, 1, 4, 8])
            return try ringAttention(query: x, key: x, value: x, queryShards: shards, keyShards: shards,
                                     mask: world.rank == 0 ? .causal : .none, communicator: world, timeout: .seconds(20)).output.count
        }
        for result in masks {
            #expect(throws: DistributedError.ranksDisagree(what: "the mask's upper bound")) { _ = try result.get() }
        }
    }

    @Test("A rank that never joins ends the others with a timeout, not a hang")
    func timeout() throws {
        let shards = try SequenceShards(length: 8, ranks: 2)
        let clock = ContinuousClock()
        let start = clock.now
        let results = onRanks(2) { world in
            guard world.rank == 0 else { return 0 }
            let x = try Tensor<Float>(zeros: [1, 1, 4, 8])
            return try ringAttention(query: x, key: x, value: x, queryShards: shards, keyShards: shards,
                                     communicator: world, timeout: .milliseconds(300)).output.count
        }
        #expect(throws: DistributedError.self) { _ = try results[0].get() }
        if case .failure(let error as DistributedError) = results[0], case .timedOut(let operation, _) = error {
            #expect(operation.hasPrefix("rank 0: maximum"), "\(operation)")
        } else {
            Issue.record("expected a timeout, got \(results[0])")
        }
        #expect(clock.now - start < .seconds(10))
    }

    @Test("An empty head dimension is refused, naming the tensor")
    func emptyExtent() throws {
        let shards = try SequenceShards(length: 4, ranks: 2)
        let results = onRanks(2) { world in
            let x = try Tensor<Float>(zeros: [1, 1, 2, 0])
            return try ringAttention(query: x, key: x, value: x, queryShards: shards, keyShards: shards,
                                     communicator: world, timeout: .seconds(20)).output.count
        }
        for result in results { #expect(thrownError { _ = try result.get() } == .emptySequence("query")) }
    }

    @Test("A boolean mask is refused on every rank, naming the mask")
    func booleanMask() throws {
        let shards = try SequenceShards(length: 4, ranks: 2)
        let results = onRanks(2) { world in
            let x = try Tensor<Float>(zeros: [1, 1, 2, 4])
            return try ringAttention(query: x, key: x, value: x, queryShards: shards, keyShards: shards,
                                     mask: .boolean(Tensor(repeating: true, shape: [4, 4])),
                                     communicator: world, timeout: .seconds(20)).output.count
        }
        for result in results { #expect(thrownError { _ = try result.get() } == .invalidArgument("mask")) }
    }
}
