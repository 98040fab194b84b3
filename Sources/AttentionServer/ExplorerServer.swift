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
            responder: CallbackResponder { (request: Request, _: BasicRequestContext) in
                if let api, CompletionService.handles(path: request.uri.path) { return await response(to: request, from: api) }
                return await response(to: request, from: service)
            },
            configuration: .init(address: .hostname(host, port: port), serverName: "attention-explorer"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                let shown = host.contains(":") ? "[\(host)]" : host
                await onRunning("http://\(shown):\(bound)/")
            })
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
