import AttentionExplorer
import AttentionModels
import AttentionServing
import Foundation
import Hummingbird
import NIOCore

/// The attention explorer over HTTP: Hummingbird moves the bytes, `ExplorerService` (in
/// `AttentionExplorer`) decides every answer, the page's files included.
public enum ExplorerServer {
    /// The explorer of `model` with the page's files (this module's resources); `chatTemplate`
    /// renders the chat explorer's conversations.
    ///
    /// - Throws: ``ExplorerPageError`` when the page's files cannot be read.
    public static func service(model: ExplorerModel, chatTemplate: ChatTemplate? = nil) throws -> ExplorerService {
        let page = try ExplorerPage.load()
        return ExplorerService(model: model, files: page.files.mapValues {
            ExplorerService.File(contentType: $0.contentType, body: Data($0.body.utf8))
        }, chatTemplate: chatTemplate)
    }

    /// `service`'s answer to `request`. The body is read up to `ExplorerAPI.maxBodyBytes` bytes; a
    /// longer one is answered 413 without reading the rest.
    public static func response(to request: Request, from service: ExplorerService) async -> Response {
        let answer: ExplorerResponse
        do {
            answer = service.respond(method: request.method.rawValue, path: request.uri.path, body: try await collect(request))
        } catch let error as APIError {
            answer = ExplorerResponse(error)
        } catch is NIOTooManyBytesError {
            answer = ExplorerResponse(APIError(status: 413, "the body is over the limit of \(ExplorerAPI.maxBodyBytes) bytes"))
        } catch {
            answer = ExplorerResponse(APIError(status: 400, "the body could not be read: \(error)"))
        }
        var headers: HTTPFields = [.contentType: answer.contentType]
        if answer.contentType.hasPrefix("text/") { headers[.cacheControl] = "no-store" }
        return Response(status: .init(code: answer.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
    }

    /// `api`'s answer to `request` (a path `CompletionService.handles(path:)` accepts): a JSON body, or
    /// server-sent events written as the tokens come. A client that goes away ends the writing,
    /// which drops the events and so cancels the generation.
    public static func response(to request: Request, from api: CompletionService) async -> Response {
        let answer: ServingResponse
        do {
            if let length = request.headers[.contentLength].flatMap(Int.init), length > CompletionService.maxBodyBytes {
                throw OpenAIError(status: 413, "the body has \(length) bytes; the limit is \(CompletionService.maxBodyBytes)")
            }
            let buffer = try await request.body.collect(upTo: CompletionService.maxBodyBytes)
            answer = await api.respond(method: request.method.rawValue, path: request.uri.path, authorization: request.headers[.authorization],
                                       body: Data(buffer.readableBytesView))
        } catch let error as OpenAIError {
            answer = .complete(status: error.status, contentType: "application/json", body: error.json)
        } catch is NIOTooManyBytesError {
            let error = OpenAIError(status: 413, "the body is over the limit of \(CompletionService.maxBodyBytes) bytes")
            answer = .complete(status: 413, contentType: "application/json", body: error.json)
        } catch {
            let error = OpenAIError(status: 400, "the body could not be read: \(error)")
            answer = .complete(status: 400, contentType: "application/json", body: error.json)
        }
        switch answer {
        case let .complete(status, contentType, body):
            return Response(status: .init(code: status), headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        case let .events(events):
            let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                for try await event in events { try await writer.write(ByteBuffer(bytes: event)) }
                try await writer.finish(nil)
            })
        }
    }

    /// The server, bound to `host:port` (port 0 picks a free one): the explorer, and `api` under
    /// `/v1/` and `/health` when given. `onRunning` gets the page's URL.
    ///
    /// - Throws: ``ExplorerPageError`` when the page's files cannot be read.
    public static func application(
        host: String, port: Int, model: ExplorerModel, api: CompletionService? = nil,
        onRunning: @escaping @Sendable (String) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let service = try service(model: model, chatTemplate: api?.served.template)
        return Application(
            responder: CallbackResponder { (request: Request, context: ConnectionContext) in
                await response(to: request, context: context, service: service, api: api)
            },
            configuration: .init(address: .hostname(host, port: port), serverName: "attention-explorer"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                let shown = host.contains(":") ? "[\(host)]" : host
                await onRunning("http://\(shown):\(bound)/")
            })
    }

    /// A request's context that knows its connection, so that an answer still being computed can
    /// stop when the client goes away.
    public struct ConnectionContext: RequestContext {
        /// Hummingbird's state of the request (its logger, allocator, and so on).
        public var coreContext: CoreRequestContextStorage
        /// The client's connection.
        public let channel: any Channel

        /// The context of a request that arrived on `source`'s connection.
        public init(source: ApplicationRequestContextSource) {
            coreContext = .init(source: source)
            channel = source.channel
        }
    }

    /// The server's answer to `request`: `api`'s for the paths it handles (cancelled when the client
    /// goes away before the answer is complete), else the explorer `service`'s.
    public static func response(to request: Request, context: ConnectionContext, service: ExplorerService, api: CompletionService?) async -> Response {
        if let api, CompletionService.handles(path: request.uri.path) {
            return await cancelling(on: context.channel) { await response(to: request, from: api) }
        }
        return await response(to: request, from: service)
    }

    /// `work`'s result, computed in a task that is cancelled when the client goes away. A
    /// non-streamed completion is computed whole before any byte is written, and while the handler
    /// works the server reads nothing more from the connection, so a close would go unseen: a
    /// watcher asks the socket every 100 ms whether the client has closed its end (TCP_INFO's
    /// state, on Linux) or the connection is gone, and cancels the work then. Cancelling drops the
    /// request's events, which frees its slot in the generator at once. (A streamed answer stops
    /// when writing its events fails.)
    static func cancelling<T: Sendable>(on channel: any Channel, _ work: @escaping @Sendable () async -> T) async -> T {
        let task = Task { await work() }
        let watcher = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                if await clientLeft(channel) {
                    task.cancel()
                    return
                }
            }
        }
        defer { watcher.cancel() }
        return await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
    }

    /// Whether `channel`'s client has closed its end of the connection, or the connection is closed.
    static func clientLeft(_ channel: any Channel) async -> Bool {
        guard channel.isActive else { return true }
        #if os(Linux)
        guard let socket = channel as? any SocketOptionProvider, let info = try? await socket.getTCPInfo().get() else { return false }
        // The peer's FIN moves the socket to CLOSE_WAIT; a reset closes it.
        return [UInt8(TCP_CLOSE_WAIT), UInt8(TCP_CLOSE)].contains(info.tcpi_state)
        #else
        return false
        #endif
    }

    static func collect(_ request: Request) async throws -> Data {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > ExplorerAPI.maxBodyBytes {
            throw APIError(status: 413, "the body has \(length) bytes; the limit is \(ExplorerAPI.maxBodyBytes)")
        }
        // A body that turns out longer while streaming throws NIOTooManyBytesError (413).
        let buffer = try await request.body.collect(upTo: ExplorerAPI.maxBodyBytes)
        return Data(buffer.readableBytesView)
    }

    /// Whether `error`, thrown while the server starts, says the port is taken by another program.
    public static func isAddressInUse(_ error: any Error) -> Bool {
        (error as? IOError)?.errnoCode == EADDRINUSE
    }
}
