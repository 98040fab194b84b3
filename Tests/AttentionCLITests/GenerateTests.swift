import ArgumentParser
import AttentionCLI
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// `attention generate` on the small GPT-2 of Tests/Fixtures/gpt2 (its tokens are checked against
/// transformers in AttentionModelsTests): it runs, refuses bad options, and streams whole characters.
@Suite("attention generate")
struct GenerateTests {
    /// A folder for this test's files, removed when the test ends.
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory("generate") }

    static let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gpt2").path

    @Test("Runs with the cache, without it, sampling and with a float16 cache", arguments: [
        ["--greedy", "--json"], ["--greedy", "--no-cache", "--json"], ["--temperature", "0.8", "--top-k", "20", "--top-p", "0.9", "--json"],
        ["--kv-dtype", "float16", "--json"], ["--greedy", "--no-stop", "--json"],
    ])
    func runs(_ options: [String]) throws {
        var command = try AttentionCommand.parseAsRoot(["generate", "--model-dir", Self.model, "The cat", "--max-tokens", "5"] + options)
        try command.run()
    }

    @Test("Options are validated", arguments: [
        ["--max-tokens", "-1"], ["--temperature", "-0.5"], ["--temperature", "nan"], ["--top-k", "0"], ["--top-p", "0"],
        ["--top-p", "1.5"], ["--kv-dtype", "int8"],
    ])
    func validation(_ options: [String]) {
        let message = commandError { _ = try AttentionCommand.parseAsRoot(["generate", "--model-dir", Self.model, "x"] + options) }
        #expect(message?.contains(options[0]) == true, "\(message ?? "no error")")
    }

    @Test("explain reads a GPT-2 folder: causal maps for one head and for every head")
    func explain() throws {
        for options in [["--layer", "2", "--head", "3"], ["--all", "--svg", scratch.file("gpt.svg").path]] {
            var command = try AttentionCommand.parseAsRoot(["explain", "--model-dir", Self.model, "The cat sat on the mat"] + options)
            try command.run()
        }
        var tooFar = try AttentionCommand.parseAsRoot(["explain", "--model-dir", Self.model, "The cat", "--layer", "3"])
        #expect(commandError { try tooFar.run() }?.contains("--layer must be 1...2") == true)
    }

    @Test("chat answers messages from standard input or --input, keeping the conversation in the cache; bad options are refused")
    func chat() throws {
        let directory = SmolLM2Store.defaultDirectory()
        try SmolLM2Store.fetch(into: directory) { print($0) }
        let model = SmolLM2Store.file(in: directory).path
        let questions = "What is the capital of France?\n\nAnd of Italy?\n/reset\nWhat is the capital of France?\n/quit\nnot read\n"
        // Float products: with int8 ones this small model's answer (like llama.cpp's on the same file)
        // begins "L'Étoile, la ..." instead of naming Paris.
        let piped = try ExitStatusTests.run(["chat", "--model", model, "--greedy", "--max-tokens", "16", "--precision", "float32"], input: questions)
        #expect(piped.status == 0, "\(piped.error)")
        // A transcript: each message, then its answer; the same question after /reset, the same answer.
        let lines = piped.output.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("> ") } == ["> What is the capital of France?", "> And of Italy?", "> /reset", "> What is the capital of France?", "> /quit"])
        let answers = lines.enumerated().filter { $0.offset > 0 && lines[$0.offset - 1] == "> What is the capital of France?" }.map(\.element)
        #expect(answers.count == 2 && answers[0] == answers[1] && answers[0].contains("Paris"), "\(piped.output)")
        let notes = piped.error.split(separator: "\n").filter { $0.contains("read from the cache") }
        #expect(notes.count == 3 && notes[0].contains(" 0 read from the cache") && !notes[1].contains(" 0 read from the cache"), "\(piped.error)")
        #expect(piped.error.contains("(the conversation starts over)"))
        // --input: the same transcript from a file.
        let file = scratch.file("questions.txt")
        try Data(questions.utf8).write(to: file)
        let fromFile = try ExitStatusTests.run(["chat", "--model", model, "--greedy", "--max-tokens", "16", "--precision", "float32", "--input", file.path])
        #expect(fromFile.status == 0 && fromFile.output == piped.output, "\(fromFile.error)")
        // Too small a context: said, and the loop goes on to the next message (here, none).
        let small = try ExitStatusTests.run(["chat", "--model", model, "--context", "8"], input: "Hello there\n")
        #expect(small.status == 0 && small.error.contains("more than --context 8 holds: /reset starts over"), "\(small.error)")
        for (options, message) in [(["--context", "1"], "--context must be at least 2"), (["--top-p", "0"], "--top-p must be in (0, 1]"),
                                   (["--context", "9000"], "--context must be at most the model's 8192 positions"),
                                   (["--input", "/nonexistent/q.txt"], "--input /nonexistent/q.txt: no such file")] {
            let r = try ExitStatusTests.run(["chat", "--model", model] + options, input: "")
            #expect(r.status != 0 && r.error.contains(message), "\(options): \(r.error)")
        }
    }

    @Test("explain --model FILE.gguf shows SmolLM2's causal maps and which query heads share a key/value head")
    func explainGGUF() throws {
        let directory = SmolLM2Store.defaultDirectory()
        try SmolLM2Store.fetch(into: directory) { print($0) }
        let model = SmolLM2Store.file(in: directory).path
        let r = try ExitStatusTests.run(["explain", "--model", model, "The cat sat on the mat", "--layer", "30", "--head", "5", "--json"])
        #expect(r.status == 0, "\(r.error)")
        struct Map: Decodable { let tokens: [String], layer: Int, head: Int?, keyValueHeads: [Int]?, weights: [[Double]] }
        let map = try JSONDecoder().decode(Map.self, from: Data(r.output.utf8))
        #expect(map.tokens.count == 6 && map.layer == 30 && map.head == 5 && map.keyValueHeads == [1, 1, 1, 2, 2, 2, 3, 3, 3])
        for (i, row) in map.weights.enumerated() {
            #expect(abs(row.reduce(0, +) - 1) < 1e-5 && row[(i + 1)...].allSatisfy { $0 == 0 }, "row \(i)")
        }
        let text = try ExitStatusTests.run(["explain", "--model", model, "The cat sat", "--layer", "2", "--head", "5", "--svg", scratch.file("l.svg").path])
        #expect(text.status == 0 && text.output.hasPrefix("Layer 2, head 5 (reads key/value head 2, shared with heads 4 and 6):"), "\(text.output)")
        let all = try ExitStatusTests.run(["explain", "--model", model, "The cat sat", "--all"])
        #expect(all.output.hasPrefix("Layer 1, mean over its 9 heads (heads 1-3 read key/value head 1, heads 4-6 read key/value head 2, heads 7-9 read key/value head 3):"))
        let bad = try ExitStatusTests.run(["explain", "--model", model, "The cat", "--head", "10"])
        #expect(bad.status != 0 && bad.error.contains("--head 1...9"), "\(bad.error)")
        let both = try ExitStatusTests.run(["explain", "--model", model, "--model-dir", "d", "The cat"])
        #expect(both.status == 64 && both.error.contains("give --model-dir or --model, not both"))
    }

    @Test("A GPT-2 folder as transformers 5 saves it (tokenizer.json, no vocab.json or merges.txt) generates what the older folder does")
    func tokenizerJSONFolder() throws {
        let fixtures = URL(fileURLWithPath: Self.model).deletingLastPathComponent()
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.createSymbolicLink(at: scratch.file(name), withDestinationURL: fixtures.appendingPathComponent("gpt2/\(name)"))
        }
        try FileManager.default.createSymbolicLink(at: scratch.file("tokenizer.json"), withDestinationURL: fixtures.appendingPathComponent("gpt2-tokenizer-json/tokenizer.json"))
        let arguments = ["The cat sat", "--max-tokens", "6", "--greedy", "--json"]
        let saved = try ExitStatusTests.run(["generate", "--model-dir", scratch.url.path] + arguments)
        let older = try ExitStatusTests.run(["generate", "--model-dir", Self.model] + arguments)
        #expect(saved.status == 0, "\(saved.error)")
        func ids(_ output: String) throws -> [Int] {
            let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
            return (object?["promptIds"] as? [Int] ?? []) + (object?["generatedIds"] as? [Int] ?? [])
        }
        #expect(try ids(saved.output) == ids(older.output) && !ids(older.output).isEmpty)
    }

    @Test("A folder without the model's files is refused, naming what is missing")
    func missingFiles() throws {
        var command = try AttentionCommand.parseAsRoot(["generate", "--model-dir", "/nonexistent/gpt2", "x"])
        #expect { try command.run() } throws: { "\($0)".contains("vocab.json") && "\($0)".contains("merges.txt") }
    }

    @Test("Streaming passes on only whole UTF-8 characters, however the bytes are cut")
    func utf8Stream() {
        let text = "Café 🙂 東京 ok"
        let bytes = Array(text.utf8)
        for cut in 1..<bytes.count {
            var chunks: [String] = []
            var stream = UTF8Stream { chunks.append($0) }
            stream.write(Array(bytes[..<cut]))
            stream.write(Array(bytes[cut...]))
            stream.finish()
            #expect(chunks.joined() == text, "cut at byte \(cut)")
            #expect(!chunks.joined().contains("\u{FFFD}"))
        }
        var chunks: [String] = []
        var stream = UTF8Stream { chunks.append($0) }
        for byte in bytes { stream.write([byte]) }
        #expect(chunks.joined() == text)
        stream.write([0xE6, 0x9D])      // an unfinished character at the end
        stream.finish()
        #expect(chunks.joined() == text + "\u{FFFD}")
    }
}
