import Attention
import AttentionModels
import Foundation
import Synchronization

/// The model a ``CompletionService`` serves: the decoder, its tokenizer, its chat template and the
/// tokens that end a text and a turn.
public struct ServedModel: Sendable {
    /// The name `/v1/models` lists and requests give as `model`.
    public let id: String
    /// The decoder.
    public let model: any AutoregressiveModel
    /// Its tokenizer.
    public let tokenizer: any TextTokenizer
    /// The chat template `/v1/chat/completions` renders messages with (nil: that endpoint refuses).
    public let template: ChatTemplate?
    /// The token that ends a text (`/v1/completions` stops there).
    public let endOfText: Int?
    /// The token that ends an answer (`/v1/chat/completions` stops there, and at ``endOfText``).
    public let endOfTurn: Int?

    /// A model served as `id`.
    public init(id: String, model: any AutoregressiveModel, tokenizer: any TextTokenizer, template: ChatTemplate?,
                endOfText: Int?, endOfTurn: Int?) {
        self.id = id
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.endOfText = endOfText
        self.endOfTurn = endOfTurn
    }
}

extension ServedModel {
    /// `model`, loaded from `file`, with the tokenizer, chat template and special tokens of the
    /// file's metadata: the end of a text is `eos_token_id`; the end of a turn is the family's
    /// end-of-turn token (Gemma's `<end_of_turn>`), else the end of a text; a file without a
    /// template (a base model) takes its family's turns, if it has them.
    /// - Throws: `AttentionError.invalidFile` for a tokenizer or template the file cannot give.
    public init(gguf file: GGUF, model: LlamaModel, id: String) throws {
        let family = model.configuration.family
        self.init(id: id, model: model, tokenizer: try ggufTokenizer(file), template: try file.chatTemplate(of: family).map { try ChatTemplate($0) },
                  endOfText: file.endOfText, endOfTurn: file.endOfTurn(of: family))
    }
}

/// An answer of ``CompletionService``: a whole body, or server-sent events.
public enum ServingResponse: Sendable {
    /// A status, a content type and a body.
    case complete(status: Int, contentType: String, body: Data)
    /// `200`, `text/event-stream`: each element is one event's bytes (`data: {...}\n\n`), the last
    /// `data: [DONE]\n\n`. Dropping the stream before its end cancels the generation.
    case events(AsyncThrowingStream<Data, any Error>)
}

/// OpenAI's completion API over a `BatchedGenerator` (AttentionModels), apart from any HTTP server: a request's
/// method, path, `Authorization` header and body in, a ``ServingResponse`` out.
///
/// - `POST /v1/chat/completions`: `messages` rendered through the model's chat template;
/// - `POST /v1/completions`: a `prompt` continued;
/// - `GET /v1/models`: the one model; `GET /health`: `{"status": "ok"}` and the generator's counts;
/// - `GET /metrics`: Prometheus's text format (requests, tokens, the queue, and histograms of the
///   time to the first token, of requests and of steps). `/health` and `/metrics` need no API key.
///
/// Both completions read `model`, `max_tokens` (or `max_completion_tokens`), `temperature` (default
/// 1), `top_p`, `top_k` (0: no cut), `seed`, `stop` (up to 4 strings), `stream` and
/// `stream_options.include_usage`; `n` must be 1, and penalties and log-probabilities are refused
/// rather than ignored. Errors are OpenAI's shape: 400 for a bad body or field (the field named in
/// `param`; a prompt and `max_tokens` beyond the context with both numbers), 401 without the API
/// key, 404 for another model or path, 405 for another method, 413 for a body over
/// ``maxBodyBytes``, 429 when the generator's queue is full, 503 after shutdown.
public final class CompletionService: Sendable {
    /// The model.
    public let served: ServedModel
    /// The generator every request runs on.
    public let generator: BatchedGenerator
    /// The key requests must give as `Authorization: Bearer KEY` (nil: none needed). `/health` needs none.
    public let apiKey: String?
    /// The longest body read, in bytes.
    public static let maxBodyBytes = 1 << 20
    /// The most stop strings a request gives.
    public static let maxStopStrings = 4

    private let log: @Sendable (String) -> Void
    private let requests = Atomic<Int>(0)
    private let metrics: ServingMetrics

    /// The API of `served` on `generator` (which must run `served.model`); `log` gets one line per
    /// request: its id, status, tokens and timings.
    public init(served: ServedModel, generator: BatchedGenerator, apiKey: String? = nil, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.served = served
        self.generator = generator
        self.apiKey = apiKey
        self.log = log
        metrics = ServingMetrics(generator: generator)
    }

    /// Whether `path` is this API's (the rest belongs to the explorer).
    public static func handles(path: String) -> Bool { path.hasPrefix("/v1/") || path == "/health" || path == "/metrics" }

    /// The answer to `method` on `path`. Never throws: a failure is an OpenAI error body.
    public func respond(method: String, path: String, authorization: String?, body: Data) async -> ServingResponse {
        let number = requests.add(1, ordering: .relaxed).newValue
        let endpoint = Self.endpoints[path] == nil ? "other" : path
        do {
            let answer = try await route(method: method.uppercased(), path: path, authorization: authorization, body: body, number: number)
            metrics.request(endpoint, status: 200)
            return answer
        } catch {
            log("request \(number) \(method) \(path) \(error.status): \(error.message)")
            metrics.request(endpoint, status: error.status)
            return .complete(status: error.status, contentType: "application/json", body: error.json)
        }
    }

    /// The paths and the method each answers.
    static let endpoints = ["/v1/chat/completions": "POST", "/v1/completions": "POST", "/v1/models": "GET", "/health": "GET", "/metrics": "GET"]

    private func route(method: String, path: String, authorization: String?, body: Data, number: Int) async throws(OpenAIError) -> ServingResponse {
        guard let verb = Self.endpoints[path] else { throw OpenAIError(status: 404, "no such endpoint: \(method) \(path)", code: "not_found") }
        guard method == verb else { throw OpenAIError(status: 405, "\(path) answers \(verb), not \(method)", code: "method_not_allowed") }
        if path == "/metrics" {
            return .complete(status: 200, contentType: "text/plain; version=0.0.4", body: Data(metrics.page(generator.currentStatistics).utf8))
        }
        if path == "/health" {
            let s = generator.currentStatistics
            return Self.json(Health(status: "ok", model: served.id, running: s.running, queued: s.queued, slots: generator.configuration.slots))
        }
        if let apiKey, authorization != "Bearer \(apiKey)" {
            throw OpenAIError(status: 401, authorization == nil ? "no API key: send Authorization: Bearer KEY" : "the API key is not this server's",
                              code: "invalid_api_key")
        }
        guard body.count <= Self.maxBodyBytes else {
            throw OpenAIError(status: 413, "the body has \(body.count) bytes; the limit is \(Self.maxBodyBytes)")
        }
        switch path {
        case "/v1/models":
            return Self.json(ModelList(data: [.init(id: served.id, created: 0, ownedBy: "swift-attention")]))
        case "/v1/chat/completions":
            let request = try decodeRequest(ChatCompletionRequest.self, from: body)
            return try await start(try job(chat: request, number: number), number: number)
        default:
            let request = try decodeRequest(CompletionRequest.self, from: body)
            return try await start(try job(completion: request, number: number), number: number)
        }
    }

    // MARK: requests to jobs

    /// A validated request: what to generate and how to answer.
    struct Job {
        let chat: Bool
        let id: String
        let prompt: [Int]
        let maxTokens: Int
        let sampling: Sampling
        let stops: [String]
        let stopTokens: Set<Int>
        let stream: Bool
        let includeUsage: Bool
    }

    private func job(chat request: ChatCompletionRequest, number: Int) throws(OpenAIError) -> Job {
        guard let template = served.template else {
            throw OpenAIError(status: 400, "\(served.id) has no chat template (tokenizer.chat_template); use /v1/completions", code: "no_chat_template")
        }
        guard !request.messages.isEmpty else { throw .invalid("messages", "need at least one message") }
        var messages: [ChatTemplate.Message] = []
        for (n, message) in request.messages.enumerated() {
            let roles = ["system": "system", "developer": "system", "user": "user", "assistant": "assistant"]
            guard let role = roles[message.role] else {
                throw .invalid("messages[\(n)].role", "must be system, developer, user or assistant, got '\(message.role)'")
            }
            guard let content = message.content else { throw .invalid("messages[\(n)].content", "is required") }
            messages.append(.init(role: role, content: content.text))
        }
        let text: String
        do {
            text = try template.render(messages, addGenerationPrompt: true)
        } catch {
            throw .invalid("messages", "the chat template cannot render them: \(error)")
        }
        let stopTokens = Set([served.endOfTurn, served.endOfText].compactMap { $0 })
        return try job(chat: true, prompt: served.tokenizer.encode(text), fields: request.fields, stopTokens: stopTokens, number: number)
    }

    private func job(completion request: CompletionRequest, number: Int) throws(OpenAIError) -> Job {
        try job(chat: false, prompt: served.tokenizer.encode(request.prompt), fields: request.fields,
                stopTokens: Set([served.endOfText].compactMap { $0 }), number: number)
    }

    private func job(chat: Bool, prompt: [Int], fields: GenerationFields, stopTokens: Set<Int>, number: Int) throws(OpenAIError) -> Job {
        if let model = fields.model, model != served.id {
            throw OpenAIError(status: 404, "the model '\(model)' does not exist here; this server serves '\(served.id)'", param: "model",
                              code: "model_not_found")
        }
        if let n = fields.n, n != 1 { throw .invalid("n", "only 1 choice per request, got \(n)") }
        if fields.logprobs == true { throw .invalid("logprobs", "log-probabilities are not returned") }
        for (name, value) in [("presence_penalty", fields.presencePenalty), ("frequency_penalty", fields.frequencyPenalty)] {
            if let value, value != 0 { throw .invalid(name, "penalties are not applied; give 0 or leave it out, got \(value)") }
        }
        let temperature = fields.temperature ?? 1
        guard temperature.isFinite, (0...2).contains(temperature) else { throw .invalid("temperature", "must be in 0...2, got \(temperature)") }
        if let p = fields.topP, !(p > 0 && p <= 1) { throw .invalid("top_p", "must be in (0, 1], got \(p)") }
        if let k = fields.topK, k < 0 { throw .invalid("top_k", "must be at least 0 (0: no cut), got \(k)") }
        let stops = fields.stop?.strings ?? []
        guard stops.count <= Self.maxStopStrings else { throw .invalid("stop", "at most \(Self.maxStopStrings) strings, got \(stops.count)") }
        if stops.contains("") { throw .invalid("stop", "a stop string must not be empty") }
        guard !prompt.isEmpty else { throw .invalid(chat ? "messages" : "prompt", "the prompt has no tokens") }
        let context = generator.configuration.capacity
        let name = fields.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens"
        let requested = fields.maxCompletionTokens ?? fields.maxTokens
        if let requested, requested < 1 { throw .invalid(name, "must be at least 1, got \(requested)") }
        guard prompt.count < context else {
            throw OpenAIError.invalid(chat ? "messages" : "prompt", "the prompt is \(prompt.count) tokens; the context holds \(context), answer included",
                                      code: "context_length_exceeded")
        }
        if let requested, requested > context - prompt.count {           // not prompt + requested: that can overflow
            throw OpenAIError.invalid(name, "the prompt's \(prompt.count) tokens and \(name) \(requested) exceed the context of \(context) tokens",
                                      code: "context_length_exceeded")
        }
        let seed = fields.seed.map { UInt64(bitPattern: $0) } ?? UInt64.random(in: .min ... .max)
        let sampling = Sampling(temperature: temperature, topK: fields.topK == 0 ? nil : fields.topK, topP: fields.topP, seed: seed)
        return Job(chat: chat, id: (chat ? "chatcmpl-" : "cmpl-") + String(number), prompt: prompt,
                   maxTokens: requested ?? context - prompt.count, sampling: sampling, stops: stops, stopTokens: stopTokens,
                   stream: fields.stream ?? false, includeUsage: fields.streamOptions?.includeUsage ?? false)
    }

    // MARK: running a job

    private func start(_ job: Job, number: Int) async throws(OpenAIError) -> ServingResponse {
        let events: AsyncThrowingStream<BatchedGenerator.Event, any Error>
        do {
            events = try generator.submit(.init(prompt: job.prompt, maxTokens: job.maxTokens, sampling: job.sampling, stopTokens: job.stopTokens))
        } catch let .queueFull(limit) {
            throw OpenAIError(status: 429, "the server is busy: \(limit) requests are waiting; try again later", code: "queue_full")
        } catch let .invalid(argument, reason) {
            throw OpenAIError(status: 400, "\(argument): \(reason)")
        } catch {
            throw OpenAIError(status: 503, "the server is shutting down", code: "shutting_down")
        }
        let created = Int(Date().timeIntervalSince1970)
        if job.stream {
            let (stream, continuation) = AsyncThrowingStream<Data, any Error>.makeStream()
            let task = Task { [self] in
                do {
                    try await answer(job, events: events, created: created, number: number) { continuation.yield($0) }
                    continuation.yield(Data("data: [DONE]\n\n".utf8))
                    continuation.finish()
                } catch let gone as ClientGone {
                    log("request \(number) \(job.id) 499: \(gone.message)")
                    continuation.finish(throwing: gone)
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
            return .events(stream)
        }
        var body = Data()
        do {
            try await answer(job, events: events, created: created, number: number) { body = $0 }
        } catch let gone as ClientGone {
            // No one reads this answer; it names the outcome in the log and the metrics.
            throw OpenAIError(status: 499, gone.message, code: "client_closed_request")
        } catch {
            throw OpenAIError(status: 500, "the generation failed: \(error)")
        }
        return .complete(status: 200, contentType: "application/json", body: body)
    }

    /// Runs `job`'s events into text and hands `send` each server-sent event (streaming) or the
    /// whole JSON answer.
    private func answer(_ job: Job, events: AsyncThrowingStream<BatchedGenerator.Event, any Error>, created: Int, number: Int,
                        send: (Data) -> Void) async throws {
        var text = AnswerText(stops: job.stops)
        var generated = 0
        let clock = ContinuousClock(), started = clock.now
        var firstToken: Duration?
        var finish = "length"
        func chunk(_ delta: String?, role: Bool = false, reason: String? = nil) {
            let choice = StreamChoice(chat: job.chat, text: delta, role: role, finishReason: reason)
            send(Self.event(StreamChunk(id: job.id, object: job.chat ? "chat.completion.chunk" : "text_completion", created: created,
                                        model: served.id, choices: [choice], usage: nil)))
        }
        if job.stream && job.chat { chunk("", role: true) }
        loop: for try await event in events {
            switch event {
            case let .token(token):
                generated += 1
                if firstToken == nil { firstToken = clock.now - started }
                guard !job.stopTokens.contains(token) else { continue }
                let delta = text.add(try served.tokenizer.bytes(of: [token]))
                if job.stream && !delta.isEmpty { chunk(delta) }
                if text.stopped {
                    finish = "stop"
                    break loop                         // leaving the loop drops the events: the generation stops
                }
            case let .finished(generation):
                finish = generation.stopReason == .endOfText ? "stop" : "length"
                let rest = text.finish()
                if job.stream && !rest.isEmpty { chunk(rest) }
            }
        }
        // A cancelled task's events end early: the client went away (its request is cancelled).
        if Task.isCancelled { throw ClientGone(generated: generated, maxTokens: job.maxTokens) }
        let usage = Usage(promptTokens: job.prompt.count, completionTokens: generated, totalTokens: job.prompt.count + generated)
        if job.stream {
            chunk(nil, reason: finish)
            if job.includeUsage {
                send(Self.event(StreamChunk(id: job.id, object: job.chat ? "chat.completion.chunk" : "text_completion", created: created,
                                            model: served.id, choices: [], usage: usage)))
            }
        } else {
            let choice = CompleteChoice(chat: job.chat, text: text.text, finishReason: finish)
            send(Self.encode(Completion(id: job.id, object: job.chat ? "chat.completion" : "text_completion", created: created, model: served.id,
                                        choices: [choice], usage: usage)))
        }
        let seconds = (clock.now - started).seconds
        metrics.answered(firstToken: firstToken, total: clock.now - started)
        let first = firstToken.map { String(format: "%.3f s", $0.seconds) } ?? "none"
        log("request \(number) \(job.id) 200 prompt \(job.prompt.count) completion \(generated) tokens, first token \(first), "
            + String(format: "%.3f", seconds) + " s in all, finish \(finish)")
    }

    /// The client of a request closed its connection before the answer was complete.
    struct ClientGone: Error {
        let generated: Int, maxTokens: Int
        var message: String { "the client closed the connection after \(generated) of at most \(maxTokens) tokens; the request was cancelled" }
    }

    // MARK: JSON

    static func encode(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)) ?? Data("{}".utf8)
    }

    static func event(_ value: some Encodable) -> Data { Data("data: ".utf8) + encode(value) + Data("\n\n".utf8) }

    static func json(_ value: some Encodable) -> ServingResponse {
        .complete(status: 200, contentType: "application/json", body: encode(value))
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

// MARK: response bodies

struct Health: Encodable { let status: String, model: String, running: Int, queued: Int, slots: Int }

struct ModelList: Encodable {
    struct Model: Encodable {
        let id: String
        var object = "model"
        let created: Int
        let ownedBy: String
        enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by" }
    }
    var object = "list"
    let data: [Model]
}

struct Usage: Encodable {
    let promptTokens: Int, completionTokens: Int, totalTokens: Int
    enum CodingKeys: String, CodingKey { case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens" }
}

/// A choice of a whole answer: `message` for a chat, `text` for a completion.
struct CompleteChoice: Encodable {
    let chat: Bool, text: String, finishReason: String
    enum CodingKeys: String, CodingKey { case index, message, text, logprobs, finishReason = "finish_reason" }
    struct Message: Encodable {
        var role = "assistant"
        let content: String
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(0, forKey: .index)
        if chat { try c.encode(Message(content: text), forKey: .message) } else { try c.encode(text, forKey: .text) }
        try c.encodeNil(forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)
    }
}

/// A choice of a streamed chunk: `delta` for a chat, `text` for a completion; `finish_reason` null until the last.
struct StreamChoice: Encodable {
    let chat: Bool, text: String?, role: Bool, finishReason: String?
    enum CodingKeys: String, CodingKey { case index, delta, text, logprobs, finishReason = "finish_reason" }
    struct Delta: Encodable { let role: String?, content: String? }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(0, forKey: .index)
        if chat { try c.encode(Delta(role: role ? "assistant" : nil, content: text), forKey: .delta) } else { try c.encode(text ?? "", forKey: .text) }
        try c.encodeNil(forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)
    }
}

struct Completion: Encodable { let id: String, object: String, created: Int, model: String, choices: [CompleteChoice], usage: Usage }

struct StreamChunk: Encodable {
    let id: String, object: String, created: Int, model: String, choices: [StreamChoice], usage: Usage?
    enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(object, forKey: .object)
        try c.encode(created, forKey: .created)
        try c.encode(model, forKey: .model)
        try c.encode(choices, forKey: .choices)
        if let usage { try c.encode(usage, forKey: .usage) }
    }
}
