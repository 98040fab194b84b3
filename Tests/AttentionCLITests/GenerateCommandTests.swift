import ArgumentParser
import AttentionCLI
import AttentionTestSupport
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
