import Attention

/// What generation, chat and the attention maps need of a language model's tokenizer: GPT-2's and
/// SmolLM2's byte-level BPE (``ByteLevelBPETokenizer``), Gemma's SentencePiece vocabulary
/// (``SentencePieceBPETokenizer``).
public protocol TextTokenizer: Sendable {
    /// Token ids of `text` (with the beginning-of-sequence token where the vocabulary adds one).
    func encode(_ text: String) -> [Int]
    /// The text of `ids`.
    func decode(_ ids: [Int]) throws -> String
    /// The UTF-8 bytes of `ids`, for streaming (a token may end inside a character).
    func bytes(of ids: [Int]) throws -> [UInt8]
}

extension TextTokenizer {
    /// One short label per token for pictures: its text with a newline shown as ⏎, surrounding
    /// spaces dropped, and ␣ for a token of spaces; U+FFFD where a token is part of a character.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for an id outside the vocabulary.
    public func labels(of ids: [Int]) throws -> [String] {
        try ids.map { id in
            let text = try decode([id]).replacingOccurrences(of: "\n", with: "⏎").trimmingCharacters(in: .whitespaces)
            return text.isEmpty ? "␣" : text
        }
    }
}

/// Reads the tokenizer a GGUF file describes, whichever kind it is (`tokenizer.ggml.model`).
/// - Throws: `AttentionError.invalidFile(path:reason:)` for a kind no tokenizer here reads, or as
///   the tokenizer's own reader throws.
public func ggufTokenizer(_ file: GGUF) throws -> any TextTokenizer {
    switch file.metadata["tokenizer.ggml.model"]?.string {
    case "gpt2": try ByteLevelBPETokenizer(gguf: file)
    case "llama": try SentencePieceBPETokenizer(gguf: file)
    case let other:
        throw AttentionError.invalidFile(
            path: file.path, reason: "tokenizer.ggml.model is \(other.map { "'\($0)'" } ?? "missing"); byte-level BPE ('gpt2') and Gemma's SentencePiece ('llama') are read")
    }
}

extension ByteLevelBPETokenizer: TextTokenizer {}

extension SentencePieceBPETokenizer: TextTokenizer {
    /// The bytes of `ids`: a byte token's byte, any other token's text with `▁` as a space.
    public func bytes(of ids: [Int]) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for id in ids {
            guard tokens.indices.contains(id) else {
                throw AttentionError.invalidArgument(argument: "ids", reason: "id \(id) is not in the vocabulary of \(tokens.count) tokens")
            }
            if let byte = byteValue(id) { bytes.append(byte) } else { bytes += tokens[id].replacingOccurrences(of: "\u{2581}", with: " ").utf8 }
        }
        return bytes
    }
}
