import Attention
import AttentionCLI
import AttentionTestSupport
import Foundation
import Testing

/// The `attention` executable as a user runs it: each error's whole message on standard error and
/// its exit status (sysexits), from misspelled subcommands to folders that cannot be written.
@Suite("Errors and exit statuses of the executable", .serialized)
struct ExitStatusTests {
    /// A folder for this test's files, removed when the test ends.
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory("exit-status") }

    /// The executable SwiftPM built beside the test runner.
    static let executable = Bundle.main.bundleURL.appendingPathComponent("attention")

    struct Run {
        let status: Int32
        let output: String
        let error: String
    }

    /// Runs `attention arguments` (or another program), killing it after a minute.
    static func run(_ arguments: [String], program: URL = executable, environment: [String: String] = [:], input: String? = nil) throws -> Run {
        let process = Process()
        if let input {
            let pipe = Pipe()
            process.standardInput = pipe
            pipe.fileHandleForWriting.write(Data(input.utf8))
            try pipe.fileHandleForWriting.close()
        }
        process.executableURL = program
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let watchdog = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        let out = output.fileHandleForReading.readDataToEndOfFile(), err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        return Run(status: process.terminationStatus, output: String(decoding: out, as: UTF8.self), error: String(decoding: err, as: UTF8.self))
    }

    func expect(_ arguments: [String], status: AttentionCLI.ExitStatus, error expected: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try Self.run(arguments)
        #expect(r.status == status.rawValue, "\(arguments): \(r.error)", sourceLocation: sourceLocation)
        #expect(r.error == expected, sourceLocation: sourceLocation)
    }

    @Test("The executable is there: SwiftPM builds it with the tests")
    func executableExists() {
        #expect(FileManager.default.isExecutableFile(atPath: Self.executable.path), "\(Self.executable.path)")
    }

    @Test("Misspelled subcommands and options get the nearest name; usage errors exit 64")
    func usage() throws {
        try expect(["atend"], status: .usage, error: "Error: 'atend' is not a subcommand of attention. Did you mean 'attend'?\n  See 'attention --help'.\n")
        try expect(["experiment", "scal"], status: .usage,
                   error: "Error: 'scal' is not a subcommand of attention experiment. Did you mean 'scaling'?\n  See 'attention --help'.\n")
        try expect(["train", "gtp"], status: .usage, error: "Error: 'gtp' is not a subcommand of attention train. Did you mean 'gpt'?\n  See 'attention --help'.\n")
        try expect(["zzz"], status: .usage, error: """
            Error: 'zzz' is not a subcommand of attention; its subcommands are demo, experiment, train, attend, heatmap, bench, model, embed, similarity, explain, generate, chat, serve
              See 'attention --help'.

            """)
        try expect(["bench", "--thread", "2"], status: .usage, error: """
            Error: Unknown option '--thread'. Did you mean '--threads'?
            Usage: attention bench <options>
              See 'attention bench --help' for more information.

            """)
        try expect(["bench", "--threads", "0"], status: .usage, error: """
            Error: --threads must be at least 1, got 0
            Usage: attention bench <options>
              See 'attention bench --help' for more information.

            """)
        try expect(["explain", " "], status: .usage, error: """
            Error: the sentence is empty: give some text, for example attention explain "The cat sat on the mat"
            Usage: attention explain [<options>] <sentence>
              See 'attention explain --help' for more information.

            """)
    }

    @Test("Missing, unreadable and folder inputs exit 66 naming the flag; contents that do not fit exit 65")
    func inputs() throws {
        let missing = scratch.file("missing.npy").path
        try expect(["heatmap", "--weights", missing], status: .noInput, error: "Error: --weights \(missing): no such file\n")
        try expect(["heatmap", "--weights", scratch.url.path], status: .noInput, error: "Error: --weights \(scratch.url.path): is a folder; give a file\n")
        try expect(["attend", "--query", missing, "--key", missing, "--value", missing, "--output", scratch.file("o.npy").path],
                   status: .noInput, error: "Error: --query \(missing): no such file\n")
        let text = scratch.file("text.npy")
        try Data("not an array".utf8).write(to: text)
        try expect(["heatmap", "--weights", text.path], status: .dataError, error: "Error: \(text.path): not a .npy file (it does not start with \\x93NUMPY)\n")
        let folder = scratch.file("no-model").path
        try expect(["explain", "--model-dir", folder, "a"], status: .noInput, error: """
            Error: \(folder): the model is not here (missing config.json, vocab.txt, model.safetensors); run 'attention model fetch' or pass --model-dir

            """)
    }

    @Test("attend's errors name the flags and files as typed: a shape that does not fit exits 65, a flag value 64")
    func attendNamesFlags() throws {
        let (q, k, v) = (scratch.file("q.npy").path, scratch.file("k.npy").path, scratch.file("v.npy").path)
        try NPY.write(try Tensor<Float>(zeros: [2, 3, 4]), to: URL(fileURLWithPath: q))
        try NPY.write(try Tensor<Float>(zeros: [2, 5, 3]), to: URL(fileURLWithPath: k))
        try NPY.write(try Tensor<Float>(zeros: [2, 5, 6]), to: URL(fileURLWithPath: v))
        let o = scratch.file("o.npy").path
        try expect(["attend", "--query", q, "--key", k, "--value", v, "--output", o], status: .dataError, error: """
            Error: --key \(k) with shape [2, 5, 3] does not fit --query \(q) with shape [2, 3, 4]: query and key must have the same head dimension (4 vs 3)

            """)
        try NPY.write(try Tensor<Float>(zeros: [2, 5, 4]), to: URL(fileURLWithPath: k))
        try expect(["attend", "--query", q, "--key", k, "--value", v, "--output", o, "--key-lengths", "1,2,3"], status: .usage,
                   error: "Error: --key-lengths: 3 lengths given for a batch of 1 (one per batch element)\n")
        #expect(!FileManager.default.fileExists(atPath: o))
    }

    @Test("Outputs that cannot be created exit 73 before any work: a folder, or a folder that does not exist")
    func outputs() throws {
        let weights = scratch.file("w.npy")
        try NPY.write(try Tensor<Float>([[0.5, 0.5], [1, 0]]), to: weights)
        try expect(["heatmap", "--weights", weights.path, "--svg", scratch.url.path], status: .cannotCreate,
                   error: "Error: --svg \(scratch.url.path): is a folder; give a file name (for example \(scratch.url.path)/out.svg)\n")
        let nowhere = scratch.file("nowhere").appendingPathComponent("x.svg").path
        try expect(["experiment", "scaling", "--svg", nowhere], status: .cannotCreate,
                   error: "Error: --svg \(nowhere): the folder \(scratch.file("nowhere").path) does not exist; create it first\n")
        try expect(["attend", "--query", weights.path, "--key", weights.path, "--value", weights.path, "--output", scratch.url.path],
                   status: .cannotCreate, error: "Error: --output \(scratch.url.path): is a folder; give a file name (for example \(scratch.url.path)/out.npy)\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).sorted() == ["w.npy"])
    }

    @Test("A sentence longer than the model reads is refused with its length, or read in part with --truncate")
    func longSentence() throws {
        let long = Array(repeating: "cat", count: 300).joined(separator: " ")
        try expect(["explain", long], status: .usage, error: """
            Error: the sentence has 302 tokens; the model reads at most 256: shorten it, or pass --truncate to read its first 256
              See 'attention explain --help'.

            """)
        let r = try Self.run(["explain", "--truncate", "--json", long])
        #expect(r.status == 0, "\(r.error)")
        struct Map: Decodable { let tokens: [String]; let layer: Int; let head: Int?; let weights: [[Double]] }
        let map = try JSONDecoder().decode(Map.self, from: Data(r.output.utf8))
        #expect(map.tokens.count == 256 && map.tokens.first == "[CLS]" && map.tokens.last == "[SEP]")
        #expect(map.weights.count == 256 && map.weights.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-5 })
        #expect((map.layer, map.head) == (1, 1))
    }

    @Test("A port in use exits 69 and says what to do")
    func portInUse() throws {
        // A first server on a free port; the second asks for the same one.
        let first = Process()
        first.executableURL = Self.executable
        first.arguments = ["serve", "--port", "0"]
        let output = Pipe()
        first.standardOutput = output
        first.standardError = FileHandle.nullDevice
        try first.run()
        defer { first.terminate(); first.waitUntilExit() }
        var text = ""
        func announced() -> Substring? { text.split(separator: "\n").first { $0.hasPrefix("Attention explorer at ") } }
        while announced() == nil || !text.hasSuffix("\n") {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let url = try #require(announced())
        let digits: Substring? = url.split(separator: ":").last?.split(separator: "/").first
        let found = try #require(digits)
        let port = String(found)
        try expect(["serve", "--port", port], status: .unavailable, error: """
            Error: --port \(port): the port is in use on 127.0.0.1 (another attention serve?); stop that program, or pick another port (--port 0 takes a free one)

            """)
    }

    @Test("--distributed without an MPI library exits 69, naming what it tried and what to install")
    func noMPI() throws {
        var g = SplitMix64(seed: 1)
        let x = scratch.url.appendingPathComponent("x.npy")
        try NPY.write(try Tensor<Float>.randomNormal(shape: [4, 8], using: &g), to: x)
        let missing = scratch.url.appendingPathComponent("libmpi-missing.so").path
        let r = try Self.run(["attend", "--distributed", "--query", x.path, "--key", x.path, "--value", x.path,
                              "--output", scratch.url.appendingPathComponent("o.npy").path],
                             environment: ["ATTENTION_MPI_LIBRARY": missing])
        #expect(r.status == AttentionCLI.ExitStatus.unavailable.rawValue, "\(r.error)")
        #expect(r.error.hasPrefix("Error: MPI is not available: tried \(missing); last error: "), "\(r.error)")
        #expect(r.error.hasSuffix("(on Debian: apt-get install openmpi-bin)\n"), "\(r.error)")
        #expect(!FileManager.default.fileExists(atPath: scratch.url.appendingPathComponent("o.npy").path))
    }

    @Test("--help lists the exit statuses")
    func helpListsStatuses() throws {
        let r = try Self.run(["--help"])
        #expect(r.status == 0)
        for status in AttentionCLI.ExitStatus.allCases where status != .success {
            #expect(r.output.contains("\(status.rawValue)"), "\(status)")
        }
    }
}
