import Attention
import Foundation

/// Can a model fetch one specific item out of a sequence? A sequence holds `length` (key, value)
/// pairs of random vectors; the query is the key of one of them (the target), and the answer should
/// be its value.
///
/// - **attention**: softmax(q·Kᵀ/√d)·V, nothing learned: it keeps every item and compares the query
///   with each key;
/// - **average**: the mean of the values (fixed pooling);
/// - **moving average**: h ← 0.9·h + 0.1·v over the sequence, a fixed-size running summary;
/// - **RNN memory**: a recurrent state of fixed size d × d, updated S ← S + v·kᵀ item by item and read
///   as S·q (an associative memory, i.e. linear attention run as an RNN). It recalls well while the
///   sequence is short compared with d, then the items interfere.
///
/// Measured on `trials` sequences: the cosine similarity of each answer to the target value, and the
/// accuracy (the answer is closer, by cosine, to the target value than to every other value in the
/// sequence). Attention stays accurate as sequences grow; every fixed-size summary has to squeeze ever
/// more items into the same state.
public enum RetrievalExperiment {
    /// How well one method answered.
    public struct Score: Codable, Sendable, Equatable {
        /// Mean cosine of the answer to the target value.
        public let cosine: Double
        /// Share of trials whose answer is nearest the target value.
        public let accuracy: Double
    }

    /// Every method at one sequence length.
    public struct Row: Codable, Sendable, Equatable {
        /// Items per sequence.
        public let length: Int
        /// Attention over every item.
        public let attention: Score
        /// The mean of the values.
        public let average: Score
        /// The exponential moving average.
        public let movingAverage: Score
        /// The d × d associative memory.
        public let rnnMemory: Score
    }

    /// What ``run(seed:lengths:dimension:trials:)`` measured.
    public struct Result: Codable, Sendable, Equatable {
        /// The seed of the vectors.
        public let seed: UInt64
        /// Features per key and value.
        public let dimension: Int
        /// Sequences per length.
        public let trials: Int
        /// One row per length.
        public let rows: [Row]
    }

    /// The lengths the lessons' experiment uses.
    public static let defaultLengths = [4, 8, 16, 32, 64, 128, 256, 512]

    /// Scores every method at every length.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for a length, dimension or trial count below 1.
    public static func run(seed: UInt64, lengths: [Int] = defaultLengths, dimension: Int = 32, trials: Int = 200) throws -> Result {
        guard lengths.allSatisfy({ $0 >= 1 }), dimension >= 1, trials >= 1 else {
            throw AttentionError.invalidArgument(argument: "retrieval", reason: "lengths, dimension and trials must be positive")
        }
        _ = try checkedElementCount([lengths.max() ?? 1, dimension], argument: "lengths/dimension", atMost: 1 << 28)
        // Trials run one after another: a count no run finishes is refused, not started.
        _ = try checkedInteger(trials, in: 1...1_000_000, argument: "trials")
        var generator = SplitMix64(seed: seed)
        var rows: [Row] = []
        for length in lengths {
            var scores: [[(Double, Bool)]] = Array(repeating: [], count: 4)
            for _ in 0..<trials {
                let s = try Sequence(length: length, dimension: dimension, using: &generator)
                let answers = [
                    try s.attend(),
                    (0..<dimension).map { c in mean(s.values.map { $0[c] }) },
                    s.values.reduce(into: [Double](repeating: 0, count: dimension)) { h, v in
                        for c in 0..<dimension { h[c] = 0.9 * h[c] + 0.1 * v[c] }
                    },
                    s.recallFromMemory(),
                ]
                for (n, answer) in answers.enumerated() { scores[n].append(try s.judge(answer)) }
            }
            let summary = scores.map { list in
                Score(cosine: mean(list.map(\.0)), accuracy: mean(list.map { $0.1 ? 1 : 0 }))
            }
            rows.append(Row(length: length, attention: summary[0], average: summary[1], movingAverage: summary[2], rnnMemory: summary[3]))
        }
        return Result(seed: seed, dimension: dimension, trials: trials, rows: rows)
    }

    /// One random sequence of key/value pairs and a target position.
    struct Sequence {
        let keys: [[Double]]
        let values: [[Double]]
        let target: Int

        init(length: Int, dimension: Int, using g: inout SplitMix64) throws {
            keys = (0..<length).map { _ in (0..<dimension).map { _ in g.nextNormal() } }
            values = (0..<length).map { _ in (0..<dimension).map { _ in g.nextNormal() } }
            target = Int(g.next() % UInt64(length))
        }

        var query: [Double] { keys[target] }

        func attend() throws -> [Double] {
            try singleQueryAttention(query: query, keys: keys, values: values).output
        }

        /// The d × d state S = Σ v·kᵀ built one item at a time, read out as S·q.
        func recallFromMemory() -> [Double] {
            let d = query.count
            var state = [Double](repeating: 0, count: d * d)
            for (k, v) in zip(keys, values) {
                for r in 0..<d { for c in 0..<d { state[r * d + c] += v[r] * k[c] } }
            }
            return (0..<d).map { r in (0..<d).reduce(0.0) { $0 + state[r * d + $1] * query[$1] } }
        }

        /// (cosine to the target value, whether the target is the nearest value by cosine).
        func judge(_ answer: [Double]) throws -> (Double, Bool) {
            let similarities = try values.map { try cosineSimilarity(answer, $0) }
            let best = similarities.indices.max { similarities[$0] < similarities[$1] } ?? -1
            return (similarities[target], best == target)
        }
    }
}
