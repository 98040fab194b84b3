import Attention
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

@Suite("SentencePiece BPE tokenizer")
struct SentencePieceBPETests {
    struct Fixture: Decodable {
        struct Case: Decodable { let text: String, ids: [Int], decoded: String }
        let bos: Int, eos: Int
        let cases: [Case]
    }

    @Test("Gemma 3's tokenizer from its GGUF file gives transformers' ids on awkward text, and decodes them as transformers does")
    func gemma3MatchesTransformers() throws {
        let file = try Gemma3FileTests.file.get()
        let tokenizer = try SentencePieceBPETokenizer(gguf: file)
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.root.appendingPathComponent("gemma3/tokenizer.json")))
        #expect(tokenizer.tokens.count == 262_144 && tokenizer.beginning == fixture.bos && tokenizer.end == fixture.eos && tokenizer.addsBeginning)
        for c in fixture.cases {
            #expect(tokenizer.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            #expect(try tokenizer.decode(c.ids) == c.decoded, "\(c.text.debugDescription)")
        }
        #expect(tokenizer.isControl(2) && !tokenizer.isControl(107))
        #expect(thrownError { try tokenizer.decode([262_144]) } == .invalidArgument("ids"))
    }

    /// A vocabulary small enough to work every merge out by hand.
    static func toy(added: [String: Int] = [:]) throws -> SentencePieceBPETokenizer {
        let tokens = ["<unk>", "<bos>", "a", "b", "\u{2581}", "ab", "aba", "ba", "<0x41>", "<0xC3>", "<0xA9>", "\u{2581}\u{2581}", "<x>", "<xy>"]
        return try SentencePieceBPETokenizer(tokens: tokens, addedTokens: added, beginning: 1, addsBeginning: false, end: nil, unknown: 0)
    }

    @Test("Merges take the earliest token of the vocabulary first, then the leftmost pair; spaces become ▁; scalars without a token fall back to bytes or one fused unknown")
    func mergeOrder() throws {
        let t = try Self.toy()
        // "aba": "ab" (id 5) is earlier than "ba" (7): a b a -> ab a -> aba.
        #expect(t.encode("aba") == [6])
        // "bab": b a b -> "ba" (7) only pair with a token at first ("ab" at 1..2 is also there: ab is 5 < 7, so b ab).
        #expect(t.encode("bab") == [3, 5])
        // Two spaces: ▁▁ is a token; a lone space is ▁.
        #expect(t.encode("a  b") == [2, 11, 3] && t.encode(" a") == [4, 2])
        // "é" has no token: its two UTF-8 bytes' tokens. "A" (0x41) has a byte token; "c" has neither: unknown, and two fuse.
        #expect(t.encode("é") == [9, 10] && t.encode("A") == [8] && t.encode("cc") == [0] && t.encode("acca") == [2, 0, 2])
        #expect(try t.decode([2, 11, 3, 9, 10, 8]) == "a  béA")
        // A lone byte that is not UTF-8 decodes to U+FFFD.
        #expect(try t.decode([2, 9]) == "a\u{FFFD}")
    }

    @Test("Added tokens are matched whole in the raw text, the leftmost first and of those the longest")
    func addedTokens() throws {
        let t = try Self.toy(added: ["<x>": 12, "<xy>": 13])
        #expect(t.encode("a<xy>b") == [2, 13, 3])
        #expect(t.encode("<x><xy") == [12, 0])   // "<xy" is not an added token: "<", "x", "y" are unknown, fused
        #expect(t.encode("ab <x>") == [5, 4, 12])
        #expect(thrownError { try SentencePieceBPETokenizer(tokens: ["a"], addedTokens: ["b": 3], beginning: nil, addsBeginning: false, end: nil, unknown: nil) }
                == .invalidFile("<vocabulary>"))
    }
}
