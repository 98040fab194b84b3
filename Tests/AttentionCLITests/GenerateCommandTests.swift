import AttentionTestSupport
import ArgumentParser
import AttentionCLI
import Foundation
import Testing

/// `attention generate` on the small GPT-2 of Tests/Fixtures/gpt2 (its tokens are checked against
/// transformers in AttentionModelsTests): it runs, refuses bad options, and streams whole characters.
@Suite("attention generate")
struct GenerateCommandTests {
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

/// `attention train gpt` on a small text of its own (the Shakespeare download is exercised by the
/// README's command, not by the tests), then `attention generate` on what it wrote.
@Suite("attention train gpt")
struct TrainGPTCommandTests {
    /// A folder for this test's files, removed when the test ends.
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory("train-gpt") }

    @Test("Trains on a text file, writes a model folder that generate reads and an SVG")
    func trainsAndGenerates() throws {
        let folder = scratch.url
        let text = folder.appendingPathComponent("text.txt")
        try String(repeating: "ROMEO. But soft, what light through yonder window breaks?\nJULIET. Ay me!\n", count: 40)
            .write(to: text, atomically: true, encoding: .utf8)
        let model = folder.appendingPathComponent("model").path, svg = folder.appendingPathComponent("loss.svg").path
        var train = try AttentionCommand.parseAsRoot([
            "train", "gpt", "--text", text.path, "--output", model, "--steps", "4", "--layers", "1", "--heads", "2", "--width", "16",
            "--context", "16", "--batch-size", "2", "--vocab-size", "300", "--svg", svg, "--json"])
        try train.run()
        for file in ["config.json", "model.safetensors", "vocab.json", "merges.txt", "training.json"] {
            #expect(FileManager.default.fileExists(atPath: model + "/" + file), "\(file)")
        }
        #expect(try String(contentsOfFile: svg, encoding: .utf8).contains("<polyline"))
        var generate = try AttentionCommand.parseAsRoot(["generate", "--model-dir", model, "ROMEO.", "--max-tokens", "5", "--json"])
        try generate.run()
    }

    @Test("Options are validated", arguments: [
        ["--steps", "0"], ["--width", "30", "--heads", "4"], ["--context", "1"], ["--vocab-size", "100"], ["--learning-rate", "-1"],
        ["--batch-size", "0"],
    ])
    func validation(_ options: [String]) {
        let message = commandError { _ = try AttentionCommand.parseAsRoot(["train", "gpt", "--output", "/tmp/x"] + options) }
        #expect(message?.contains(options[0]) == true, "\(message ?? "no error")")
    }

    @Test("A text file that cannot be read is refused, naming it")
    func unreadableText() throws {
        var command = try AttentionCommand.parseAsRoot(["train", "gpt", "--text", "/nonexistent/plays.txt", "--output", "/tmp/never-written"])
        #expect { try command.run() } throws: { "\($0)".contains("/nonexistent/plays.txt") }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never-written"))
    }
}
