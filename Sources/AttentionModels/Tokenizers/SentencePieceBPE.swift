import Attention
import Foundation

/// A SentencePiece vocabulary read as byte-pair encoding with byte fallback, as transformers builds
/// Gemma's tokenizer (`GemmaTokenizer`) and llama.cpp reads a `llama`-model GGUF vocabulary.
///
/// Encoding:
/// 1. Added tokens (``addedTokens``: control tokens like `<start_of_turn>`, user-defined ones like
///    `\n\n`) are matched whole in the raw text, the leftmost and then the longest first.
/// 2. In the text between them every space becomes the metaspace `▁` (U+2581); no space is
///    prepended.
/// 3. Each Unicode scalar becomes its token. A scalar with no token becomes the tokens of its
///    UTF-8 bytes (`<0xE4>`), or the unknown token where a byte has none; unknown tokens side by
///    side fuse into one.
/// 4. Adjacent tokens are merged while some pair's concatenation is a token: first the pair that
///    makes the earliest token of the vocabulary (where it can be split several ways, the split
///    with the longer left part first), then the leftmost.
///
/// Step 4 is byte-pair encoding whose merges are every split of every token into two tokens, ranked
/// by the vocabulary's order: what transformers derives from a GGUF file that lists no merges.
/// Token texts are compared as UTF-8 bytes, never as Swift strings (which would equate canonically
/// equivalent texts, `é` and `e` + U+0301, that are different tokens).
public struct SentencePieceBPETokenizer: Sendable {
    /// Token text by id, as the model spells it (`▁` for a space).
    public let tokens: [String]
    /// The ids of the texts matched whole before merging: control tokens and user-defined tokens.
    public let addedTokens: [String: Int]
    /// The beginning-of-sequence id.
    public let beginning: Int?
    /// Whether ``encode(_:)`` starts with ``beginning``.
    public let addsBeginning: Bool
    /// The end-of-sequence id (generation stops there).
    public let end: Int?
    /// The unknown token's id (for a scalar whose bytes have no tokens).
    public let unknown: Int?

    /// Ids by token bytes (the last id where two tokens have the same text).
    private let ids: [[UInt8]: Int]
    /// Each byte's `<0xNN>` token, if the vocabulary has it.
    private let byteTokens: [Int?]
    /// The added tokens as a trie over their UTF-8 bytes, for the leftmost-longest match.
    private let trie: ByteTrie
    /// Ids of the control tokens (decoded as their text, like every token).
    private let control: Set<Int>

    /// A tokenizer from token texts in id order (spaces written as `▁`), the ids of the added tokens,
    /// and the special ids; `path` only names the source in errors.
    /// - Throws: `AttentionError.invalidFile(path:reason:)` if there are no tokens, an added or
    ///   special id is outside them.
    public init(tokens: [String], addedTokens: [String: Int], control: Set<Int> = [], beginning: Int?, addsBeginning: Bool,
                end: Int?, unknown: Int?, path: String = "<vocabulary>") throws {
        func fail(_ reason: String) -> AttentionError { .invalidFile(path: path, reason: reason) }
        guard !tokens.isEmpty, tokens.count < 1 << 24 else { throw fail("need between 1 and 2^24 - 1 tokens, got \(tokens.count)") }
        for (name, id) in [("beginning", beginning), ("end", end), ("unknown", unknown)] {
            if let id, !tokens.indices.contains(id) { throw fail("the \(name) token's id \(id) is outside the \(tokens.count) tokens") }
        }
        if let bad = addedTokens.first(where: { !tokens.indices.contains($0.value) || $0.key.isEmpty }) {
            throw fail("added token '\(bad.key.prefix(40))' has id \(bad.value), outside the \(tokens.count) tokens (or is empty)")
        }
        var ids: [[UInt8]: Int] = [:]
        ids.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() { ids[Array(token.utf8)] = id }
        self.tokens = tokens
        self.ids = ids
        self.byteTokens = (0..<256).map { ids[Array(String(format: "<0x%02X>", $0).utf8)] }
        self.addedTokens = addedTokens
        self.trie = ByteTrie(addedTokens.map { (Array($0.key.utf8), $0.value) })
        self.control = control
        self.beginning = beginning
        self.addsBeginning = addsBeginning && beginning != nil
        self.end = end
        self.unknown = unknown
    }

    /// Token ids of `text`, after the beginning-of-sequence id if the vocabulary adds it.
    public func encode(_ text: String) -> [Int] {
        var result = addsBeginning ? [beginning!] : []
        let bytes = Array(text.utf8)
        var start = 0, i = 0
        while i < bytes.count {
            if let (length, id) = trie.longestMatch(in: bytes, at: i) {
                if start < i { result += merge(bytes[start..<i]) }
                result.append(id)
                i += length
                start = i
            } else {
                i += 1
            }
        }
        if start < bytes.count { result += merge(bytes[start...]) }
        return result
    }

    /// One symbol of a text being merged: its token and text, in a list linked by index.
    private struct Symbol {
        var id: Int
        var bytes: [UInt8]
        var scalars: Int
        var previous: Int
        var next: Int
        var alive = true
    }

    /// A candidate merge: the token it makes, the left part's length (longer first), the left
    /// symbol's position, and the two ids it was computed for (stale once either changes).
    private struct Candidate: Comparable {
        let token: Int, leftScalars: Int, position: Int, left: Int, right: Int
        static func < (a: Candidate, b: Candidate) -> Bool {
            (a.token, -a.leftScalars, a.position) < (b.token, -b.leftScalars, b.position)
        }
    }

    /// Steps 2 to 4 on a piece of text between added tokens.
    private func merge(_ piece: ArraySlice<UInt8>) -> [Int] {
        let text = String(decoding: piece, as: UTF8.self)
        var symbols: [Symbol] = []
        for scalar in text.unicodeScalars {
            let spelled = scalar == " " ? "\u{2581}" : String(scalar)
            let bytes = Array(spelled.utf8)
            if let id = ids[bytes] {
                symbols.append(Symbol(id: id, bytes: bytes, scalars: 1, previous: symbols.count - 1, next: symbols.count + 1))
            } else if bytes.allSatisfy({ byteTokens[Int($0)] != nil }) {
                for byte in bytes {
                    let id = byteTokens[Int(byte)]!
                    symbols.append(Symbol(id: id, bytes: Array(tokens[id].utf8), scalars: tokens[id].unicodeScalars.count,
                                          previous: symbols.count - 1, next: symbols.count + 1))
                }
            } else if let unknown {
                if symbols.last?.id == unknown { continue }   // unknown tokens side by side fuse
                symbols.append(Symbol(id: unknown, bytes: Array(tokens[unknown].utf8), scalars: tokens[unknown].unicodeScalars.count,
                                      previous: symbols.count - 1, next: symbols.count + 1))
            }
        }
        guard symbols.count > 1 else { return symbols.map(\.id) }
        var heap = MinHeap<Candidate>()
        func consider(_ left: Int) {
            guard left >= 0, symbols[left].next < symbols.count else { return }
            let right = symbols[left].next
            guard let token = ids[symbols[left].bytes + symbols[right].bytes] else { return }
            heap.push(Candidate(token: token, leftScalars: symbols[left].scalars, position: left, left: symbols[left].id, right: symbols[right].id))
        }
        for i in 0..<(symbols.count - 1) { consider(i) }
        while let best = heap.pop() {
            let left = best.position, right = symbols[left].next
            guard symbols[left].alive, right < symbols.count, symbols[right].alive,
                  symbols[left].id == best.left, symbols[right].id == best.right else { continue }
            symbols[left].id = best.token
            symbols[left].bytes += symbols[right].bytes
            symbols[left].scalars += symbols[right].scalars
            symbols[left].next = symbols[right].next
            symbols[right].alive = false
            if symbols[left].next < symbols.count { symbols[symbols[left].next].previous = left }
            if symbols[left].previous >= 0 { consider(symbols[left].previous) }
            consider(left)
        }
        return symbols.filter(\.alive).map(\.id)
    }

    /// The text of `ids`, as transformers decodes them (special tokens kept): `▁` back to a space,
    /// runs of byte tokens back to their UTF-8 (U+FFFD for each byte of a run that is not valid
    /// UTF-8).
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for an id outside the vocabulary.
    public func decode(_ ids: [Int]) throws -> String {
        var text = "", bytes: [UInt8] = []
        func flush() {
            guard !bytes.isEmpty else { return }
            if let valid = String(validating: bytes, as: UTF8.self) { text += valid } else { text += String(repeating: "\u{FFFD}", count: bytes.count) }
            bytes.removeAll()
        }
        for id in ids {
            guard tokens.indices.contains(id) else {
                throw AttentionError.invalidArgument(argument: "ids", reason: "id \(id) is not in the vocabulary of \(tokens.count) tokens")
            }
            if let byte = byteValue(id) { bytes.append(byte); continue }
            flush()
            text += tokens[id].replacingOccurrences(of: "\u{2581}", with: " ")
        }
        flush()
        return text
    }

    /// The byte a `<0xNN>` token stands for.
    func byteValue(_ id: Int) -> UInt8? {
        let token = tokens[id]
        guard token.utf8.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"), let value = UInt8(token.dropFirst(3).dropLast(), radix: 16) else {
            return nil
        }
        return byteTokens[Int(value)] == id ? value : nil
    }

    /// Whether `id` is a control token (`<bos>`, `<start_of_turn>`, `<unused0>`).
    public func isControl(_ id: Int) -> Bool { control.contains(id) }
}

/// Byte strings with their ids, for the longest one starting at a position.
struct ByteTrie: Sendable {
    private var children: [[UInt8: Int]] = [[:]]
    private var terminal: [Int?] = [nil]

    init(_ entries: [([UInt8], Int)]) {
        for (bytes, id) in entries {
            var node = 0
            for byte in bytes {
                if let child = children[node][byte] {
                    node = child
                } else {
                    children.append([:])
                    terminal.append(nil)
                    children[node][byte] = children.count - 1
                    node = children.count - 1
                }
            }
            terminal[node] = id
        }
    }

    /// The longest entry that `bytes` has at `start`: its length and id.
    func longestMatch(in bytes: [UInt8], at start: Int) -> (length: Int, id: Int)? {
        var node = 0, best: (Int, Int)?
        var i = start
        while i < bytes.count, let child = children[node][bytes[i]] {
            node = child
            i += 1
            if let id = terminal[node] { best = (i - start, id) }
        }
        return best
    }
}

/// A binary min-heap.
struct MinHeap<Element: Comparable> {
    private var items: [Element] = []

    mutating func push(_ item: Element) {
        items.append(item)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i] < items[parent] else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        guard !items.isEmpty else { return first }
        items[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < items.count, items[l] < items[smallest] { smallest = l }
            if r < items.count, items[r] < items[smallest] { smallest = r }
            guard smallest != i else { break }
            items.swapAt(i, smallest)
            i = smallest
        }
        return first
    }
}
