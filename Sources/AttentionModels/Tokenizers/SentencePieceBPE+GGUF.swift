import Attention
import Foundation

extension SentencePieceBPETokenizer {
    /// The tokenizer a Gemma-family GGUF file describes (`tokenizer.ggml.model` = `llama`,
    /// `general.architecture` `gemma`, `gemma2` or `gemma3`), built as transformers builds it from the
    /// same file:
    /// - token `i` of `tokenizer.ggml.tokens` has id `i`, a token of whitespace with a space in it
    ///   spelled with `▁` for each of its characters (the file stores `"  "`, the model merges `▁▁`);
    /// - the merges are the vocabulary's own order (the file lists none; Gemma's scores do not
    ///   follow its merge order, its token order does);
    /// - the tokens `tokenizer.ggml.token_type` marks as control (3) are matched whole in the text, and
    ///   so are the user-defined ones (4) whose text is a token as spelled;
    /// - `<bos>` starts every encoding unless `tokenizer.ggml.add_bos_token` is false.
    ///
    /// - Throws: `AttentionError.invalidFile(path:reason:)` naming the key that is missing or
    ///   malformed, for a tokenizer of another kind, or a SentencePiece vocabulary of another family
    ///   (whose merges and spaces follow other rules).
    public init(gguf file: GGUF) throws {
        func fail(_ reason: String) -> AttentionError { .invalidFile(path: file.path, reason: reason) }
        let model = file.metadata["tokenizer.ggml.model"]?.string
        guard model == "llama" else {
            throw fail("tokenizer.ggml.model is \(model.map { "'\($0)'" } ?? "missing"), not a SentencePiece vocabulary ('llama')")
        }
        let architecture = file.metadata["general.architecture"]?.string ?? "missing"
        guard ["gemma", "gemma2", "gemma3"].contains(architecture) else {
            throw fail("a SentencePiece vocabulary of architecture '\(architecture)': only Gemma's (gemma, gemma2, gemma3) are read")
        }
        guard let stored = file.metadata["tokenizer.ggml.tokens"]?.strings, !stored.isEmpty else {
            throw fail("tokenizer.ggml.tokens is missing or not an array of strings")
        }
        let types = try file.tokenTypes(count: stored.count)
        let tokens = stored.map { token in
            token.unicodeScalars.contains(" ") && token.unicodeScalars.allSatisfy(\.properties.isWhitespace)
                ? String(repeating: "\u{2581}", count: token.unicodeScalars.count) : token
        }
        // Ids by text as the model spells it (the later id where two tokens are spelled alike).
        var byText: [[UInt8]: Int] = [:]
        for (id, token) in tokens.enumerated() { byText[Array(token.utf8)] = id }
        var added: [String: Int] = [:], control: Set<Int> = []
        for (token, type) in zip(stored, types) where type == 3 || type == 4 {
            guard let id = byText[Array(token.utf8)] else { continue }
            added[token] = id
            if type == 3 { control.insert(id) }
        }
        func id(_ key: String) throws -> Int? {
            guard let value = file.metadata["tokenizer.ggml." + key] else { return nil }
            guard let id = value.integer, stored.indices.contains(id) else {
                throw fail("tokenizer.ggml.\(key) is not an id of the \(stored.count) tokens")
            }
            return id
        }
        let addsBeginning = file.metadata["tokenizer.ggml.add_bos_token"]?.bool ?? true
        try self.init(tokens: tokens, addedTokens: added, control: control, beginning: id("bos_token_id"), addsBeginning: addsBeginning,
                      end: id("eos_token_id"), unknown: id("unknown_token_id"), path: file.path)
    }
}
