import Attention
import Foundation

/// Self- versus cross-attention. In self-attention queries, keys and values come from one sequence;
/// in cross-attention the queries come from one (here a French sentence) and the keys and values from
/// another (its English source), as a translation decoder reads its encoder.
///
/// Toy embeddings make meaning explicit: each word is the vector of its concept (shared across the
/// two languages) plus a little noise of its own, so "chat" and "cat" are close and each French word
/// should read its English counterpart.
public enum CrossExperiment {
    /// What one query reads most.
    public struct Read: Codable, Sendable, Equatable {
        /// The query word (French).
        public let query: String
        /// The key word it weights most (English).
        public let key: String
        /// That weight.
        public let weight: Double
    }

    /// What ``run(seed:dimension:noise:)`` measured.
    public struct Result: Codable, Sendable, Equatable {
        /// The seed of the embeddings.
        public let seed: UInt64
        /// The French sentence, word by word.
        public let queryTokens: [String]
        /// The English sentence, word by word.
        public let keyTokens: [String]
        /// Cross-attention weights `[queries][keys]`.
        public let cross: [[Double]]
        /// Self-attention of the key sentence `[keys][keys]`.
        public let selfAttention: [[Double]]
        /// For each query, the key it attends to most.
        public let reads: [Read]
    }

    static let english: [(String, String)] = [("The", "the"), ("cat", "cat"), ("sat", "sit"), ("on", "on"), ("the", "the"), ("mat", "mat")]
    static let french: [(String, String)] = [("Le", "the"), ("chat", "cat"), ("s'est", "sit"), ("assis", "sit"), ("sur", "on"), ("le", "the"), ("tapis", "mat")]

    /// Embeds both sentences (`dimension` features, `noise` the spread of each word's own part) and attends.
    public static func run(seed: UInt64, dimension: Int = 16, noise: Double = 0.3) throws -> Result {
        func embed(_ words: [(String, String)], language: String) throws -> Tensor<Double> {
            let concepts = try Embeddings.table(for: words.map(\.1), dimension: dimension, seed: seed)
            let own = try Embeddings.table(for: words.map { language + ":" + $0.0 }, dimension: dimension, seed: seed)
            return try Tensor(shape: concepts.shape, scalars: zip(concepts.scalars, own.scalars).map { $0 + noise * $1 })
        }
        let source = try embed(english, language: "en"), target = try embed(french, language: "fr")
        let cross = try scaledDotProductAttention(query: target, key: source, value: source, returning: .weights).weights?.rows ?? []
        let selfAttention = try scaledDotProductAttention(query: source, key: source, value: source, returning: .weights).weights?.rows ?? []
        let reads = zip(french, cross).map { word, row -> Read in
            let best = row.indices.max { row[$0] < row[$1] } ?? 0
            return Read(query: word.0, key: english[best].0, weight: row[best])
        }
        return Result(seed: seed, queryTokens: french.map(\.0), keyTokens: english.map(\.0), cross: cross,
                      selfAttention: selfAttention, reads: reads)
    }
}
