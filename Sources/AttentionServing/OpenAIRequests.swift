import AttentionModels
import Foundation

/// An error as OpenAI's API writes it, `{"error": {"message", "type", "param", "code"}}`, with its
/// HTTP status.
public struct OpenAIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status.
    public let status: Int
    /// What is wrong.
    public let message: String
    /// OpenAI's kind of error: `invalid_request_error`, `authentication_error`, `not_found_error`,
    /// `rate_limit_error`, `server_error`.
    public let type: String
    /// The request field at fault, if one is.
    public let param: String?
    /// A short code (`model_not_found`, `context_length_exceeded`, ...), if one applies.
    public let code: String?

    /// An error of `status` whose `type` follows from it unless given.
    public init(status: Int, _ message: String, param: String? = nil, code: String? = nil, type: String? = nil) {
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        let kind: String = switch status {
        case 401: "authentication_error"
        case 404: "not_found_error"
        case 429: "rate_limit_error"
        case 500...: "server_error"
        default: "invalid_request_error"
        }
        self.type = type ?? kind
    }

    static func invalid(_ param: String, _ message: String, code: String? = nil) -> OpenAIError {
        OpenAIError(status: 400, "\(param): \(message)", param: param, code: code)
    }

    /// `status: message`.
    public var description: String { "\(status): \(message)" }

    /// The JSON body.
    public var json: Data {
        struct Body: Encodable {
            struct Inner: Encodable { let message: String, type: String, param: String?, code: String?
                func encode(to encoder: any Encoder) throws {
                    var c = encoder.container(keyedBy: CodingKeys.self)
                    try c.encode(message, forKey: .message)
                    try c.encode(type, forKey: .type)
                    try c.encode(param, forKey: .param)        // null rather than absent, as OpenAI writes it
                    try c.encode(code, forKey: .code)
                }
                enum CodingKeys: String, CodingKey { case message, type, param, code }
            }
            let error: Inner
        }
        return (try? JSONEncoder().encode(Body(error: .init(message: message, type: type, param: param, code: code))))
            ?? Data(#"{"error":{"message":"error","type":"server_error","param":null,"code":null}}"#.utf8)
    }
}

/// The sampling and stopping fields `/v1/chat/completions` and `/v1/completions` share.
struct GenerationFields: Decodable {
    var model: String?
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var temperature: Double?
    var topP: Double?
    var topK: Int?
    var seed: Int64?
    var stop: Stop?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var n: Int?
    var presencePenalty: Double?
    var frequencyPenalty: Double?
    var logprobs: Bool?

    struct StreamOptions: Decodable {
        var includeUsage: Bool?
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }

    /// `stop`: one string or a list of them.
    struct Stop: Decodable {
        var strings: [String]
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) { strings = [one] } else { strings = try container.decode([String].self) }
        }
    }

    enum CodingKeys: String, CodingKey {
        case model, temperature, seed, stop, stream, n, logprobs
        case maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", topP = "top_p", topK = "top_k"
        case streamOptions = "stream_options", presencePenalty = "presence_penalty", frequencyPenalty = "frequency_penalty"
    }
}

/// `POST /v1/chat/completions`.
struct ChatCompletionRequest: Decodable {
    struct Message: Decodable {
        var role: String
        var content: Content?

        /// A string, or a list of parts of which only `{"type": "text", "text": ...}` is read.
        struct Content: Decodable {
            var text: String
            struct Part: Decodable { var type: String; var text: String? }
            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let string = try? container.decode(String.self) {
                    text = string
                    return
                }
                let parts = try container.decode([Part].self)
                guard parts.allSatisfy({ $0.type == "text" && $0.text != nil }) else {
                    throw DecodingError.dataCorruptedError(in: container, debugDescription: "only text parts are read ({\"type\": \"text\", \"text\": ...})")
                }
                text = parts.compactMap(\.text).joined()
            }
        }
    }

    var messages: [Message]
    var fields: GenerationFields

    enum CodingKeys: String, CodingKey { case messages }
    init(from decoder: any Decoder) throws {
        messages = try decoder.container(keyedBy: CodingKeys.self).decode([Message].self, forKey: .messages)
        fields = try GenerationFields(from: decoder)
    }
}

/// `POST /v1/completions`.
struct CompletionRequest: Decodable {
    var prompt: String
    var fields: GenerationFields

    enum CodingKeys: String, CodingKey { case prompt }
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let one = try? container.decode(String.self, forKey: .prompt) {
            prompt = one
        } else {
            guard let list = try? container.decode([String].self, forKey: .prompt) else {
                _ = try container.decode(String.self, forKey: .prompt)       // throws: missing, null, or not a string
                throw DecodingError.typeMismatch(String.self, .init(codingPath: [CodingKeys.prompt], debugDescription: "not a string"))
            }
            guard list.count == 1 else {
                throw DecodingError.dataCorruptedError(forKey: .prompt, in: container, debugDescription: "one prompt per request, got \(list.count)")
            }
            prompt = list[0]
        }
        fields = try GenerationFields(from: decoder)
    }
}

/// Decodes a request body, naming the field at fault when it cannot.
func decodeRequest<T: Decodable>(_ type: T.Type, from body: Data) throws(OpenAIError) -> T {
    do {
        return try JSONDecoder().decode(T.self, from: body)
    } catch let error as DecodingError {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error {
        case let .keyNotFound(key, context):
            let parent = path(context)
            let name = parent.isEmpty ? key.stringValue : "\(parent).\(key.stringValue)"
            throw OpenAIError.invalid(name, "is required")
        case let .typeMismatch(expected, context):
            throw OpenAIError.invalid(path(context), "expected \(kind(expected))")
        case let .valueNotFound(expected, context):
            throw OpenAIError.invalid(path(context), "expected \(kind(expected)), got null")
        case let .dataCorrupted(context):
            let field = path(context)
            if field.isEmpty {
                // Foundation reports a number too large for its field as invalid JSON, without the field.
                if (try? JSONSerialization.jsonObject(with: body)) != nil {
                    throw OpenAIError(status: 400, "a value does not fit its field (an integer beyond 64 bits, or a fraction where an integer goes?)")
                }
                throw OpenAIError(status: 400, "the body is not JSON: \(context.debugDescription)")
            }
            throw OpenAIError.invalid(field, context.debugDescription)
        @unknown default:
            throw OpenAIError(status: 400, "the body is not a valid request: \(error)")
        }
    } catch {
        throw OpenAIError(status: 400, "the body is not a valid request: \(error)")
    }
}

/// How an error names the JSON type a field needs.
private func kind(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Int.Type, is Int64.Type: "an integer"
    case is Double.Type: "a number"
    case is Bool.Type: "true or false"
    default: "\(type)".hasPrefix("Array") ? "a list" : "an object"
    }
}
