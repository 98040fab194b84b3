import AttentionTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
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

/// `attention serve --port 0` in a process of its own, at the address it prints.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let base: URL

    init() throws {
        process.executableURL = ExitStatusTests.executable
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The line "Attention explorer at http://127.0.0.1:PORT/ (Ctrl-C to stop)", within a minute.
        var printed = ""
        let deadline = Date().addingTimeInterval(60)
        while !printed.contains("(Ctrl-C"), Date() < deadline, process.isRunning {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            printed += String(decoding: data, as: UTF8.self)
        }
        guard let start = printed.range(of: "http://"), let end = printed.range(of: " (Ctrl-C", range: start.lowerBound..<printed.endIndex),
              let url = URL(string: String(printed[start.lowerBound..<end.lowerBound])) else {
            process.terminate()
            throw URLError(.cannotConnectToHost, userInfo: [NSLocalizedDescriptionKey: "attention serve printed: \(printed)"])
        }
        base = url
    }

    var isRunning: Bool { process.isRunning }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// POSTs `body`; the status and the decoded JSON object of the answer.
    func post(_ path: String, _ body: String) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: base.appendingPathComponent(String(path.dropFirst())))
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        request.timeoutInterval = 60
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? ["unparsed": String(decoding: data, as: UTF8.self)]
        return (status, json)
    }
}
