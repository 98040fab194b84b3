import ArgumentParser
import Attention
import AttentionCLI
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// Every option of every subcommand that takes a number, found from the executable's own
/// description of its options (`--experimental-dump-help`), at `Int.min, -1, 0, 1, Int.max`. Each
/// value is parsed as the executable parses it; a value that passes parsing and validation runs in the
/// real executable, beside arguments that keep the job small. No value may stop it by a signal (a
/// trap), print a runtime failure, or keep it running past the time limit.
@Suite("Integer boundaries of the attention command", .serialized)
struct CommandBoundaryMatrixTests {
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory("command-boundaries") }

    /// The subcommands that run a job, with arguments that keep it small; every option that takes a
    /// number is then tried on top of these (replacing the same option's value here).
    func baselines() throws -> [(path: [String], arguments: [String])] {
        let two = try Tensor<Float>(shape: [2, 2], scalars: [1, 0, 0, 1])
        let npy = scratch.url.appendingPathComponent("x.npy").path
        try NPY.encode(two).write(to: URL(fileURLWithPath: npy))
        let text = scratch.url.appendingPathComponent("text.txt")
        try String(repeating: "the cat sat on the mat. ", count: 40).write(to: text, atomically: true, encoding: .utf8)
        let messages = scratch.url.appendingPathComponent("messages.txt")
        try "Hi\n".write(to: messages, atomically: true, encoding: .utf8)
        let smol = SmolLM2Store.file(in: SmolLM2Store.defaultDirectory()).path
        let output = scratch.url.appendingPathComponent("out").path
        return [
            (["attend"], ["--query", npy, "--key", npy, "--value", npy]),
            (["bench"], ["--seq", "16", "--dim", "8", "--heads", "1", "--repeat", "1", "--threads", "1"]),
            (["experiment", "scaling"], ["--trials", "2"]),
            (["experiment", "retrieval"], ["--trials", "2"]),
            (["experiment", "patterns"], []),
            (["heatmap"], ["--weights", npy]),
            (["train", "recall"], ["--steps", "2", "--lengths", "4", "--models", "attention", "--quiet"]),
            (["train", "gpt"], ["--text", text.path, "--steps", "1", "--layers", "1", "--heads", "1", "--width", "8", "--context", "4",
                                "--batch-size", "1", "--vocab-size", "260", "--output", output, "--quiet"]),
            (["embed"], ["hello world"]),
            (["similarity"], ["a cat", "a dog"]),
            (["explain"], ["hello world"]),
            (["generate"], ["--model", smol, "--max-tokens", "2", "hi"]),
            (["chat"], ["--model", smol, "--max-tokens", "2", "--input", messages.path]),
            (["serve"], ["--port", "0"]),
        ]
    }

    /// Options whose value holds several numbers: each position is tried (`N` stands for the number).
    static let templates: [String: [String]] = [
        "--window": ["N,0", "0,N"],
        "--linear": ["Nx8x8", "8xNx8", "8x8xN"],
        "--lengths": ["4,N"],
        "--key-lengths": ["N"],
    ]

    /// The long options of `path`, from the executable's description of itself.
    static func options(of path: [String]) throws -> [String] {
        let run = try ExitStatusTests.run(["--experimental-dump-help"])
        var command = try #require(JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])["command"] as? [String: Any]
        for name in path {
            let subcommands = command?["subcommands"] as? [[String: Any]] ?? []
            command = subcommands.first { $0["commandName"] as? String == name }
        }
        let arguments = try #require(command?["arguments"] as? [[String: Any]], "\(path)")
        return arguments.compactMap { argument -> String? in
            guard argument["kind"] as? String == "option" else { return nil }
            let names = argument["names"] as? [[String: Any]] ?? []
            return names.first { $0["kind"] as? String == "long" }.flatMap { $0["name"] as? String }.map { "--" + $0 }
        }.filter { !["--help", "--version"].contains($0) }
    }

    /// Whether the parser refuses a word where `option` expects its value: the option takes numbers.
    static func takesNumbers(_ option: String, path: [String], baseline: [String]) -> Bool {
        do {
            _ = try AttentionCommand.parseAsRoot(path + baseline + ["\(option)=x"])
            return false
        } catch {
            let message = AttentionCommand.message(for: error)
            return message.contains("'x'") && message.contains(option)
        }
    }

    /// `baseline` without `option` and its value.
    static func removing(_ option: String, from baseline: [String]) -> [String] {
        guard let i = baseline.firstIndex(of: option) else { return baseline }
        return Array(baseline[..<i] + baseline[(i + 2)...])
    }

    @Test("Every numeric option at Int.min, -1, 0, 1, Int.max: refused by name or run to the end, never a trap or a hang")
    func everyNumericOption() throws {
        var covered: [String] = []
        for (path, baseline) in try baselines() {
            for option in try Self.options(of: path) where Self.takesNumbers(option, path: path, baseline: baseline) {
                covered.append((path + [option]).joined(separator: " "))
                let rest = Self.removing(option, from: baseline)
                for template in Self.templates[option] ?? ["N"] {
                    for n in IntegerInput.extremes {
                        let arguments = path + rest + ["\(option)=\(template.replacingOccurrences(of: "N", with: String(n)))"]
                        try check(arguments, runs: path == ["serve"] ? 3 : 240)
                    }
                }
            }
        }
        // The flags the matrix must reach, among others: a run that silently skips them fails.
        for expected in ["attend --window", "attend --key-lengths", "bench --seq", "bench --threads", "bench --linear", "bench --embed-batch",
                         "train gpt --context", "train recall --lengths", "generate --max-tokens", "generate --top-k", "chat --context",
                         "explain --layer", "heatmap --head", "serve --port", "embed --batch-size", "similarity --top"] {
            #expect(covered.contains(expected), "\(expected) is not covered: \(covered)")
        }
    }

    @Test("The reported folder: a BERT config.json with type_vocab_size 0 (and a table of 0 rows) exits 65, naming the field")
    func bertWithoutTokenTypes() throws {
        let installed = ModelStore.defaultDirectory()
        try ModelStore.fetch(into: installed) { _ in }
        let folder = scratch.url.appendingPathComponent("no-token-types")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in ["vocab.txt", "model.safetensors"] {
            try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent(name), withDestinationURL: installed.appendingPathComponent(name))
        }
        var config = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: installed.appendingPathComponent("config.json"))) as? [String: Any])
        config["type_vocab_size"] = 0
        try JSONSerialization.data(withJSONObject: config).write(to: folder.appendingPathComponent("config.json"))
        let run = try ExitStatusTests.run(["embed", "--model-dir", folder.path, "hello world"])
        #expect(run.status == 65, "\(run.error)")
        #expect(run.error.contains("type_vocab_size is 0"), "\(run.error)")
    }

    /// Parses `arguments` in this process; where they pass, runs them in the executable.
    func check(_ arguments: [String], runs seconds: Double) throws {
        do {
            _ = try AttentionCommand.parseAsRoot(arguments)
        } catch {
            // Refused by the parser or a validate(): a usage error with a message, as the executable prints it.
            #expect(!AttentionCommand.message(for: error).isEmpty, "\(arguments)")
            return
        }
        let run = try Self.run(arguments, seconds: seconds)
        #expect(!run.error.contains("Fatal error") && !run.error.contains("runtime failure"), "\(arguments): \(run.error.suffix(2000))")
        if run.timedOut {
            // A server still serving is what it should do; any other command has hung.
            #expect(arguments.first == "serve", "\(arguments): still running after \(seconds) s")
            return
        }
        #expect(run.reason == .exit, "\(arguments): stopped by signal \(run.status)\n\(run.error.suffix(2000))")
        if run.reason == .exit, run.status != 0 {
            #expect(run.error.hasPrefix("Error: ") || run.error.contains("\nError: "), "\(arguments): \(run.status) \(run.error.suffix(500))")
        }
    }

    struct Run {
        let status: Int32
        let reason: Process.TerminationReason
        let error: String
        let timedOut: Bool
    }

    /// Runs the executable, stopping it (SIGTERM) after `seconds`.
    static func run(_ arguments: [String], seconds: Double) throws -> Run {
        let process = Process()
        process.executableURL = ExitStatusTests.executable
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let error = Pipe()
        process.standardError = error
        try process.run()
        let timedOut = LockedFlag()
        let watchdog = DispatchWorkItem { timedOut.set(); process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: watchdog)
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        return Run(status: process.terminationStatus, reason: process.terminationReason,
                   error: String(decoding: err, as: UTF8.self), timedOut: timedOut.value)
    }

    final class LockedFlag: @unchecked Sendable {
        private let lock = NSLock()
        private var flag = false
        func set() { lock.withLock { flag = true } }
        var value: Bool { lock.withLock { flag } }
    }
}
