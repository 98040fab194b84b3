import ArgumentParser
import Attention
import AttentionTestSupport
import AttentionCLI
import AttentionRendering
import Foundation
import Testing

/// Inputs a hostile or careless user gives: each is refused with a clear error, or drawn, never a trap.
/// The committed fuzz seeds (Fuzz/corpus, hostile cases among them) replay here on every test run.
@Suite("Hostile input")
struct HostileInputTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")

    static func seeds(_ target: String) throws -> [(name: String, data: Data)] {
        let folder = corpus.appendingPathComponent(target)
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted().map {
            ($0, try Data(contentsOf: folder.appendingPathComponent($0)))
        }
    }

    @Test("A weight of 1e19 (or -1e300, NaN) gets a shade: the conversion to a bin is clamped first")
    func hugeWeights() throws {
        #expect(TerminalRenderer.shade(1e19) == "█")
        #expect(TerminalRenderer.shade(-1e300) == " ")
        #expect(TerminalRenderer.shade(.nan) == " ")
        #expect(TerminalRenderer.shade(.infinity) == "█")
        let drawing = try HeatmapDrawing(npy: NPY.encode(try Tensor<Double>([[0.5, 1e19], [.nan, -1e300]])), path: "w.npy")
        #expect(drawing.terminal(style: .plain).contains("▒▒▒ ███\n"))
        #expect(drawing.terminal(style: TerminalStyle(color: true)).contains("\u{1B}["))
        #expect(drawing.svg(title: "w").hasSuffix("</svg>\n"))
    }

    @Test("Found by fuzzing: an empty slice of 2e14 columns is refused, not labelled column by column")
    func emptyRowsHugeColumns() throws {
        let data = try Data(contentsOf: Self.corpus.appendingPathComponent("heatmap/crash-empty-rows-huge-columns"))
        #expect(throws: AttentionError.invalidShape(argument: "--weights", shape: [0, 204_294_967_296_807],
                                                    reason: "a heatmap shows at most 4096 queries and keys; this one is 0 × 204294967296807")) {
            try HeatmapDrawing(npy: data, path: "w.npy")
        }
    }

    @Test("Found by fuzzing in CI: [0, 2e10, 2e10] weights hold nothing; their strides overflowed")
    func emptyOverflowingStrides() throws {
        let data = try Data(contentsOf: Self.corpus.appendingPathComponent("heatmap/crash-empty-3d-overflowing-strides"))
        #expect(throws: AttentionError.invalidArgument(argument: "--head", reason: "must be in 0..<0 for the weights of shape [0, 20429496729, 20429496729], got 0")) {
            try HeatmapDrawing(npy: data, path: "w.npy")
        }
        let empty = try Tensor<Float>(shape: [0, 1 << 40, 1 << 40], scalars: [])
        #expect(empty.count == 0 && empty.strides.count == 3)
        #expect(try Tensor<Float>(shape: [1 << 40, 1 << 40, 0], scalars: []).count == 0)
    }

    @Test("Every heatmap seed draws or throws an AttentionError")
    func heatmapSeeds() throws {
        let seeds = try Self.seeds("heatmap")
        #expect(seeds.count >= 5)
        var drawn = 0
        for seed in seeds {
            do {
                let drawing = try HeatmapDrawing(npy: seed.data, path: seed.name)
                _ = drawing.terminal(style: .plain) + drawing.svg(title: seed.name)
                drawn += 1
            } catch is AttentionError {}
        }
        #expect(drawn >= 3)
    }

    @Test("Every .npy seed decodes, re-encodes to the same bits, or throws an AttentionError naming the data")
    func npySeeds() throws {
        for seed in try Self.seeds("npy") {
            do {
                let array = try NPY.decode(seed.data, path: seed.name)
                if case .float32(let t) = array {
                    guard case .float32(let again) = try NPY.decode(NPY.encode(t)) else { Issue.record("\(seed.name): dtype changed"); continue }
                    #expect(again.shape == t.shape && again.scalars.map(\.bitPattern) == t.scalars.map(\.bitPattern), "\(seed.name)")
                }
            } catch let error as AttentionError {
                guard case .invalidFile(let path, _) = error else { Issue.record("\(seed.name): \(error)"); continue }
                #expect(path == seed.name)
            }
        }
    }

    @Test("A shape whose byte count overflows is refused by a message that does not redo the product")
    func safetensorsOverflow() throws {
        let data = try Data(contentsOf: Self.corpus.appendingPathComponent("safetensors/huge-shape"))
        #expect(throws: AttentionError.invalidFile(path: "x.safetensors", reason: "tensor 'x': shape [4611686018427387904] of F32 needs more than \(Int.max) bytes, its range holds 0")) {
            try SafeTensors(data: data, path: "x.safetensors")
        }
        for seed in try Self.seeds("safetensors") {
            do {
                let file = try SafeTensors(data: seed.data, path: seed.name)
                // Reading a tensor may fail (the seeds are hostile), only as an error about the file.
                for name in file.entries.keys {
                    if let error = thrownError({ try file.tensor(name) }) { #expect(error == .invalidFile(seed.name), "\(seed.name) \(name)") }
                }
            } catch let error as AttentionError {
                guard case .invalidFile(let path, _) = error else { Issue.record("\(seed.name): \(error)"); continue }
                #expect(path == seed.name)
            }
        }
    }

    @Test("Every GGUF seed parses (and its tensors convert or are refused by name) or throws an error naming the data")
    func ggufSeeds() throws {
        let valid: Set = ["alignment-64", "every-tensor", "every-value", "fixture", "version-2"]
        var parsed: Set<String> = []
        for seed in try Self.seeds("gguf") {
            do {
                let file = try GGUF(data: seed.data, path: seed.name)
                if !seed.name.hasPrefix("found-") { parsed.insert(seed.name) }
                for entry in file.tensors {
                    if let error = thrownError({ try file.tensor(entry.name) }) {
                        #expect(error == .invalidFile(seed.name) && !entry.type.isConvertible, "\(seed.name) \(entry.name)")
                    }
                }
            } catch let error as AttentionError {
                guard case .invalidFile(let path, _) = error else { Issue.record("\(seed.name): \(error)"); continue }
                #expect(path == seed.name)
            }
        }
        // The hand-written valid seeds parse and the hostile ones do not.
        #expect(parsed == valid)
    }

    @Test("A header longer than .npy 1.0 holds is written as version 2.0, which reads back")
    func longHeader() throws {
        let tensor = try Tensor<Float>(shape: Array(repeating: 1, count: 30_000), scalars: [2])
        let data = NPY.encode(tensor)
        #expect(data[6] == 2)
        #expect(try NPY.decode(data) == .float32(tensor))
        #expect(NPY.encode(Tensor<Float>([1, 2]))[6] == 1)
    }

    @Test("A diverged run's NaN losses and an unknown time left print as '?'")
    func nonFiniteProgress() {
        #expect(TerminalRenderer.sparkline([1, .nan, 0.5, .infinity], width: 4) == "█?▁?")
        #expect(TerminalRenderer.sparkline([.nan, .nan], width: 2) == "??")
        #expect(TerminalRenderer.clock(.infinity) == "?" && TerminalRenderer.clock(.nan) == "?" && TerminalRenderer.clock(-1) == "?")
        #expect(TerminalRenderer.clock(3725) == "1:02:05")
    }

    @Test("Sizes no machine holds are refused before anything is allocated, naming the flags",
          arguments: [
              ["bench", "--seq", "4611686018427387904"], ["bench", "--threads", "9223372036854775807"],
              ["bench", "--embed-batch", "4611686018427387904"],
              ["bench", "--linear", "4611686018427387904x2x2"], ["bench", "--linear", "2x4611686018427387904x4611686018427387904"],
              ["experiment", "retrieval", "--dimension", "4611686018427387904"],
              ["train", "recall", "--batch-size", "4611686018427387904"],
              ["train", "recall", "--head-dimension", "9223372036854775807"],
          ])
    func hugeSizes(_ arguments: [String]) throws {
        do {
            var command = try AttentionCommand.parseAsRoot(arguments)
            try command.run()
            Issue.record("\(arguments) ran")
        } catch let error as AttentionError {
            guard case .invalidArgument = error else { Issue.record("\(error)"); return }
        } catch {
            let message = AttentionCommand.message(for: error)
            #expect(message.contains("--"), "\(message)")
        }
    }

    @Test("bench --linear refuses a malformed shape and the other modes, naming the flags",
          arguments: [(["bench", "--linear", "12x3"], "--linear"), (["bench", "--linear", "0x3x3"], "--linear"),
                      (["bench", "--linear", "ax3x3"], "--linear"),
                      (["bench", "--linear", "8x8x8", "--embed-batch", "2"], "--embed-batch"),
                      (["bench", "--linear", "8x8x8", "--backward"], "--backward"),
                      (["bench", "--weights", "q4_1"], "--weights"), (["bench", "--linear", "1x48x16", "--weights", "q8_0"], "--weights")])
    func linearBenchArguments(_ arguments: [String], names flag: String) {
        Self.expectRefused(arguments, naming: [flag, "--linear"])
    }

    @Test("bench --model refuses the other modes and --streams or --tokens out of range; --streams and --tokens need --model",
          arguments: [(["bench", "--model", "x.gguf", "--linear", "8x8x8"], "--linear"), (["bench", "--model", "x.gguf", "--backward"], "--backward"),
                      (["bench", "--model", "x.gguf", "--embed-batch", "2"], "--embed-batch"), (["bench", "--model", "x.gguf", "--distributed"], "--distributed"),
                      (["bench", "--model", "x.gguf", "--streams", "0"], "--streams"), (["bench", "--model", "x.gguf", "--streams", "1025"], "--streams"),
                      (["bench", "--model", "x.gguf", "--tokens", "1"], "--tokens"), (["bench", "--streams", "8"], "--streams"),
                      (["bench", "--tokens", "8"], "--tokens")])
    func modelBenchArguments(_ arguments: [String], names flag: String) {
        Self.expectRefused(arguments, naming: [flag, "--model"])
    }

    /// Expects the parser to refuse `arguments` with a message that names every one of `names`.
    static func expectRefused(_ arguments: [String], naming names: [String]) {
        do {
            _ = try AttentionCommand.parseAsRoot(arguments)
            Issue.record("\(arguments) parsed")
        } catch {
            let message = AttentionCommand.message(for: error)
            #expect(names.allSatisfy(message.contains), "\(message)")
        }
    }

    @Test("The element-count check names the argument and refuses overflow, negatives and excess")
    func elementCount() throws {
        #expect(try checkedElementCount([2, 3, 4], argument: "x") == 24)
        #expect(throws: AttentionError.invalidArgument(argument: "x", reason: "sizes [4611686018427387904, 4] make more than 2^63 elements, more than the 17179869184 allowed")) {
            try checkedElementCount([1 << 62, 4], argument: "x")
        }
        #expect(try checkedElementCount([1 << 62, 4, 0], argument: "x") == 0)
        #expect(throws: AttentionError.invalidArgument(argument: "y", reason: "sizes [10, 10] make 100 elements, more than the 99 allowed")) {
            try checkedElementCount([10, 10], argument: "y", atMost: 99)
        }
        #expect(thrownError { try checkedElementCount([-1], argument: "z") } == .invalidArgument("z"))
        #expect(throws: AttentionError.invalidArgument(argument: "threads", reason: "must be in 1...1024, got 1025")) {
            try scaledDotProductAttention(query: Tensor<Float>(shape: [1, 2], scalars: [1, 2]), key: Tensor<Float>(shape: [1, 2], scalars: [1, 2]),
                                          value: Tensor<Float>(shape: [1, 2], scalars: [1, 2]), options: AttentionOptions(threads: 1025))
        }
    }
}
