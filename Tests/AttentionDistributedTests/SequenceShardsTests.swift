import Attention
import AttentionDistributed
import AttentionTestSupport
import Testing

@Suite("Sequence shards")
struct SequenceShardsTests {
    @Test("Every position is held by exactly one rank, in near-equal shares", arguments: ShardLayout.allCases)
    func partition(_ layout: ShardLayout) throws {
        for length in 1...40 {
            let most = min(layout == .zigZag ? length / 2 : length, 6)   // each slice holds a position
            for ranks in stride(from: 1, through: most, by: 1) {
                let shards = try SequenceShards(length: length, ranks: ranks, layout: layout)
                let held = (0..<ranks).flatMap { shards.ranges(ofRank: $0).flatMap { Array($0) } }
                #expect(held.sorted() == Array(0..<length), "\(layout) \(length) over \(ranks)")
                #expect(Set(held).count == held.count, "\(layout) \(length) over \(ranks): a position held twice")
                let counts = (0..<ranks).map(shards.count(ofRank:))
                #expect(counts.min()! >= 1 && counts.max()! - counts.min()! <= 2, "\(layout) \(length) over \(ranks): \(counts)")
            }
        }
    }

    @Test("Zig-zag shards give every rank the same causal work; contiguous ones do not")
    func causalBalance() throws {
        func work(_ layout: ShardLayout) throws -> [Int] {
            let shards = try SequenceShards(length: 4096, ranks: 4, layout: layout)
            // Query i sees keys 0...i: i + 1 pairs.
            return (0..<4).map { shards.ranges(ofRank: $0).reduce(0) { $0 + $1.reduce(0) { $0 + $1 + 1 } } }
        }
        let zigZag = try work(.zigZag), contiguous = try work(.contiguous)
        #expect(Double(zigZag.max()!) / Double(zigZag.min()!) < 1.001, "\(zigZag)")
        #expect(Double(contiguous.max()!) / Double(contiguous.min()!) > 6, "\(contiguous)")
    }

    @Test("Fewer positions than ranks, or no rank, is an error naming the argument")
    func tooShort() {
        #expect(thrownError { try SequenceShards(length: 3, ranks: 4) } == .invalidArgument("length"))
        #expect(thrownError { try SequenceShards(length: 3, ranks: 0) } == .invalidArgument("ranks"))
        #expect(thrownError { try SequenceShards(length: 7, ranks: 4, layout: .zigZag) } == .invalidArgument("length"))
    }
}
