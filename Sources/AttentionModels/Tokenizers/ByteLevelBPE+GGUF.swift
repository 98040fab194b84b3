import Attention
import Foundation

extension ByteLevelBPETokenizer {
    /// The byte-level BPE tokenizer a GGUF file describes (`tokenizer.ggml.model` = `gpt2`), built as
    /// transformers builds it from the same file: token `i` of `tokenizer.ggml.tokens` has id `i`
    /// (a token written outside GPT-2's byte alphabet is spelled by its UTF-8 bytes; where two
    /// tokens have the same text the later id wins), the merges of `tokenizer.ggml.merges` in rank
    /// order, GPT-2's pre-tokenizing pattern, and the tokens `tokenizer.ggml.token_type` marks as
    /// control (3) or user-defined (4) matched whole in the text. A byte without a token is dropped
    /// from the text, as transformers does.
    ///
    /// - Throws: `AttentionError.invalidFile(path:reason:)` naming the key that is missing or
    ///   malformed, or for a tokenizer of another kind.
    public init(gguf file: GGUF) throws {
        func fail(_ reason: String) -> AttentionError { .invalidFile(path: file.path, reason: reason) }
        let model = file.metadata["tokenizer.ggml.model"]?.string
        guard model == "gpt2" else {
            throw fail("tokenizer.ggml.model is \(model.map { "'\($0)'" } ?? "missing"); only byte-level BPE ('gpt2') is supported")
        }
        guard let tokens = file.metadata["tokenizer.ggml.tokens"]?.strings else {
            throw fail("tokenizer.ggml.tokens is missing or not an array of strings")
        }
        guard let mergeLines = file.metadata["tokenizer.ggml.merges"]?.strings else {
            throw fail("tokenizer.ggml.merges is missing or not an array of strings")
        }
        let types = try file.tokenTypes(count: tokens.count)
        let alphabet = Set(Self.byteToCharacter)
        func spelled(_ token: String) -> String {
            token.unicodeScalars.allSatisfy(alphabet.contains)
                ? token : String(String.UnicodeScalarView(token.utf8.map { Self.byteToCharacter[Int($0)] }))
        }
        var vocabulary: [String: Int] = [:]
        for (id, token) in tokens.enumerated() { vocabulary[spelled(token)] = id }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeLines.count)
        for (rank, line) in mergeLines.enumerated() {
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw fail("merge \(rank + 1) of tokenizer.ggml.merges is not two tokens separated by one space: '\(line.prefix(80))'")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        // Control tokens written outside the byte alphabet are a converter's mislabel that
        // transformers skips; user-defined ones count when their text is in the vocabulary.
        var special: [String] = []
        for (token, type) in zip(tokens, types) {
            if type == 3, token.unicodeScalars.allSatisfy(alphabet.contains) { special.append(token) }
            if type == 4, vocabulary[token] != nil { special.append(token) }
        }
        try self.init(vocabulary: vocabulary, merges: merges, specialTokens: special, requireEveryByte: false, path: file.path)
    }
}

extension GGUF {
    /// `tokenizer.ggml.token_type`, one per token (1, normal, for every token where the file has
    /// none; 3 control, 4 user-defined, 6 byte).
    /// - Throws: `AttentionError.invalidFile(path:reason:)` if it is not `count` integers.
    func tokenTypes(count: Int) throws -> [Int] {
        guard let value = metadata["tokenizer.ggml.token_type"] else { return Array(repeating: 1, count: count) }
        guard let list = value.integers, list.count == count else {
            throw AttentionError.invalidFile(path: path, reason: "tokenizer.ggml.token_type is not \(count) integers, one per token")
        }
        return list
    }
}
