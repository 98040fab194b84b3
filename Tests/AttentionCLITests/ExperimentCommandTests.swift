import ArgumentParser
import AttentionCLI
import Attention
import Foundation
import Testing

/// The experiment and heatmap commands end to end: they run, write well-formed files, reject bad options.
@Suite("attention experiment and heatmap")
struct ExperimentCommandTests {
    let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("attention-exp-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    func run(_ arguments: [String]) throws {
        var command = try AttentionCommand.parseAsRoot(arguments)
        try command.run()
    }

    @Test("Each experiment writes an SVG", arguments: [
        ["experiment", "scaling", "--trials", "20"], ["experiment", "patterns"], ["experiment", "heads"],
        ["experiment", "retrieval", "--trials", "5"], ["experiment", "cross"],
    ])
    func svg(_ arguments: [String]) throws {
        let file = directory.appendingPathComponent("\(arguments[1]).svg").path
        try run(arguments + ["--svg", file, "--csv"])
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.hasPrefix("<?xml") && text.hasSuffix("</svg>\n"))
    }

    @Test("Options are validated")
    func validation() {
        #expect(throws: (any Error).self) { try run(["experiment", "scaling", "--json", "--csv"]) }
        #expect(throws: (any Error).self) { try run(["experiment", "scaling", "--keys", "1"]) }
        #expect(throws: (any Error).self) { try run(["experiment", "patterns", "--window", "0"]) }
        #expect(throws: (any Error).self) { try run(["experiment", "retrieval", "--trials", "0"]) }
    }

    @Test("heatmap draws 2-D and 4-D weights, with tokens, and rejects mismatched tokens")
    func heatmap() throws {
        let w2 = directory.appendingPathComponent("w2.npy"), w4 = directory.appendingPathComponent("w4.npy")
        try NPY.write(try Tensor<Float>([[0.5, 0.5], [0.1, 0.9]]), to: w2)
        try NPY.write(try Tensor<Double>.randomUniform(shape: [2, 3, 2, 2], seed: 1), to: w4)
        let svg = directory.appendingPathComponent("h.svg").path
        try run(["heatmap", "--weights", w2.path, "--tokens", "a b", "--svg", svg])
        #expect(try String(contentsOfFile: svg, encoding: .utf8).components(separatedBy: "class=\"cell\"").count - 1 == 4)
        try run(["heatmap", "--weights", w4.path, "--batch", "1", "--head", "2"])
        #expect(throws: AttentionError.self) { try run(["heatmap", "--weights", w2.path, "--tokens", "a b c"]) }
        #expect(throws: AttentionError.self) { try run(["heatmap", "--weights", w4.path, "--head", "3"]) }
    }
}
