import Attention
import Foundation

extension ByteLevelBPETokenizer {
    /// Learns a byte-level BPE vocabulary on `texts`, as Hugging Face's `ByteLevelBPETokenizer`
    /// trains one: the texts are pre-tokenized with GPT-2's pattern, every piece starts as its bytes,
    /// and the most frequent adjacent pair (over all pieces, weighted by how often each occurs) is
    /// merged into a new token, again and again, until the vocabulary has `vocabularySize` tokens
    /// (256 bytes, the merges, and `<|endoftext|>` last) or no pair occurs `minimumFrequency` times.
    /// Ties go to the pair of older tokens, so the result depends on the texts alone.
    ///
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` if `vocabularySize` is below
    ///   257 or above 2^20, or `minimumFrequency` below 1.
    public static func train(
        on texts: [String], vocabularySize: Int, minimumFrequency: Int = 2, progress: (Int) -> Void = { _ in }
    ) throws -> ByteLevelBPETokenizer {
        guard (257...(1 << 20)).contains(vocabularySize) else {
            throw AttentionError.invalidArgument(argument: "vocabularySize", reason: "must be in 257...\(1 << 20) (256 bytes and <|endoftext|> at least), got \(vocabularySize)")
        }
        guard minimumFrequency >= 1 else {
            throw AttentionError.invalidArgument(argument: "minimumFrequency", reason: "must be at least 1, got \(minimumFrequency)")
        }
        // Distinct pieces with their counts, as byte-token sequences.
        var counts: [Substring: Int] = [:]
        for text in texts {
            for piece in pretokenize(text[...]) { counts[piece, default: 0] += 1 }
        }
        let pieces = counts.sorted { $0.key < $1.key }
        var words = pieces.map { $0.key.utf8.map { Int32($0) } }
        let frequency = pieces.map(\.value)

        var tokens = (0...255).map { String(byteToCharacter[$0]) }
        var merges: [(String, String)] = []
        func key(_ a: Int32, _ b: Int32) -> Int64 { Int64(a) << 32 | Int64(b) }
        var pairCounts: [Int64: Int] = [:]
        var wordsWithPair: [Int64: [Int]] = [:]
        for (w, word) in words.enumerated() where word.count > 1 {
            for i in 0..<(word.count - 1) {
                let k = key(word[i], word[i + 1])
                pairCounts[k, default: 0] += frequency[w]
                wordsWithPair[k, default: []].append(w)
            }
        }
        while tokens.count < vocabularySize - 1 {
            var best: (key: Int64, count: Int)?
            for (k, count) in pairCounts where count > (best?.count ?? 0) || (count == best?.count && k < best!.key) {
                best = (k, count)
            }
            guard let best, best.count >= minimumFrequency else { break }
            let (left, right) = (Int32(best.key >> 32), Int32(truncatingIfNeeded: best.key))
            let merged = Int32(tokens.count)
            tokens.append(tokens[Int(left)] + tokens[Int(right)])
            merges.append((tokens[Int(left)], tokens[Int(right)]))
            var seen = Set<Int>()
            for w in wordsWithPair[best.key] ?? [] where seen.insert(w).inserted {
                let old = words[w]
                var new: [Int32] = []
                new.reserveCapacity(old.count)
                var i = 0, changed = false
                while i < old.count {
                    if i + 1 < old.count, old[i] == left, old[i + 1] == right {
                        new.append(merged)
                        i += 2
                        changed = true
                    } else {
                        new.append(old[i])
                        i += 1
                    }
                }
                guard changed else { continue }
                // Take the word's old pairs out and put its new ones in.
                for j in 0..<(old.count - 1) {
                    let k = key(old[j], old[j + 1])
                    pairCounts[k, default: 0] -= frequency[w]
                    if pairCounts[k] == 0 { pairCounts[k] = nil }
                }
                if new.count > 1 {
                    for j in 0..<(new.count - 1) {
                        let k = key(new[j], new[j + 1])
                        pairCounts[k, default: 0] += frequency[w]
                        if new[j] == merged || new[j + 1] == merged { wordsWithPair[k, default: []].append(w) }
                    }
                }
                words[w] = new
            }
            pairCounts[best.key] = nil
            wordsWithPair[best.key] = nil
            progress(merges.count)
        }
        var vocabulary: [String: Int] = [:]
        for (id, token) in tokens.enumerated() { vocabulary[token] = id }
        vocabulary["<|endoftext|>"] = tokens.count
        return try ByteLevelBPETokenizer(vocabulary: vocabulary, merges: merges)
    }

    /// The merges in rank order, `(left, right)`.
    public var merges: [(String, String)] {
        rankedMerges
    }

    /// Writes `vocab.json` and `merges.txt` into `directory` in GPT-2's format (what transformers'
    /// `GPT2TokenizerFast.from_pretrained` reads), each file atomically.
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let vocabularyURL = directory.appendingPathComponent("vocab.json"), mergesURL = directory.appendingPathComponent("merges.txt")
        let json = try JSONSerialization.data(withJSONObject: vocabulary, options: [.sortedKeys, .withoutEscapingSlashes])
        let text = (["#version: 0.2"] + merges.map { "\($0) \($1)" }).joined(separator: "\n") + "\n"
        for (url, data) in [(vocabularyURL, json), (mergesURL, Data(text.utf8))] {
            do {
                try data.write(to: url, options: .atomic)
            } catch {
                throw AttentionError.invalidFile(path: url.path, reason: "cannot be written (\(error.localizedDescription))")
            }
        }
    }
}
