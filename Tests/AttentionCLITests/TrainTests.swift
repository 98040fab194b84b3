import AttentionTestSupport
import ArgumentParser
import AttentionCLI
import Foundation
import Testing

/// `attention train` end to end on small settings: both modes run and write their pictures; bad options
/// are refused before any training.
@Suite("attention train")
struct TrainTests {
    let scratch: TemporaryDirectory
    var directory: URL { scratch.url }

    init() throws { scratch = try TemporaryDirectory("attention-train") }

    func run(_ arguments: [String]) throws {
        var command = try AttentionCommand.parseAsRoot(["train"] + arguments)
        try command.run()
    }

    @Test("Recall vs length and the scale comparison each write an SVG", arguments: [
        ["--lengths", "4,8", "--steps", "12", "--embed-dimension", "8"],
        ["--no-scale", "--lengths", "8", "--steps", "12", "--head-dimension", "32", "--embed-dimension", "8"],
    ])
    func svg(_ arguments: [String]) throws {
        let file = directory.appendingPathComponent("train.svg").path
        try run(arguments + ["--svg", file, "--csv"])
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.hasPrefix("<?xml") && text.hasSuffix("</svg>\n"))
        #expect(text.contains("<polyline"))
    }

    @Test("Progress goes to stderr, and --quiet turns it off")
    func quiet() throws {
        let arguments = ["train", "--lengths", "8", "--steps", "12", "--embed-dimension", "8", "--models", "attention"]
        let loud = try ExitStatusTests.run(arguments)
        #expect(loud.status == 0 && loud.error.contains("trained attention in"), "\(loud.error)")
        let quiet = try ExitStatusTests.run(arguments + ["--quiet"])
        #expect(quiet.status == 0 && quiet.error.isEmpty, "\(quiet.error)")
        #expect(quiet.output.count > 100)
    }

    @Test("Options are validated", arguments: [
        ["--lengths", "8,300"], ["--lengths", "0"], ["--lengths", "eight"], ["--models", "attention,lstm"],
        ["--steps", "0"], ["--heads", "0"], ["--learning-rate", "-1"], ["--json", "--csv"],
    ])
    func validation(_ arguments: [String]) {
        let message = commandError { _ = try AttentionCommand.parseAsRoot(["train"] + arguments) }
        #expect(message?.contains(arguments[0]) == true, "\(message ?? "no error")")
    }
}
