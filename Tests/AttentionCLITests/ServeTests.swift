import AttentionTestSupport
import AttentionModels
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// One running `attention serve` (the real executable), sent every integer field of its JSON API at
/// the extremes and past what `Int` holds: each hostile request gets a JSON answer with a 4xx status
/// or a correct result, and the server still answers a normal request afterwards.
@Suite("Integer boundaries of the explorer's API, on a running server", .serialized, .timeLimit(.minutes(3)))
struct ServeTests {
    /// The integers of the matrix, and numbers JSON can hold that `Int` cannot.
    static let integers = ["-9223372036854775808", "-1", "0", "1", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "1e300"]

    @Test("Every integer field of /api/attend and /api/explain at the extremes; the server keeps serving")
    func hostileRequests() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        var statuses: [String: Int] = [:]
        let matrices = #""query": [[1, 0], [0, 1]], "key": [[1, 0], [0, 1], [1, 1]], "value": [[1], [2], [3]]"#
        for n in Self.integers {
            for body in [#"{\#(matrices), "window": [\#(n), 0]}"#, #"{\#(matrices), "window": [0, \#(n)]}"#,
                         #"{\#(matrices), "window": [\#(n), \#(n)], "causal": true}"#,
                         #"{"query": [[1]], "key": [[1]], "value": [[1]], "window": [0, \#(n)]}"#] {
                let (status, json) = try await server.post("/api/attend", body)
                statuses[body] = status
                #expect(status == 200 || status == 400, "\(body): \(status) \(json)")
                if status == 200 {
                    let weights = try #require(json["weights"] as? [[Double]], "\(json)")
                    #expect(weights.allSatisfy { row in row.allSatisfy(\.isFinite) && (row.reduce(0, +) == 0 || abs(row.reduce(0, +) - 1) < 1e-9) })
                } else {
                    #expect(json["error"] is String, "\(body): \(json)")
                }
            }
            for body in [#"{"text": "hello world", "layer": \#(n), "head": 1}"#, #"{"text": "hello world", "layer": 1, "head": \#(n)}"#] {
                let (status, json) = try await server.post("/api/explain", body)
                #expect([200, 400, 503].contains(status), "\(body): \(status) \(json)")
                if status != 200 { #expect(json["error"] is String, "\(body): \(json)") }
            }
        }
        // The reported request: a window of Int.max is no limit.
        let reported = #"{"query": [[1]], "key": [[1]], "value": [[1]], "window": [0, 9223372036854775807]}"#
        let (status, json) = try await server.post("/api/attend", reported)
        #expect(status == 200 && (json["output"] as? [[Double]]) == [[1]], "\(status) \(json)")
        // Out of Int's range: a 400 naming the field, not a trap.
        #expect(statuses[#"{"query": [[1]], "key": [[1]], "value": [[1]], "window": [0, 9223372036854775808]}"#] == 400)
        // Still serving.
        let (after, answer) = try await server.post("/api/attend", #"{"query": [[1, 0]], "key": [[1, 0], [0, 1]], "value": [[1], [2]]}"#)
        #expect(after == 200 && answer["weights"] != nil)
        #expect(server.isRunning)
    }
}

/// `attention serve --model` with SmolLM2: OpenAI's API on the real executable.
@Suite("OpenAI API of a running server", .serialized, .timeLimit(.minutes(3)))
struct ServeAPITests {
    static var model: String { SmolLM2Store.file(in: SmolLM2Store.defaultDirectory()).path }

    @Test("Every integer field of the completions at the extremes gets an answer or a 400 naming it; the server keeps serving")
    func hostileIntegers() async throws {
        try SmolLM2Store.fetch(into: SmolLM2Store.defaultDirectory()) { print($0) }
        let server = try ServerProcess(arguments: ["--model", Self.model, "--context", "64"])
        defer { server.stop() }
        for n in ServeTests.integers {
            for (field, body) in [("max_tokens", #"{"prompt": "Hi", "max_tokens": \#(n)}"#),
                                  ("max_completion_tokens", #"{"messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": \#(n)}"#),
                                  ("top_k", #"{"prompt": "Hi", "max_tokens": 1, "top_k": \#(n)}"#),
                                  ("seed", #"{"prompt": "Hi", "max_tokens": 1, "seed": \#(n)}"#),
                                  ("n", #"{"prompt": "Hi", "max_tokens": 1, "n": \#(n)}"#)] {
                let path = body.contains("messages") ? "/v1/chat/completions" : "/v1/completions"
                let (status, json) = try await server.post(path, body)
                #expect(status == 200 || status == 400, "\(body): \(status) \(json)")
                if status == 400 {
                    let error = try #require(json["error"] as? [String: Any], "\(body): \(json)")
                    #expect(error["type"] as? String == "invalid_request_error")
                    if !["1e300", "9223372036854775808", "-9223372036854775809"].contains(n) {
                        #expect(error["param"] as? String == field, "\(body): \(error)")
                    }
                } else {
                    #expect(json["choices"] is [Any], "\(body): \(json)")
                }
            }
        }
        let (after, answer) = try await server.post("/v1/completions", #"{"prompt": "Hi", "max_tokens": 2}"#)
        #expect(after == 200 && answer["usage"] != nil)
        #expect(server.isRunning)
    }

    @Test("--kv-dtype float16: a greedy answer equals generate's over the same cache storage; an unknown storage, or the flag without --model, is refused by name")
    func halfPrecisionCaches() async throws {
        try SmolLM2Store.fetch(into: SmolLM2Store.defaultDirectory()) { print($0) }
        let unknown = try ExitStatusTests.run(["serve", "--model", Self.model, "--kv-dtype", "float8"])
        #expect(unknown.status == 64 && unknown.error.contains("--kv-dtype must be float32, float16 or bfloat16, got 'float8'"), "\(unknown.error)")
        let alone = try ExitStatusTests.run(["serve", "--port", "0", "--kv-dtype", "float16"])
        #expect(alone.status == 64 && alone.error.contains("--kv-dtype applies to the API, which needs --model FILE.gguf"), "\(alone.error)")

        let prompt = "The capital of France is"
        let generated = try ExitStatusTests.run(["generate", "--model", Self.model, "--greedy", "--max-tokens", "12",
                                                 "--kv-dtype", "float16", "--json", prompt])
        #expect(generated.status == 0, "\(generated.error)")
        let expected = try #require(JSONSerialization.jsonObject(with: Data(generated.output.utf8)) as? [String: Any])["text"] as? String
        let server = try ServerProcess(arguments: ["--model", Self.model, "--context", "64", "--kv-dtype", "float16"])
        defer { server.stop() }
        let (status, answer) = try await server.post("/v1/completions", #"{"prompt": "\#(prompt)", "max_tokens": 12, "temperature": 0}"#)
        #expect(status == 200, "\(answer)")
        let choices = try #require(answer["choices"] as? [[String: Any]], "\(answer)")
        #expect(choices.first?["text"] as? String == expected, "\(answer)")
    }

    @Test("SIGTERM finishes the answer in flight, then the server exits 0")
    func gracefulShutdown() async throws {
        try SmolLM2Store.fetch(into: SmolLM2Store.defaultDirectory()) { print($0) }
        let server = try ServerProcess(arguments: ["--model", Self.model])
        defer { server.stop() }
        // The answer's status and completion tokens.
        let answer = Task { () async throws -> (Int, Int?) in
            let (status, json) = try await server.post("/v1/completions", #"{"prompt": "Once upon a time", "max_tokens": 150, "temperature": 0}"#)
            return (status, (json["usage"] as? [String: Int])?["completion_tokens"])
        }
        // Polled on a thread of its own, so a busy test pool cannot make it miss the answer running.
        let port = server.port
        let running = try await LoopbackHTTP.onThread { () throws -> Int in
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                let health = try LoopbackHTTP.exchange(port: port, "GET", "/health", timeout: .seconds(30))
                let running = (try? JSONSerialization.jsonObject(with: health.body) as? [String: Any])?["running"] as? Int ?? 0
                if running > 0 { return running }
                usleep(5_000)
            }
            return 0
        }
        #expect(running == 1)
        server.process.terminate()            // SIGTERM
        let (status, tokens) = try await answer.value
        #expect(status == 200 && tokens == 150)
        let exited = try await server.waitForExit(within: .seconds(60))
        #expect(exited, "the server did not exit within a minute of SIGTERM")
        #expect(server.process.terminationReason == .exit && server.process.terminationStatus == 0)
    }
}

/// `attention serve --port 0` in a process of its own, at the address it prints. Every wait is
/// bounded: a server that does not start, answer or exit fails the test instead of hanging it.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let port: Int

    struct Failure: Error, CustomStringConvertible { let description: String }

    init(arguments: [String] = []) throws {
        process.executableURL = ExitStatusTests.executable
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The line "Attention explorer at http://127.0.0.1:PORT/ (Ctrl-C to stop)", within a minute.
        let descriptor = output.fileHandleForReading.fileDescriptor
        var printed = ""
        let deadline = ContinuousClock.now + .seconds(60)
        while !printed.contains("(Ctrl-C"), ContinuousClock.now < deadline {
            var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 100) >= 0 else { break }
            if ready.revents == 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = read(descriptor, &buffer, buffer.count)
            guard n > 0 else { break }
            printed += String(decoding: buffer[..<n], as: UTF8.self)
        }
        guard let start = printed.range(of: "http://127.0.0.1:"), let end = printed[start.upperBound...].firstIndex(of: "/"),
              let port = Int(printed[start.upperBound..<end]) else {
            process.terminate()
            throw Failure(description: "attention serve printed no address within a minute: \(printed)")
        }
        self.port = port
    }

    var isRunning: Bool { process.isRunning }

    /// Waits up to `limit` (off the test pool) for the process to end on its own; then kills it and
    /// returns false.
    func waitForExit(within limit: Duration) async throws -> Bool {
        try await LoopbackHTTP.onThread { self.reap(within: limit) }
    }

    /// Stops the server (SIGTERM, then SIGKILL after ten seconds).
    func stop() {
        if process.isRunning { process.terminate() }
        _ = reap(within: .seconds(10))
    }

    /// Waits up to `limit` for the process to end, SIGKILLs it if it has not, and reaps it; whether
    /// it ended on its own.
    private func reap(within limit: Duration) -> Bool {
        let deadline = ContinuousClock.now + limit
        while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        let ended = !process.isRunning
        if !ended { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return ended
    }

    /// POSTs `body` to `path`; the status and the decoded JSON object of the answer.
    func post(_ path: String, _ body: String) async throws -> (Int, [String: Any]) {
        let answer = try await LoopbackHTTP.request(port: port, "POST", path, body: Data(body.utf8))
        let json = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any] ?? ["unparsed": answer.text]
        return (answer.status, json)
    }
}
