import Attention
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// `attention embed --input` and `attention similarity --input`: a corpus file embedded in batches
/// sorted by length gives, row for row in file order, what embedding each line alone gives; files
/// that cannot be read are refused with the file and the line named. The model is installed the way
/// a user installs it if it is not there yet; these tests never skip.
@Suite("embed and similarity over a corpus file", .serialized)
struct CorpusTests {
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory("embed-corpus") }

    static let model: Result<SentenceEmbedder, Error> = Result {
        let directory = ModelStore.defaultDirectory()
        try ModelStore.fetch(into: directory) { print($0) }
        return try SentenceEmbedder(directory: directory)
    }

    /// Lines of many lengths (so that sorting reorders them), an empty one and one over the model's
    /// 256-token limit.
    static let lines: [String] = (0..<23).map { i in
        String(repeating: "the cat number \(i) sat on a mat ", count: 1 + (i * 7) % 5)
    } + ["", "Stock markets fell sharply today.", String(repeating: "word ", count: 300), "A dog lay on the rug"]

    func maxDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? .infinity }

    @Test("Rows of --output .npy are the file's lines in order, each as embedding it alone gives (CRLF endings, an empty line, a cut line)")
    func npyInFileOrder() throws {
        let model = try Self.model.get()
        let input = scratch.file("lines.txt"), output = scratch.file("lines.npy")
        // Windows line endings on every other line; a final newline ends the last line.
        let text = Self.lines.enumerated().map { $0.element + ($0.offset % 2 == 0 ? "\r\n" : "\n") }.joined()
        try Data(text.utf8).write(to: input)
        let r = try ExitStatusTests.run(["embed", "--input", input.path, "--output", output.path, "--batch-size", "5"])
        #expect(r.status == 0, "\(r.error)")
        #expect(r.error.contains("1 text(s) longer than 256 tokens were cut to 256 (line 26)"), "\(r.error)")
        #expect(r.error.contains("1 empty line(s) embedded as the empty text"), "\(r.error)")
        let written = try NPY.read(contentsOf: output).floatingPoint(path: output.path) as Tensor<Float>
        #expect(written.shape == [Self.lines.count, 384])
        for (row, line) in Self.lines.enumerated() {
            let alone = try model.embed([line])[0]
            let got = Array(written.scalars[(row * 384)..<((row + 1) * 384)])
            #expect(maxDifference(got, alone) < 1e-5, "line \(row + 1): \(maxDifference(got, alone))")
        }
    }

    @Test("A JSON Lines file's field is the text; --output .jsonl holds each text with its vector, in order")
    func jsonLines() throws {
        let model = try Self.model.get()
        let input = scratch.file("records.jsonl"), output = scratch.file("out.jsonl")
        let texts = ["A cat sat on the mat", "Ein Hund lag auf dem Teppich", "東京は大きい 🙂", "x"]
        struct Record: Codable { let id: Int, body: String }
        let encoder = JSONEncoder()
        try Data(texts.enumerated().map { String(decoding: try encoder.encode(Record(id: $0.offset, body: $0.element)), as: UTF8.self) }
            .joined(separator: "\n").utf8).write(to: input)
        let r = try ExitStatusTests.run(["embed", "--input", input.path, "--field", "body", "--output", output.path, "--quiet"])
        #expect(r.status == 0, "\(r.error)")
        #expect(r.error.isEmpty, "--quiet: \(r.error)")
        struct Embedded: Decodable { let text: String, embedding: [Float] }
        let rows = try String(decoding: Data(contentsOf: output), as: UTF8.self).split(separator: "\n")
            .map { try JSONDecoder().decode(Embedded.self, from: Data($0.utf8)) }
        #expect(rows.map(\.text) == texts)
        let alone = try model.embed(texts)
        for (row, vector) in zip(rows, alone) { #expect(maxDifference(row.embedding, vector) < 1e-5, "\(row.text)") }
    }

    @Test("similarity --input --query ranks the lines by cosine, best first, with their line numbers")
    func ranking() throws {
        let model = try Self.model.get()
        let input = scratch.file("lines.txt")
        try Data(Self.lines.joined(separator: "\n").utf8).write(to: input)
        let query = "Stock markets fell sharply today."
        let r = try ExitStatusTests.run(["similarity", "--input", input.path, "--query", query, "--top", "3", "--json", "--quiet"])
        #expect(r.status == 0, "\(r.error)")
        struct Match: Decodable { let line: Int, text: String, cosine: Double }
        let matches = try JSONDecoder().decode([Match].self, from: Data(r.output.utf8))
        let target = try model.embed([query])[0]
        let expected = try Self.lines.enumerated()
            .map { (line: $0.offset + 1, cosine: try cosineSimilarity(target, try model.embed([$0.element])[0])) }
            .sorted { $0.cosine > $1.cosine }.prefix(3)
        #expect(matches.count == 3)
        #expect(matches.map(\.line) == expected.map(\.line))
        #expect(matches.first?.text == query && abs((matches.first?.cosine ?? 0) - 1) < 1e-5)
        for (m, e) in zip(matches, expected) { #expect(abs(m.cosine - e.cosine) < 1e-5) }
    }

    @Test("Bad corpus files and flags are refused, naming the flag, the file and the line", arguments: [
        ("missing", ["--input", "MISSING"], 66, "--input MISSING: no such file"),
        ("latin-1", ["--input", "latin1.txt"], 65, "latin1.txt line 2: is not UTF-8 text"),
        ("empty", ["--input", "empty.txt"], 65, "empty.txt: has no lines"),
        ("not JSON", ["--input", "bad.jsonl"], 65, "bad.jsonl line 2: is not JSON"),
        ("not an object", ["--input", "array.jsonl"], 65, "array.jsonl line 1: is not a JSON object"),
        ("no field", ["--input", "records.jsonl", "--field", "title"], 65, "records.jsonl line 1: has no field \"title\""),
        ("not a string", ["--input", "number.jsonl"], 65, "number.jsonl line 1: has a field \"text\" that is not a string"),
        ("blank record", ["--input", "blank.jsonl"], 65, "blank.jsonl line 2: is blank"),
        ("output type", ["--input", "records.jsonl", "--output", "out.csv"], 64, "--output"),
        ("both", ["--input", "records.jsonl", "a sentence"], 64, "not both"),
        ("batch size", ["--input", "records.jsonl", "--batch-size", "0"], 64, "--batch-size"),
    ])
    func refused(_ name: String, _ arguments: [String], _ status: Int32, _ message: String) throws {
        try Data([0x61, 0x0A, 0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: scratch.file("latin1.txt"))   // "caf\xE9"
        try Data().write(to: scratch.file("empty.txt"))
        try Data("{\"text\": \"a\"}\n{\"text\": \n".utf8).write(to: scratch.file("bad.jsonl"))
        try Data("[\"a\"]\n".utf8).write(to: scratch.file("array.jsonl"))
        try Data("{\"text\": \"a\"}\n{\"text\": \"b\"}\n".utf8).write(to: scratch.file("records.jsonl"))
        try Data("{\"text\": 3}\n".utf8).write(to: scratch.file("number.jsonl"))
        try Data("{\"text\": \"a\"}\n  \n{\"text\": \"b\"}\n".utf8).write(to: scratch.file("blank.jsonl"))
        let resolved = arguments.map { ["MISSING", "a sentence", "0", "title"].contains($0) || $0.hasPrefix("--") ? $0 : scratch.file($0).path }
        let output = scratch.file("never.npy")
        let r = try ExitStatusTests.run(["embed"] + resolved + (arguments.contains("--output") ? [] : ["--output", output.path]))
        #expect(r.status == status, "\(name): \(r.error)")
        #expect(r.error.contains(message), "\(name): \(r.error)")
        #expect(!FileManager.default.fileExists(atPath: output.path), "\(name): nothing is written")
        // The file errors (only --input and --field given) are similarity's too.
        if status == 65 || status == 66 {
            let similar = try ExitStatusTests.run(["similarity", "--query", "x"] + resolved)
            #expect(similar.status == status && similar.error.contains(message), "similarity \(name): \(similar.error)")
        }
    }
}
