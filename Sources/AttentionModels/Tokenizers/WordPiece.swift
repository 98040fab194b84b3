import Attention
import Foundation

/// BERT's tokenizer: basic tokenization (cleanup, CJK splitting, lowercasing, accent stripping,
/// punctuation splitting), then WordPiece (greedy longest match against the vocabulary, `##` marking a
/// piece that continues a word, `[UNK]` for a word with no segmentation), framed by `[CLS]` … `[SEP]`.
public struct WordPieceTokenizer: Sendable {
    /// Token ids by token text, from vocab.txt (the id is the line number, from 0).
    public let vocabulary: [String: Int]
    /// Token text by id.
    public let tokens: [String]
    /// Whether text is lowercased (and accents stripped) before splitting, as uncased BERT models expect.
    public let lowercase: Bool
    /// Longer words become `[UNK]` without trying to split them (BERT's 100).
    public let maxCharactersPerWord = 100

    /// The ids of `[CLS]`, `[SEP]`, `[UNK]` and `[PAD]`.
    public let classifyID: Int, separatorID: Int, unknownID: Int, paddingID: Int

    /// Reads a vocabulary file with one token per line.
    public init(vocabularyFile url: URL, lowercase: Bool = true) throws {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw AttentionError.invalidFile(path: url.path, reason: "cannot be read as UTF-8 text (\(error.localizedDescription))")
        }
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        try self.init(tokens: lines.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }, lowercase: lowercase, path: url.path)
    }

    /// A tokenizer over the given vocabulary (index = id).
    public init(tokens: [String], lowercase: Bool = true, path: String = "<vocabulary>") throws {
        var vocabulary: [String: Int] = [:]
        for (id, token) in tokens.enumerated() where vocabulary[token] == nil { vocabulary[token] = id }
        func id(_ token: String) throws -> Int {
            guard let id = vocabulary[token] else {
                throw AttentionError.invalidFile(path: path, reason: "the vocabulary has no \(token) token")
            }
            return id
        }
        self.vocabulary = vocabulary
        self.tokens = tokens
        self.lowercase = lowercase
        classifyID = try id("[CLS]")
        separatorID = try id("[SEP]")
        unknownID = try id("[UNK]")
        paddingID = try id("[PAD]")
    }

    /// `[CLS] pieces… [SEP]` as ids, truncated to `maxLength` ids in all (at least 2).
    public func encode(_ text: String, maxLength: Int = 512) -> [Int] {
        let pieces = basicTokens(text).flatMap(wordPieces)
        return [classifyID] + pieces.prefix(max(0, maxLength.saturatingSubtracting(2))) + [separatorID]
    }

    /// The token texts of ids.
    public func decode(_ ids: [Int]) -> [String] {
        ids.map { $0 >= 0 && $0 < tokens.count ? tokens[$0] : "[UNK]" }
    }

    /// Basic tokenization: the words and punctuation marks of `text`.
    public func basicTokens(_ text: String) -> [String] {
        // Clean: drop NUL, U+FFFD and control characters; every kind of whitespace becomes a space;
        // CJK ideographs become words of their own.
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) { continue }
            if Self.isWhitespace(scalar) {
                cleaned.append(" ")
            } else if Self.isCJK(scalar) {
                cleaned.append(" "); cleaned.append(scalar); cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        var words: [String] = []
        for word in String(cleaned).split(separator: " ") {
            var word = String(word)
            if lowercase {
                // Lowercase, then strip accents: decompose (NFD) and drop the combining marks.
                word = word.lowercased()
                word = String(String.UnicodeScalarView(word.decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                    $0.properties.generalCategory != .nonspacingMark
                }))
            }
            // Every punctuation character is a token of its own.
            var current = String.UnicodeScalarView()
            for scalar in word.unicodeScalars {
                if Self.isPunctuation(scalar) {
                    if !current.isEmpty { words.append(String(current)); current = String.UnicodeScalarView() }
                    words.append(String(scalar))
                } else {
                    current.append(scalar)
                }
            }
            if !current.isEmpty { words.append(String(current)) }
        }
        return words
    }

    /// WordPiece: greedy longest match from the left; later pieces carry a `##` prefix.
    public func wordPieces(_ word: String) -> [Int] {
        let scalars = Array(word.unicodeScalars)
        guard scalars.count <= maxCharactersPerWord else { return [unknownID] }
        var pieces: [Int] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var match: Int?
            while start < end {
                var piece = String(String.UnicodeScalarView(scalars[start..<end]))
                if start > 0 { piece = "##" + piece }
                if let id = vocabulary[piece] { match = id; break }
                end -= 1
            }
            guard let id = match else { return [unknownID] }
            pieces.append(id)
            start = end
        }
        return pieces
    }

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        let category = s.properties.generalCategory
        return category == .control || category == .format
    }

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        let ranges: [ClosedRange<UInt32>] = [0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
                                             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F]
        return ranges.contains { $0.contains(s.value) }
    }
}
