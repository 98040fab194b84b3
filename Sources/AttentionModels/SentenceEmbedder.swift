import Attention
import Foundation

/// Sentence embeddings as sentence-transformers computes them for all-MiniLM-L6-v2: tokenize
/// (at most 256 tokens), encode, average the final hidden states over the real tokens, L2-normalize.
public struct SentenceEmbedder: Sendable {
    /// The model's tokenizer, from its `vocab.txt`.
    public let tokenizer: WordPieceTokenizer
    /// The encoder, from `config.json` and `model.safetensors`.
    public let encoder: BERTEncoder
    /// Token limit per sentence, `[CLS]` and `[SEP]` included (sentence-transformers' max_seq_length).
    public let maxTokens: Int

    /// Loads `config.json`, `vocab.txt` and `model.safetensors` from `directory`.
    public init(directory: URL, maxTokens: Int = 256) throws {
        let configuration = try BERTConfiguration(contentsOf: directory.appendingPathComponent("config.json"))
        tokenizer = try WordPieceTokenizer(vocabularyFile: directory.appendingPathComponent("vocab.txt"))
        encoder = try BERTEncoder(configuration: configuration,
                                  weights: SafeTensors(contentsOf: directory.appendingPathComponent("model.safetensors")))
        self.maxTokens = min(maxTokens, configuration.maxPositions)
    }

    /// Token ids of a sentence, as the model sees it.
    public func tokenize(_ sentence: String) -> [Int] {
        tokenizer.encode(sentence, maxLength: maxTokens)
    }

    /// ``embed(_:options:)`` in batches of `batchSize` sentences, calling `progress` with the number
    /// embedded so far after each: for a corpus, memory stays that of one batch and an app can draw
    /// its progress.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for a batch size below 1; as
    ///   ``embed(_:options:)``.
    public func embed(
        _ sentences: [String], batchSize: Int, options: AttentionOptions = AttentionOptions(), progress: (Int) -> Void
    ) throws -> [[Float]] {
        guard batchSize >= 1 else { throw AttentionError.invalidArgument(argument: "batchSize", reason: "must be at least 1, got \(batchSize)") }
        var vectors: [[Float]] = []
        vectors.reserveCapacity(sentences.count)
        for start in stride(from: 0, to: sentences.count, by: batchSize) {
            vectors += try embed(Array(sentences[start..<min(start + batchSize, sentences.count)]), options: options)
            progress(vectors.count)
        }
        return vectors
    }

    /// One unit-length vector per sentence, in order; `options` are the encoder's (implementation
    /// and threads).
    public func embed(_ sentences: [String], options: AttentionOptions = AttentionOptions()) throws -> [[Float]] {
        let output = try encoder(sentences.map(tokenize), options: options)
        let (t, h) = (output.hiddenStates.shape[1], output.hiddenStates.shape[2])
        return output.lengths.enumerated().map { b, length in
            var sum = [Double](repeating: 0, count: h)
            for position in 0..<length {
                for k in 0..<h { sum[k] += Double(output.hiddenStates.scalars[(b * t + position) * h + k]) }
            }
            let mean = sum.map { $0 / Double(length) }
            let norm = max(mean.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            return mean.map { Float($0 / norm) }
        }
    }
}
