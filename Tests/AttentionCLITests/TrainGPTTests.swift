import ArgumentParser
import AttentionCLI
import AttentionTestSupport
import Foundation
import Testing

/// `attention train gpt` on a small text of its own (the Shakespeare download is exercised by the
/// README's command, not by the tests), then `attention generate` on what it wrote.
@Suite("attention train gpt")
struct TrainGPTTests {
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
