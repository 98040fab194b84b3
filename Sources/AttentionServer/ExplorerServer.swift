import AttentionModels
import Foundation
import Hummingbird
import NIOCore

/// The model the model explorer explains, or why there is none.
public enum ExplorerModel: Sendable {
    /// all-MiniLM-L6-v2 (BERT): full attention, sentence pairs.
    case loaded(SentenceEmbedder)
    /// A GPT-2 folder (what `attention train gpt` writes): causal attention.
    case gpt2(GPT2Model, ByteLevelBPETokenizer)
    /// Why not, for the page and the API to say.
    case unavailable(String)

    /// Loads the model from `directory`: a GPT-2 if the folder has its tokenizer's `merges.txt`,
    /// otherwise the BERT model; or records why it cannot.
    public static func load(from directory: URL) -> ExplorerModel {
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("merges.txt").path) {
            do {
                return .gpt2(try GPT2Model(directory: directory), try ByteLevelBPETokenizer(directory: directory))
            } catch {
                return .unavailable("The GPT-2 in \(directory.path) does not load (\(error)).")
            }
        }
        do {
            try ModelStore.check(directory)
            return .loaded(try SentenceEmbedder(directory: directory))
        } catch {
            return .unavailable("The model is not installed (\(error)). Run `attention model fetch`, then restart `attention serve`.")
        }
    }
}

/// The attention explorer: one page and a JSON API.
///
/// - `GET /` the page;
/// - `GET /api/status` whether the model explorer has its model, and which kind;
/// - `POST /api/attend` ``AttendRequest`` → ``AttendResponse``;
/// - `POST /api/explain` ``ExplainRequest`` → ``ExplainResponse``.
///
/// Every error is JSON, `{"error": "...", "status": "..."}`, with a 4xx status for bad requests
/// (413 for bodies over ``ExplorerAPI/maxBodyBytes`` and texts over ``ExplorerAPI/maxTokens`` tokens).
public enum ExplorerServer {
    ///
    /// Throws ``ExplorerPageError`` when the page's files (package resources) cannot be read.
    public static func router(model: ExplorerModel) throws -> Router<BasicRequestContext> {
        let page = try ExplorerPage.load()
        let router = Router()
        router.add(middleware: JSONErrors())
        for (path, file) in page.files {
            router.get(RouterPath(path)) { _, _ in
                Response(status: .ok, headers: [.contentType: file.contentType, .cacheControl: "no-store"],
                         body: .init(byteBuffer: ByteBuffer(string: file.body)))
            }
        }
        router.get("/api/status") { _, _ in
            switch model {
            case let .loaded(embedder):
                let c = embedder.encoder.configuration
                return try json(Status(model: true, kind: "bert", name: "all-MiniLM-L6-v2", message: nil,
                                       layers: c.layers, heads: c.heads, maxTokens: ExplorerAPI.maxTokens))
            case let .gpt2(gpt, _):
                let c = gpt.configuration
                return try json(Status(model: true, kind: "gpt2", name: "GPT-2, \(c.width) wide", message: nil,
                                       layers: c.layers, heads: c.heads, maxTokens: min(ExplorerAPI.maxTokens, c.positions)))
            case let .unavailable(message):
                return try json(Status(model: false, kind: nil, name: nil, message: message, layers: nil, heads: nil, maxTokens: ExplorerAPI.maxTokens))
            }
        }
        router.post("/api/attend") { request, _ in
            let body = try await collect(request)
            return try json(ExplorerAPI.attend(ExplorerAPI.decode(AttendRequest.self, from: body)))
        }
        router.post("/api/explain") { request, _ in
            let body = try await collect(request)
            switch model {
            case let .loaded(embedder):
                return try json(ExplorerAPI.explain(ExplorerAPI.decode(ExplainRequest.self, from: body), model: embedder))
            case let .gpt2(gpt, tokenizer):
                return try json(ExplorerAPI.explain(ExplorerAPI.decode(ExplainRequest.self, from: body), gpt: gpt, tokenizer: tokenizer))
            case let .unavailable(message):
                throw APIError(status: 503, message)
            }
        }
        return router
    }

    /// The server, bound to `host:port` (port 0 picks a free one); `onRunning` gets the page's URL.
    public static func application(
        host: String, port: Int, model: ExplorerModel, onRunning: @escaping @Sendable (String) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        Application(
            router: try router(model: model),
            configuration: .init(address: .hostname(host, port: port), serverName: "attention-explorer"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                let shown = host.contains(":") ? "[\(host)]" : host
                await onRunning("http://\(shown):\(bound)/")
            })
    }

    struct Status: Codable {
        let model: Bool
        /// "bert" (full attention, pairs) or "gpt2" (causal).
        let kind: String?
        let name: String?
        let message: String?
        let layers: Int?
        let heads: Int?
        let maxTokens: Int
    }

    static func collect(_ request: Request) async throws -> Data {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > ExplorerAPI.maxBodyBytes {
            throw APIError(status: 413, "the body has \(length) bytes; the limit is \(ExplorerAPI.maxBodyBytes)")
        }
        // A body that turns out longer while streaming throws NIOTooManyBytesError: JSONErrors answers 413.
        let buffer = try await request.body.collect(upTo: ExplorerAPI.maxBodyBytes)
        return Data(buffer.readableBytesView)
    }

    static func json(_ value: some Encodable) throws -> Response {
        let data: Data
        do {
            data = try JSONEncoder().encode(value)
        } catch {
            throw APIError(status: 500, "the answer could not be written as JSON: \(error)")
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns every error, ours or the framework's (404, 413), into a JSON body with the right status.
struct JSONErrors: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return Self.response(error)
        } catch let error as HTTPError {
            let message = error.body ?? (error.status == .notFound ? "no such page or endpoint: \(request.method) \(request.uri.path)" : error.status.reasonPhrase)
            return Self.response(APIError(status: error.status.code, message))
        } catch is NIOTooManyBytesError {
            return Self.response(APIError(status: 413, "the body is over the limit of \(ExplorerAPI.maxBodyBytes) bytes"))
        } catch {
            context.logger.error("\(request.method) \(request.uri.path): \(error)")
            return Self.response(APIError(status: 500, "internal error: \(error)"))
        }
    }

    static func response(_ error: APIError) -> Response {
        Response(status: .init(code: error.status), headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: error.json)))
    }
}

extension ExplorerServer {
    /// Whether `error`, thrown while the server starts, says the port is taken by another program.
    public static func isAddressInUse(_ error: any Error) -> Bool {
        (error as? IOError)?.errnoCode == EADDRINUSE
    }
}
