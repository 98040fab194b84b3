import AttentionExplorer
import AttentionServer
import AttentionServing
import AttentionTestSupport
import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle
import Testing

/// A real explorer server on a free port of 127.0.0.1, reached over HTTP by the tests' loopback client.
enum LiveExplorer {
    struct NotStarted: Error, CustomStringConvertible {
        var description: String { "the explorer's server stopped before it listened" }
    }

    /// Serves the explorer of `model` (and `api` under /v1/, and `extraPages`, path → HTML, beside it) while `body` runs
    /// with the server's base URL; the server stops when `body` returns or throws.
    static func serve<T: Sendable>(
        model: ExplorerModel, api: CompletionService? = nil, extraPages: [String: String] = [:], _ body: @escaping @Sendable (URL) async throws -> T
    ) async throws -> T {
        let service = try ExplorerServer.service(model: model, chatTemplate: api?.served.template)
        let responder = CallbackResponder { (request: Request, context: ExplorerServer.ConnectionContext) in
            if let html = extraPages[request.uri.path] {
                return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
            }
            return await ExplorerServer.response(to: request, context: context, service: service, api: api)
        }
        let (ports, listening) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            responder: responder, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                if let port = channel.localAddress?.port { listening.yield(port) }
                listening.finish()
            })
        let services = ServiceGroup(services: [app])
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { listening.finish() }
                try await services.run()
            }
            var next = ports.makeAsyncIterator()
            guard let port = await next.next(), let base = URL(string: "http://127.0.0.1:\(port)") else { throw NotStarted() }
            do {
                let result = try await body(base)
                await services.triggerGracefulShutdown()
                return result
            } catch {
                await services.triggerGracefulShutdown()
                throw error
            }
        }
    }

    /// Sends `method` to `path` with `body`, and returns the status, the headers (in lower case) and the body.
    static func request(_ base: URL, _ method: String, _ path: String, body: Data? = nil) async throws -> (status: Int, headers: [String: String], body: Data) {
        let answer = try await LoopbackHTTP.request(port: try #require(base.port), method, path, body: body)
        return (answer.status, answer.headers, answer.body)
    }
}

/// `attention serve`'s HTTP side: the page's files with their content types, and the service's answers
/// and errors carried over the wire as they are.
@Suite("Explorer over HTTP")
struct ExplorerServerTests {
    struct ErrorBody: Decodable { let error: String; let status: String }

    @Test("The page is served as HTML, CSS and JavaScript files and carries the explorer's controls")
    func page() async throws {
        try await LiveExplorer.serve(model: .unavailable("no model in this test")) { base in
            let page = try await LiveExplorer.request(base, "GET", "/")
            #expect(page.status == 200)
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            #expect(page.headers["cache-control"] == "no-store")
            let html = String(decoding: page.body, as: UTF8.self)
            for id in ["id=\"temperature\"", "id=\"mask\"", "id=\"weights\"", "id=\"headview\"", "id=\"modelview\"",
                       "href=\"/explorer.css\"", "src=\"/explorer.js\""] {
                #expect(html.contains(id), "\(id)")
            }
            let script = try await LiveExplorer.request(base, "GET", "/explorer.js")
            #expect(script.status == 200 && script.headers["content-type"] == "text/javascript; charset=utf-8")
            let code = String(decoding: script.body, as: UTF8.self)
            for endpoint in ["/api/attend", "/api/explain", "/api/status"] {
                #expect(code.contains(endpoint), "\(endpoint)")
            }
            let style = try await LiveExplorer.request(base, "GET", "/explorer.css")
            #expect(style.status == 200 && style.headers["content-type"] == "text/css; charset=utf-8")
            #expect(String(decoding: style.body, as: UTF8.self).contains("#modelview"))
        }
    }

    @Test("Answers and errors arrive as the service gives them; a body over 1 MiB is refused before it is read")
    func wire() async throws {
        try await LiveExplorer.serve(model: .unavailable("no model in this test")) { base in
            let attend = try await LiveExplorer.request(base, "POST", "/api/attend", body: Data(#"{"query": [[1]], "key": [[1], [1]], "value": [[2], [4]]}"#.utf8))
            #expect(attend.status == 200 && attend.headers["content-type"] == "application/json")
            let answer = try JSONDecoder().decode(AttendResponse.self, from: attend.body)
            #expect(answer.weights == [[0.5, 0.5]] && answer.output == [[3]])

            let big = Data(count: ExplorerAPI.maxBodyBytes + 1)
            let tooLarge = try await LiveExplorer.request(base, "POST", "/api/attend", body: big)
            #expect(tooLarge.status == 413)
            #expect(try JSONDecoder().decode(ErrorBody.self, from: tooLarge.body).error == "the body has 1048577 bytes; the limit is 1048576")

            for (method, path, status, message) in [("GET", "/api/nothing", 404, "no such page or endpoint: GET /api/nothing"),
                                                    ("GET", "/api/attend", 405, "/api/attend answers POST, not GET"),
                                                    ("POST", "/api/explain", 400, "the body is not valid JSON")] {
                let response = try await LiveExplorer.request(base, method, path, body: method == "POST" ? Data("{".utf8) : nil)
                #expect(response.status == status, "\(method) \(path)")
                #expect(response.headers["content-type"] == "application/json")
                let error = try JSONDecoder().decode(ErrorBody.self, from: response.body)
                #expect(error.error == message && error.status == String(status), "\(method) \(path)")
            }
        }
    }
}
