import Attention
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// Folders as transformers 5 saves them: one `tokenizer.json`, no `vocab.json`/`merges.txt` or
/// `vocab.txt`. Fixture: scripts/make-tokenizer-json-fixtures.py.
@Suite("tokenizer.json folders")
struct TokenizerJSONTests {
    struct Cases: Decodable { struct Case: Decodable { let text: String, ids: [Int] }; let cases: [Case] }
    static let gpt2 = Fixtures.root.appendingPathComponent("gpt2")
    static let saved = Fixtures.root.appendingPathComponent("gpt2-tokenizer-json")

    @Test("A GPT-2 tokenizer saved by transformers 5 as tokenizer.json gives transformers' ids, and the ids of vocab.json and merges.txt")
    func gpt2() throws {
        let json = try ByteLevelBPETokenizer(directory: Self.saved)
        let files = try ByteLevelBPETokenizer(directory: Self.gpt2)
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: Self.saved.appendingPathComponent("cases.json"))).cases
        #expect(cases.count == 7)
        for c in cases {
            #expect(json.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            #expect(files.encode(c.text) == c.ids, "\(c.text.debugDescription)")
        }
        #expect(json.vocabulary == files.vocabulary && json.specialTokens == files.specialTokens)
        #expect(ByteLevelBPETokenizer.isPresent(in: Self.saved) && ByteLevelBPETokenizer.isPresent(in: Self.gpt2))
    }

    @Test("MiniLM's tokenizer.json gives the ids of its vocab.txt, and a folder without vocab.txt embeds as the folder with it")
    func wordPiece() throws {
        let directory = ModelStore.defaultDirectory()
        try ModelStore.fetch(into: directory) { print($0) }
        let json = try WordPieceTokenizer(tokenizerJSON: directory.appendingPathComponent("tokenizer.json"))
        let file = try WordPieceTokenizer(vocabularyFile: directory.appendingPathComponent("vocab.txt"))
        #expect(json.lowercase && json.vocabulary == file.vocabulary)
        for text in ["The cat sat on the mat.", "Naïve CAFÉ, 東京 and 😀!", "  spaces\tand\nnewlines ", "unaffable tokenization"] {
            #expect(json.encode(text) == file.encode(text), "\(text.debugDescription)")
        }
        let folder = try TemporaryDirectory("tokenizer-json")
        for name in ["config.json", "model.safetensors", "tokenizer.json"] {
            try FileManager.default.createSymbolicLink(at: folder.file(name), withDestinationURL: directory.appendingPathComponent(name))
        }
        try ModelStore.check(folder.url)
        let sentences = ["A man is eating food.", "The weather is lovely today."]
        #expect(try SentenceEmbedder(directory: folder.url).embed(sentences) == SentenceEmbedder(directory: directory).embed(sentences))
    }

    @Test("A tokenizer.json of another model, or malformed, is refused by name")
    func refused() throws {
        let folder = try TemporaryDirectory("tokenizer-json-bad")
        func write(_ text: String) throws -> URL {
            let url = folder.file("tokenizer.json")
            try Data(text.utf8).write(to: url)
            return url
        }
        #expect(thrownError { try ByteLevelBPETokenizer(tokenizerJSON: write(#"{"model": {"type": "WordPiece", "vocab": {"a": 0}}}"#)) } == .invalidFile("tokenizer.json"))
        #expect(thrownError { try WordPieceTokenizer(tokenizerJSON: write(#"{"model": {"type": "WordPiece", "vocab": {"a": 0, "b": 2}}}"#)) } == .invalidFile("tokenizer.json"))
        #expect(thrownError { try ByteLevelBPETokenizer(tokenizerJSON: write(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}}"#)) } == .invalidFile("tokenizer.json"))
        #expect(thrownError { try ByteLevelBPETokenizer(tokenizerJSON: write("not json")) } == .invalidFile("tokenizer.json"))
        #expect(!ByteLevelBPETokenizer.isPresent(in: folder.url))
        // Ids at the integers' edges: refused by name, nothing allocated for them.
        for id in ["-1", "9223372036854775807", "-9223372036854775808"] {
            #expect(thrownError { try WordPieceTokenizer(tokenizerJSON: write(#"{"model": {"type": "WordPiece", "vocab": {"a": \#(id)}}}"#)) }
                    == .invalidFile("tokenizer.json"), "\(id)")
            #expect(thrownError { try ByteLevelBPETokenizer(tokenizerJSON: write(#"{"model": {"type": "BPE", "vocab": {"a": \#(id)}, "merges": []}}"#)) }
                    == .invalidFile("tokenizer.json"), "\(id)")
        }
    }
}
