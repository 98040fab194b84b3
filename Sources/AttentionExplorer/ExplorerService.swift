import Foundation
import AttentionModels

/// One answer of the explorer: an HTTP status, a content type and a body.
public struct ExplorerResponse: Sendable, Equatable {
    /// The HTTP status code.
    public let status: Int
    /// The `Content-Type` header.
    public let contentType: String
    /// The body.
    public let body: Data

    /// A response of `status` with `body` of `contentType`.
    public init(status: Int, contentType: String, body: Data) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    /// The body as UTF-8 text.
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// `error` as the JSON body `{"error": ..., "status": ...}` with its status.
    public init(_ error: APIError) {
        self.init(status: error.status, contentType: "application/json", body: error.json)
    }
}

/// Everything the explorer answers, apart from any HTTP server: a request's method, path and body in,
/// a status, content type and body out. `attention serve` hands each request to ``respond(method:path:body:)``
/// (the server module only moves bytes); tests and the fuzz target call it directly.
///
/// - `GET` each of the page's files (``files``);
/// - `GET /api/status` whether the model explorer has its model, and which kind;
/// - `POST /api/attend` ``AttendRequest`` → ``AttendResponse``;
/// - `POST /api/explain` ``ExplainRequest`` → ``ExplainResponse``;
/// - `POST /api/chat/attention` ``ChatAttentionRequest`` → ``ChatAttentionResponse`` (a chat model's).
///
/// Every error is JSON, `{"error": "...", "status": "..."}`, with a 4xx status for a bad request: 400
/// for a body that is not the request, 404 for a path the explorer does not have, 405 for a method a
/// path does not answer, 413 for bodies over ``ExplorerAPI/maxBodyBytes`` and texts over
/// ``ExplorerAPI/maxTokens`` tokens, 503 for `/api/explain` without a model.
public struct ExplorerService: Sendable {
    /// A file of the page: its content type and bytes.
    public struct File: Sendable, Equatable {
        /// The `Content-Type` header it is served with.
        public let contentType: String
        /// The file's bytes.
        public let body: Data

        /// A file served as `contentType`.
        public init(contentType: String, body: Data) {
            self.contentType = contentType
            self.body = body
        }
    }

    /// The model `/api/explain` explains.
    public let model: ExplorerModel
    /// The page's files by the path that serves them (`/`, `/explorer.js`, ...).
    public let files: [String: File]
    /// The chat template of a decoder `model`, for `/api/chat/attention` (nil: that endpoint answers 503).
    public let chatTemplate: ChatTemplate?

    /// The explorer of `model`, serving `files` as its page; `chatTemplate` renders the chat
    /// explorer's conversations.
    public init(model: ExplorerModel, files: [String: File] = [:], chatTemplate: ChatTemplate? = nil) {
        self.model = model
        self.files = files
        self.chatTemplate = chatTemplate
    }

    /// The answer to `method` (`GET`, `POST`, ...) on `path` (without the query string) with `body`.
    /// Never throws: every failure is a JSON error with its status.
    public func respond(method: String, path: String, body: Data) -> ExplorerResponse {
        do {
            return try route(method: method.uppercased(), path: path, body: body)
        } catch {
            return ExplorerResponse(error)
        }
    }

    private func route(method: String, path: String, body: Data) throws(APIError) -> ExplorerResponse {
        guard body.count <= ExplorerAPI.maxBodyBytes else {
            throw APIError(status: 413, "the body has \(body.count) bytes; the limit is \(ExplorerAPI.maxBodyBytes)")
        }
        let allowed: String
        switch path {
        case "/api/attend", "/api/explain", "/api/chat/attention": allowed = "POST"
        case "/api/status": allowed = "GET"
        default:
            guard let file = files[path] else { throw APIError(status: 404, "no such page or endpoint: \(method) \(path)") }
            guard method == "GET" else { throw APIError(status: 405, "\(path) answers GET, not \(method)") }
            return ExplorerResponse(status: 200, contentType: file.contentType, body: file.body)
        }
        guard method == allowed else { throw APIError(status: 405, "\(path) answers \(allowed), not \(method)") }
        switch path {
        case "/api/attend":
            return try Self.json(ExplorerAPI.attend(ExplorerAPI.decode(AttendRequest.self, from: body)))
        case "/api/chat/attention":
            let request = try ExplorerAPI.decode(ChatAttentionRequest.self, from: body)
            guard case let .decoder(decoder, tokenizer, _) = model, let chatTemplate else {
                throw APIError(status: 503, "the chat explorer needs a chat model: attention serve --model FILE.gguf")
            }
            return try Self.json(ExplorerAPI.chatAttention(request, decoder: decoder, tokenizer: tokenizer, template: chatTemplate))
        case "/api/explain":
            let request = try ExplorerAPI.decode(ExplainRequest.self, from: body)
            switch model {
            case let .loaded(embedder): return try Self.json(ExplorerAPI.explain(request, model: embedder))
            case let .gpt2(gpt, tokenizer): return try Self.json(ExplorerAPI.explain(request, gpt: gpt, tokenizer: tokenizer))
            case let .decoder(decoder, tokenizer, _): return try Self.json(ExplorerAPI.explain(request, decoder: decoder, tokenizer: tokenizer))
            case let .unavailable(message): throw APIError(status: 503, message)
            }
        default:
            return try Self.json(model.status)
        }
    }

    private static func json(_ value: some Encodable) throws(APIError) -> ExplorerResponse {
        do {
            return ExplorerResponse(status: 200, contentType: "application/json", body: try JSONEncoder().encode(value))
        } catch {
            throw APIError(status: 500, "the answer could not be written as JSON: \(error)")
        }
    }
}
