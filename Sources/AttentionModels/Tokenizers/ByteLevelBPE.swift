import Attention
import Foundation

/// GPT-2's tokenizer: byte-level byte-pair encoding from `vocab.json` and `merges.txt`.
///
/// Text is split into pieces by GPT-2's pattern (contractions, letters with an optional leading
/// space, numbers, other symbols, whitespace runs; see ``pretokenize(_:)``); each piece's UTF-8 bytes
/// become printable characters through GPT-2's byte-to-unicode map (so a space is `Ġ`); then the
/// adjacent pair with the lowest merge rank is merged, again and again, until no pair of the piece
/// has a rank. Every byte has a token, so every text encodes, and decoding gives back its bytes.
/// Special tokens (`<|endoftext|>`) written in the text become their own id, as in transformers'
/// `GPT2TokenizerFast`.
public struct ByteLevelBPETokenizer: Sendable {
    /// Token ids by token text (in byte-to-unicode characters).
    public let vocabulary: [String: Int]
    /// Token text by id (nil for ids the vocabulary skips).
    public let tokens: [String?]
    /// Special tokens matched in the text before pre-tokenizing, by text.
    public let specialTokens: [String: Int]
    /// Merge rank of each pair (lower merges first).
    private let ranks: [Pair: Int]
    /// The merges in rank order.
    let rankedMerges: [(String, String)]
    /// Each byte's one-character symbol, nil for a byte the vocabulary has no token for.
    private let byteSymbols: [String?]

    struct Pair: Hashable, Sendable { let left: String, right: String }

    /// The id of `<|endoftext|>`, if the vocabulary has it.
    public var endOfText: Int? { specialTokens["<|endoftext|>"] }

    /// Reads `vocab.json` and `merges.txt` from a model directory, or, where they are absent, the
    /// `tokenizer.json` current transformers writes instead (same ids).
    public init(directory: URL) throws {
        let vocabulary = directory.appendingPathComponent("vocab.json"), merges = directory.appendingPathComponent("merges.txt")
        let older = [vocabulary, merges].allSatisfy { FileManager.default.fileExists(atPath: $0.path) }
        if !older, let json = TokenizerJSON.model("BPE", in: directory) {
            try self.init(tokenizerJSON: json)
        } else {
            try self.init(vocabularyFile: vocabulary, mergesFile: merges)
        }
    }

    /// Reads a vocabulary (a JSON object of token → id) and merges (one `left right` pair per line,
    /// after an optional `#version` line).
    public init(vocabularyFile: URL, mergesFile: URL) throws {
        let vocabulary: [String: Int], data: Data
        do {
            data = try Data(contentsOf: vocabularyFile)
        } catch {
            throw AttentionError.invalidFile(path: vocabularyFile.path, reason: "cannot be read (\(error.localizedDescription))")
        }
        do {
            vocabulary = try JSONDecoder().decode([String: Int].self, from: data)
        } catch {
            throw AttentionError.invalidFile(path: vocabularyFile.path, reason: "not a JSON object of token → id (\(error.localizedDescription))")
        }
        let text: String
        do {
            text = try String(contentsOf: mergesFile, encoding: .utf8)
        } catch {
            throw AttentionError.invalidFile(path: mergesFile.path, reason: "cannot be read as UTF-8 text (\(error.localizedDescription))")
        }
        var merges: [(String, String)] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            if line.isEmpty || (number == 0 && line.hasPrefix("#version")) { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw AttentionError.invalidFile(path: mergesFile.path, reason: "line \(number + 1) is not two tokens separated by one space: '\(line.prefix(80))'")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        try self.init(vocabulary: vocabulary, merges: merges, path: vocabularyFile.deletingLastPathComponent().path)
    }

    /// A tokenizer from a vocabulary and merges in rank order; `path` only names the source in errors.
    /// `specialTokens` are matched whole in the text before pre-tokenizing (the longest where two
    /// start at the same place); nil means `<|endoftext|>`, as GPT-2 has it. With
    /// `requireEveryByte` false a vocabulary may lack some bytes' tokens (SmolLM2's has no token for
    /// 21 bytes, control characters and bytes UTF-8 never uses): such bytes are dropped from the
    /// text before merging, as transformers' BPE without an unknown token drops them.
    ///
    /// - Throws: `AttentionError.invalidFile(path:reason:)` if an id is negative or repeated, a byte
    ///   has no token (unless allowed), a merge's parts or result or a special token are not in the
    ///   vocabulary.
    public init(vocabulary: [String: Int], merges: [(String, String)], specialTokens: [String]? = nil,
                requireEveryByte: Bool = true, path: String = "<vocabulary>") throws {
        func fail(_ reason: String) -> AttentionError { .invalidFile(path: path, reason: reason) }
        guard let largest = vocabulary.values.max(), vocabulary.values.min()! >= 0 else {
            throw fail("the vocabulary is empty or has a negative id")
        }
        guard largest < 1 << 24 else { throw fail("id \(largest) is implausibly large (at most 2^24 - 1)") }
        var tokens = [String?](repeating: nil, count: largest + 1)
        for (token, id) in vocabulary {
            if let other = tokens[id] { throw fail("id \(id) belongs to both '\(other)' and '\(token)'") }
            tokens[id] = token
        }
        for byte in 0...255 where requireEveryByte && vocabulary[String(ByteLevelBPETokenizer.byteToCharacter[byte])] == nil {
            throw fail("byte \(byte) (character '\(ByteLevelBPETokenizer.byteToCharacter[byte])') has no token: not a byte-level vocabulary")
        }
        self.byteSymbols = ByteLevelBPETokenizer.byteToCharacter.map { vocabulary[String($0)] == nil ? nil : String($0) }
        var ranks: [Pair: Int] = [:], ranked: [(String, String)] = []
        for (rank, (left, right)) in merges.enumerated() {
            for part in [left, right, left + right] where vocabulary[part] == nil {
                throw fail("merge \(rank + 1) ('\(left) \(right)') uses '\(part)', which is not in the vocabulary")
            }
            let pair = Pair(left: left, right: right)
            if ranks[pair] == nil {
                ranks[pair] = rank
                ranked.append((left, right))
            }
        }
        self.rankedMerges = ranked
        self.vocabulary = vocabulary
        self.tokens = tokens
        self.ranks = ranks
        if let specialTokens {
            var special: [String: Int] = [:]
            for token in specialTokens where !token.isEmpty {
                guard let id = vocabulary[token] else { throw fail("special token '\(token)' is not in the vocabulary") }
                special[token] = id
            }
            self.specialTokens = special
        } else {
            self.specialTokens = vocabulary.filter { $0.key == "<|endoftext|>" }
        }
    }

    /// Token ids of `text`.
    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        var known: [Substring: [Int]] = [:]   // a long text repeats its words: merge each once
        for (segment, special) in splitOnSpecialTokens(text) {
            if let special { ids.append(special); continue }
            for piece in ByteLevelBPETokenizer.pretokenize(segment) {
                if let cached = known[piece] { ids.append(contentsOf: cached); continue }
                let symbols = merge(piece.utf8.compactMap { byteSymbols[Int($0)] })
                // Every symbol is in the vocabulary: bytes and merge results were checked at init.
                let pieceIDs = symbols.map { vocabulary[$0]! }
                known[piece] = pieceIDs
                ids.append(contentsOf: pieceIDs)
            }
        }
        return ids
    }

    /// The text of `ids`: their bytes joined, invalid UTF-8 replaced by U+FFFD (transformers'
    /// `errors="replace"`).
    ///
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for an id not in the vocabulary.
    public func decode(_ ids: [Int]) throws -> String {
        String(decoding: try bytes(of: ids), as: UTF8.self)
    }

    /// The bytes of `ids` (a token may end inside a multi-byte character: decode whole sequences,
    /// or buffer bytes, when streaming).
    public func bytes(of ids: [Int]) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for id in ids {
            guard id >= 0, id < tokens.count, let token = tokens[id] else {
                throw AttentionError.invalidArgument(argument: "ids", reason: "id \(id) is not in the vocabulary of \(vocabulary.count) tokens")
            }
            if specialTokens[token] != nil { bytes.append(contentsOf: token.utf8); continue }
            for character in token.unicodeScalars {
                // Every vocabulary character came from a byte; one that did not is kept as its UTF-8.
                if let byte = ByteLevelBPETokenizer.characterToByte[character] { bytes.append(byte) } else { bytes.append(contentsOf: String(character).utf8) }
            }
        }
        return bytes
    }

    /// The text split around special tokens: (segment, nil) for ordinary text, ("", id) for a special token.
    private func splitOnSpecialTokens(_ text: String) -> [(Substring, Int?)] {
        guard !specialTokens.isEmpty else { return [(text[...], nil)] }
        var result: [(Substring, Int?)] = []
        var rest = text[...]
        // The earliest match, and of those starting there the longest (`<|im_start|>` before `<|im`).
        func earlier(_ a: (Range<Substring.Index>, Int), _ b: (Range<Substring.Index>, Int)) -> Bool {
            a.0.lowerBound != b.0.lowerBound ? a.0.lowerBound < b.0.lowerBound : a.0.upperBound > b.0.upperBound
        }
        while let (token, id) = specialTokens.compactMap({ t, id in rest.range(of: t).map { ($0, id) } }).min(by: earlier) {
            if rest.startIndex < token.lowerBound { result.append((rest[..<token.lowerBound], nil)) }
            result.append(("", id))
            rest = rest[token.upperBound...]
        }
        if !rest.isEmpty { result.append((rest, nil)) }
        return result
    }

    /// Byte-pair merges of one piece: the lowest-ranked adjacent pair merged everywhere it occurs,
    /// until no adjacent pair has a rank.
    private func merge(_ start: [String]) -> [String] {
        var symbols = start
        while symbols.count > 1 {
            var best: (rank: Int, pair: Pair)?
            for i in 0..<(symbols.count - 1) {
                let pair = Pair(left: symbols[i], right: symbols[i + 1])
                if let rank = ranks[pair], rank < (best?.rank ?? .max) { best = (rank, pair) }
            }
            guard let best else { break }
            var merged: [String] = []
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count, symbols[i] == best.pair.left, symbols[i + 1] == best.pair.right {
                    merged.append(best.pair.left + best.pair.right)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        return symbols
    }
}

extension ByteLevelBPETokenizer {
    /// GPT-2's byte-to-unicode map: the printable bytes `!`…`~`, `¡`…`¬`, `®`…`ÿ` stand for
    /// themselves; the other 68 bytes (controls, space, DEL, NBSP, soft hyphen) become U+0100 onwards
    /// in byte order, so every token is printable text.
    public static let byteToCharacter: [Unicode.Scalar] = {
        var map = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0...255 {
            if (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte) {
                map[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                map[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return map
    }()

    static let characterToByte: [Unicode.Scalar: UInt8] = {
        var inverse: [Unicode.Scalar: UInt8] = [:]
        for (byte, character) in byteToCharacter.enumerated() { inverse[character] = UInt8(byte) }
        return inverse
    }()

    /// GPT-2's pre-tokenizer, the pattern
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    /// matched leftmost-first, written out over Unicode scalars: contractions; a run of letters, of
    /// numbers, or of other symbols, each with at most one space before it; whitespace, leaving its
    /// last character to the word that follows (so `"a  b"` is `a`, `" "`, `" b"`).
    public static func pretokenize(_ text: Substring) -> [Substring] {
        let scalars = text.unicodeScalars
        var pieces: [Substring] = []
        var i = scalars.startIndex
        func kind(_ s: Unicode.Scalar) -> ScalarClass { ScalarClass(s) }
        while i < scalars.endIndex {
            let start = i
            let c = scalars[i]
            // Contractions.
            if c == "'" {
                let rest = scalars[scalars.index(after: i)...]
                if let length = ["re", "ve", "ll", "s", "t", "m", "d"].first(where: { rest.starts(with: $0.unicodeScalars) })?.unicodeScalars.count {
                    let end = scalars.index(i, offsetBy: length + 1)
                    pieces.append(Substring(scalars[start..<end]))
                    i = end
                    continue
                }
            }
            // An optional space, then a run of one kind (letters, numbers, or other non-space symbols).
            var j = i
            if c == " ", scalars.index(after: i) < scalars.endIndex { j = scalars.index(after: i) }
            let runKind = kind(scalars[j])
            if runKind != .whitespace {
                var end = scalars.index(after: j)
                while end < scalars.endIndex, kind(scalars[end]) == runKind { end = scalars.index(after: end) }
                pieces.append(Substring(scalars[start..<end]))
                i = end
                continue
            }
            // Whitespace: the run, less its last character if a non-space follows.
            var end = scalars.index(after: i)
            while end < scalars.endIndex, kind(scalars[end]) == .whitespace { end = scalars.index(after: end) }
            if end < scalars.endIndex, scalars.distance(from: i, to: end) > 1 { end = scalars.index(before: end) }
            pieces.append(Substring(scalars[start..<end]))
            i = end
        }
        return pieces
    }
}

/// The classes of characters GPT-2's pattern tells apart (`\p{L}`, `\p{N}`, `\s`, the rest).
private enum ScalarClass {
    case letter, number, whitespace, other

    init(_ s: Unicode.Scalar) {
        if s.properties.isWhitespace { self = .whitespace; return }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: self = .letter
        case .decimalNumber, .letterNumber, .otherNumber: self = .number
        default: self = .other
        }
    }
}
