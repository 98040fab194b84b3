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

    /// Loads `config.json`, `vocab.txt` (or, without it, `tokenizer.json`) and `model.safetensors`
    /// from `directory`.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for `maxTokens` below 2 (`[CLS]`
    ///   and `[SEP]`); `AttentionError.invalidFile(path:reason:)` for a file that is missing or not
    ///   what the model needs.
    public init(directory: URL, maxTokens: Int = 256) throws {
        guard maxTokens >= 2 else {
            throw AttentionError.invalidArgument(argument: "maxTokens", reason: "must be at least 2 ([CLS] and [SEP]), got \(maxTokens)")
        }
        let configuration = try BERTConfiguration(contentsOf: directory.appendingPathComponent("config.json"))
        let vocabulary = directory.appendingPathComponent("vocab.txt")
        if !FileManager.default.fileExists(atPath: vocabulary.path), let json = TokenizerJSON.model("WordPiece", in: directory) {
            tokenizer = try WordPieceTokenizer(tokenizerJSON: json)
        } else {
            tokenizer = try WordPieceTokenizer(vocabularyFile: vocabulary)
        }
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
    /// its progress. Batches are formed as ``embedCorpus(_:batchSize:options:progress:)`` forms them
    /// (by length); the vectors come back in input order.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for a batch size below 1; as
    ///   ``embed(_:options:)``.
    public func embed(
        _ sentences: [String], batchSize: Int, options: AttentionOptions = AttentionOptions(), progress: (Int) -> Void
    ) throws -> [[Float]] {
        try embedCorpus(sentences, batchSize: batchSize, options: options, progress: progress).vectors
    }

    /// Embeds a corpus: every text tokenized once, the texts sorted by token count (longest first,
    /// as sentence-transformers' `encode` does) so that each batch of `batchSize` pads little, the
    /// batches embedded in turn, the vectors returned in input order. `progress` gets the number of
    /// texts embedded so far after each batch. Texts longer than ``maxTokens`` are cut to it (as
    /// ``tokenize(_:)`` cuts them); their indices are returned so that a caller can say so.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for a batch size below 1; as
    ///   ``embed(_:options:)``.
    public func embedCorpus(
        _ texts: [String], batchSize: Int = 32, options: AttentionOptions = AttentionOptions(), progress: (Int) -> Void = { _ in }
    ) throws -> (vectors: [[Float]], truncated: [Int]) {
        guard batchSize >= 1 else { throw AttentionError.invalidArgument(argument: "batchSize", reason: "must be at least 1, got \(batchSize)") }
        var truncated: [Int] = []
        let ids = texts.enumerated().map { index, text in
            let whole = tokenizer.encode(text, maxLength: Int.max)
            guard whole.count > maxTokens else { return whole }
            truncated.append(index)
            return Array(whole.prefix(maxTokens - 1)) + [whole[whole.count - 1]]
        }
        // Longest first; equal lengths keep their input order, so the batches do not depend on the sort.
        let order = ids.indices.sorted { ids[$0].count != ids[$1].count ? ids[$0].count > ids[$1].count : $0 < $1 }
        var vectors = [[Float]](repeating: [], count: texts.count)
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let batch = Array(order[start..<min(start + batchSize, order.count)])
            for (index, vector) in zip(batch, try embed(tokenIDs: batch.map { ids[$0] }, options: options)) {
                vectors[index] = vector
            }
            progress(min(start + batchSize, order.count))
        }
        return (vectors, truncated)
    }

    /// One unit-length vector per sentence, in order; `options` are the encoder's (implementation
    /// and threads).
    public func embed(_ sentences: [String], options: AttentionOptions = AttentionOptions()) throws -> [[Float]] {
        try embed(tokenIDs: sentences.map(tokenize), options: options)
    }

    /// Mean-pooled, L2-normalized vectors of sentences already tokenized (`[CLS] … [SEP]`).
    func embed(tokenIDs: [[Int]], options: AttentionOptions) throws -> [[Float]] {
        let output = try encoder.encodePacked(tokenIDs, tokenTypes: nil, returning: [], options: options)
        let h = encoder.configuration.hiddenSize
        return zip(output.sequences.lengths, output.sequences.offsets).map { length, offset in
            var sum = [Double](repeating: 0, count: h)
            for row in offset..<(offset + length) {
                for k in 0..<h { sum[k] += Double(output.hiddenStates[row * h + k]) }
            }
            let mean = sum.map { $0 / Double(length) }
            let norm = max(mean.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            return mean.map { Float($0 / norm) }
        }
    }
}
