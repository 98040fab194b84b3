import ArgumentParser
import AttentionCLI
import Attention
import AttentionTestSupport
import Foundation
import Testing

/// The experiment and heatmap commands end to end: they run, write well-formed files, reject bad options.
@Suite("attention experiment and heatmap")
struct ExperimentTests {
    let scratch: TemporaryDirectory
    var directory: URL { scratch.url }

    init() throws { scratch = try TemporaryDirectory("attention-exp") }

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
        for (arguments, flag) in [(["scaling", "--json", "--csv"], "--csv"), (["scaling", "--keys", "1"], "--keys"),
                                  (["patterns", "--window", "0"], "--window"), (["retrieval", "--trials", "0"], "--trials")] {
            let message = commandError { try run(["experiment"] + arguments) }
            #expect(message?.contains(flag) == true, "\(arguments): \(message ?? "no error")")
        }
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
        #expect(thrownError { try run(["heatmap", "--weights", w2.path, "--tokens", "a b c"]) } == .invalidArgument("--tokens"))
        #expect(thrownError { try run(["heatmap", "--weights", w4.path, "--head", "3"]) } == .invalidArgument("--head"))
    }
}
