import Attention
import Foundation

/// The `tokenizer.json` that current transformers (5.x `save_pretrained`) writes in place of
/// `vocab.json` and `merges.txt` (GPT-2) or `vocab.txt` (BERT): the model part of it that these
/// tokenizers read.
struct TokenizerJSON {
    /// `model.type`: `BPE`, `WordPiece`, ...
    let type: String
    /// `model.vocab`: token text → id.
    let vocabulary: [String: Int]
    /// `model.merges` in rank order, written either as `"a b"` or as `["a", "b"]`.
    let merges: [(String, String)]
    /// The texts of `added_tokens` marked special.
    let specialTokens: [String]
    /// `normalizer.lowercase` where the normalizer is BERT's (nil otherwise).
    let lowercase: Bool?
    /// Where it was read, for errors.
    let path: String

    /// The file at `url`.
    /// - Throws: `AttentionError.invalidFile(path:reason:)` if it cannot be read, is not JSON, or its
    ///   model's vocabulary or merges are not what the format says.
    init(contentsOf url: URL) throws {
        func fail(_ reason: String) -> AttentionError { .invalidFile(path: url.path, reason: reason) }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        } catch {
            throw fail("cannot be read as JSON (\(error.localizedDescription))")
        }
        guard let root = object as? [String: Any], let model = root["model"] as? [String: Any] else { throw fail("has no \"model\" object") }
        guard let type = model["type"] as? String else { throw fail("model.type is missing") }
        guard let vocabulary = model["vocab"] as? [String: Int] else { throw fail("model.vocab is not an object of token → id") }
        var merges: [(String, String)] = []
        for (rank, entry) in ((model["merges"] as? [Any]) ?? []).enumerated() {
            if let line = entry as? String {
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("merge \(rank + 1) is not two tokens separated by one space: '\(line.prefix(80))'") }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = entry as? [String], pair.count == 2 {
                merges.append((pair[0], pair[1]))
            } else {
                throw fail("merge \(rank + 1) is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        let added = (root["added_tokens"] as? [[String: Any]]) ?? []
        self.type = type
        self.vocabulary = vocabulary
        self.merges = merges
        self.specialTokens = added.filter { $0["special"] as? Bool == true }.compactMap { $0["content"] as? String }
        let normalizer = root["normalizer"] as? [String: Any]
        self.lowercase = normalizer?["type"] as? String == "BertNormalizer" ? (normalizer?["lowercase"] as? Bool ?? true) : nil
        self.path = url.path
    }

    /// `tokenizer.json` in `directory`, if there is one and its model is of `type`.
    static func model(_ type: String, in directory: URL) -> URL? {
        let url = directory.appendingPathComponent("tokenizer.json")
        guard let data = try? Data(contentsOf: url), let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              (root["model"] as? [String: Any])?["type"] as? String == type else { return nil }
        return url
    }
}

extension ByteLevelBPETokenizer {
    /// Reads a byte-level BPE model from transformers' `tokenizer.json`: `model.vocab`,
    /// `model.merges` and the special `added_tokens`.
    /// - Throws: `AttentionError.invalidFile(path:reason:)` for a file that is not a BPE tokenizer,
    ///   or as ``init(vocabulary:merges:specialTokens:requireEveryByte:path:)``.
    public init(tokenizerJSON url: URL) throws {
        let file = try TokenizerJSON(contentsOf: url)
        guard file.type == "BPE" else { throw AttentionError.invalidFile(path: url.path, reason: "model.type is '\(file.type)', not 'BPE'") }
        try self.init(vocabulary: file.vocabulary, merges: file.merges, specialTokens: file.specialTokens, path: url.path)
    }

    /// Whether `directory` holds a byte-level BPE tokenizer: `merges.txt`, or a `tokenizer.json`
    /// whose model is BPE.
    public static func isPresent(in directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("merges.txt").path)
            || TokenizerJSON.model("BPE", in: directory) != nil
    }
}

extension WordPieceTokenizer {
    /// Reads a WordPiece model from transformers' `tokenizer.json`: `model.vocab` (ids from 0 with
    /// no gaps), lowercased as its BERT normalizer says (as `vocab.txt` models are by default).
    /// - Throws: `AttentionError.invalidFile(path:reason:)` for a file that is not a WordPiece
    ///   tokenizer or whose ids are not 0 ..< count.
    public init(tokenizerJSON url: URL) throws {
        let file = try TokenizerJSON(contentsOf: url)
        guard file.type == "WordPiece" else { throw AttentionError.invalidFile(path: url.path, reason: "model.type is '\(file.type)', not 'WordPiece'") }
        var tokens = [String?](repeating: nil, count: file.vocabulary.count)
        for (token, id) in file.vocabulary {
            guard tokens.indices.contains(id), tokens[id] == nil else {
                throw AttentionError.invalidFile(path: url.path, reason: "model.vocab's ids are not 0..<\(file.vocabulary.count), each once (id \(id) of '\(token)')")
            }
            tokens[id] = token
        }
        try self.init(tokens: tokens.map { $0 ?? "" }, lowercase: file.lowercase ?? true, path: url.path)
    }
}
