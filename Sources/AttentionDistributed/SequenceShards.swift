import Attention

/// How a sequence is dealt out to ranks.
public enum ShardLayout: String, Sendable, CaseIterable, Codable {
    /// Rank `r` holds the `r`-th of `P` consecutive slices.
    case contiguous
    /// The sequence is cut into `2P` slices; rank `r` holds slices `r` and `2P - 1 - r`. Under a
    /// causal mask each rank then has the same number of visible (query, key) pairs: with contiguous
    /// slices the last rank would do `2P - 1` times the work of the first.
    case zigZag
}

/// Which positions of a sequence of `length` each of `ranks` ranks holds.
///
/// Slices differ in length by at most one (`length` need not divide evenly). A rank's local tensor
/// holds its positions in the order of ``ranges(ofRank:)``.
///
/// ```swift
/// let shards = try SequenceShards(length: 10, ranks: 2, layout: .zigZag)
/// shards.ranges(ofRank: 0)   // [0..<2, 7..<10]
/// shards.ranges(ofRank: 1)   // [2..<5, 5..<7]
/// ```
public struct SequenceShards: Sendable, Equatable, Codable {
    /// Positions in the whole sequence.
    public let length: Int
    /// Ranks it is dealt out to.
    public let ranks: Int
    /// How.
    public let layout: ShardLayout

    /// - Throws: `AttentionError.invalidArgument` unless every slice holds at least one position:
    ///   `1 <= ranks <= length` contiguous, `2 * ranks <= length` zig-zag.
    public init(length: Int, ranks: Int, layout: ShardLayout = .contiguous) throws {
        guard ranks >= 1 else {
            throw AttentionError.invalidArgument(argument: "ranks", reason: "\(ranks) ranks: at least one is needed")
        }
        guard length >= ranks else {
            throw AttentionError.invalidArgument(
                argument: "length", reason: "a sequence of \(length) positions cannot be split over \(ranks) ranks: each needs at least one")
        }
        guard layout == .contiguous || length >= 2 * ranks else {
            throw AttentionError.invalidArgument(
                argument: "length", reason: "zig-zag shards cut a sequence into 2 × \(ranks) slices: \(length) positions are too few (use contiguous shards)")
        }
        self.length = length
        self.ranks = ranks
        self.layout = layout
    }

    /// The positions `rank` holds, in its local order; empty ranges are left out.
    public func ranges(ofRank rank: Int) -> [Range<Int>] {
        switch layout {
        case .contiguous:
            return [slice(rank, of: ranks)]
        case .zigZag:
            return [slice(rank, of: 2 * ranks), slice(2 * ranks - 1 - rank, of: 2 * ranks)].filter { !$0.isEmpty }
        }
    }

    /// How many positions `rank` holds.
    public func count(ofRank rank: Int) -> Int {
        ranges(ofRank: rank).reduce(0) { $0 + $1.count }
    }

    /// The `index`-th of `parts` near-equal consecutive slices.
    private func slice(_ index: Int, of parts: Int) -> Range<Int> {
        (index * length / parts) ..< ((index + 1) * length / parts)
    }
}
