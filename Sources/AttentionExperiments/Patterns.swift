import Attention
import Foundation

/// Three masks over one sentence: full (every token sees every token), causal (each token sees itself
/// and what came before), and local (a window of three: the token and its two neighbours).
public enum PatternsExperiment {
    /// The three patterns' weights over the sentence.
    public struct Result: Codable, Sendable, Equatable {
        /// The sentence, word by word.
        public let tokens: [String]
        /// The seed of the embeddings.
        public let seed: UInt64
        /// Features per token.
        public let dimension: Int
        /// Keys each query may see in the local pattern: `i - windowLeft ... i + windowRight`.
        public let windowLeft: Int
        /// Keys after each query the local pattern sees.
        public let windowRight: Int
        /// `[query][key]` weights with no mask.
        public let full: [[Double]]
        /// `[query][key]` weights with the causal mask.
        public let causal: [[Double]]
        /// `[query][key]` weights with the sliding window.
        public let local: [[Double]]
    }

    /// Self-attention of seeded random `dimension`-d token embeddings (one vector per distinct
    /// lowercased word, so repeated words share an embedding) under each mask.
    public static func run(tokens: [String], seed: UInt64, dimension: Int = 16, window: Int = 3) throws -> Result {
        guard !tokens.isEmpty else { throw AttentionError.invalidArgument(argument: "tokens", reason: "need at least one token") }
        guard window >= 1 else { throw AttentionError.invalidArgument(argument: "window", reason: "must be at least 1, got \(window)") }
        let x = try Embeddings.table(for: tokens, dimension: dimension, seed: seed)
        let left = (window - 1) / 2, right = window - 1 - left
        func weights(_ mask: AttentionMask) throws -> [[Double]] {
            try scaledDotProductAttention(query: x, key: x, value: x, mask: mask, returning: .weights).weights?.rows ?? []
        }
        return Result(tokens: tokens, seed: seed, dimension: dimension, windowLeft: left, windowRight: right,
                      full: try weights(.none), causal: try weights(.causal),
                      local: try weights(.slidingWindow(left: left, right: right)))
    }
}

/// Deterministic toy embeddings.
enum Embeddings {
    /// One standard normal vector per distinct lowercased token (seeded by the token's text and
    /// `seed`), stacked in token order: `[tokens.count, dimension]`.
    static func table(for tokens: [String], dimension: Int, seed: UInt64) throws -> Tensor<Double> {
        guard dimension >= 1 else {
            throw AttentionError.invalidArgument(argument: "dimension", reason: "must be at least 1, got \(dimension)")
        }
        let rows = try tokens.map { token in
            try Tensor<Double>.randomNormal(shape: [dimension], seed: seed ^ stableHash(token.lowercased())).scalars
        }
        return try Tensor(rows)
    }

    /// FNV-1a: a hash that is the same in every process (Swift's `hashValue` is randomly seeded).
    static func stableHash(_ text: String) -> UInt64 {
        text.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3 }
    }
}
