import Attention
import AttentionModels
import AttentionServing
import AttentionServer
import AttentionTestSupport
import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle
import Testing

/// OpenAI's completion API on SmolLM2-135M-Instruct's GGUF file: the service's answers and errors,
/// then the same over HTTP with a real server (streaming, and a client that goes away).
@Suite("OpenAI API", .serialized, .timeLimit(.minutes(5)))
struct CompletionAPITests {
    static let file: Result<GGUF, Error> = Result {
        let directory = SmolLM2Store.defaultDirectory()
        try SmolLM2Store.fetch(into: directory) { print($0) }
        return try GGUF(contentsOf: SmolLM2Store.file(in: directory))
    }
    static let served: Result<ServedModel, Error> = Result {
        let gguf = try Self.file.get()
        return try ServedModel(gguf: gguf, model: LlamaModel(gguf: gguf), id: "smollm2")
    }

    /// A service on a generator of `slots` slots of 256 tokens; shut down after `body`.
    static func withService<T>(slots: Int = 4, queueLimit: Int = 8, apiKey: String? = nil,
                               _ body: (CompletionService) async throws -> T) async throws -> T {
        let served = try served.get()
        let generator = try BatchedGenerator(model: served.model, configuration: .init(slots: slots, capacity: 256, queueLimit: queueLimit))
        defer { generator.shutdown() }
        return try await body(CompletionService(served: served, generator: generator, apiKey: apiKey))
    }

    /// The status and JSON object of a complete answer.
    static func call(_ service: CompletionService, _ path: String, _ body: String = "", method: String = "POST",
                     authorization: String? = nil) async throws -> (status: Int, json: [String: Any]) {
        let answer = await service.respond(method: method, path: path, authorization: authorization, body: Data(body.utf8))
        guard case let .complete(status, contentType, data) = answer else {
            Issue.record("\(path): expected a whole answer, got events")
            return (0, [:])
        }
        #expect(contentType == "application/json")
        return (status, try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]))
    }

    /// The events of a streamed answer, each decoded, and whether it ended with `[DONE]`.
    static func events(_ service: CompletionService, _ path: String, _ body: String) async throws -> (chunks: [[String: Any]], done: Bool) {
        let answer = await service.respond(method: "POST", path: path, authorization: nil, body: Data(body.utf8))
        guard case let .events(stream) = answer else {
            Issue.record("\(path): expected events, got a whole answer")
            return ([], false)
        }
        var bytes = Data()
        for try await event in stream { bytes += event }
        return try parse(events: bytes)
    }

    static func parse(events bytes: Data) throws -> (chunks: [[String: Any]], done: Bool) {
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasSuffix("\n\n"))
        var chunks: [[String: Any]] = [], done = false
        for event in text.components(separatedBy: "\n\n") where !event.isEmpty {
            #expect(event.hasPrefix("data: ") && !done, "\(event)")
            let payload = String(event.dropFirst(6))
            if payload == "[DONE]" { done = true; continue }
            chunks.append(try #require(try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any]))
        }
        return (chunks, done)
    }

    /// What `generate` gives for `prompt` (ids), greedy, as text without the stop tokens.
    static func reference(_ ids: [Int], maxTokens: Int, stop: Set<Int>) throws -> (text: String, tokens: Int, stopped: Bool) {
        let served = try served.get()
        let run = try served.model.generate(prompt: ids, maxTokens: maxTokens, endOfText: stop.first)
        return (try served.tokenizer.decode(run.generatedIDs.filter { !stop.contains($0) }), run.generatedIDs.count, run.stopReason == .endOfText)
    }

    static func chatIDs(_ message: String) throws -> [Int] {
        let served = try served.get()
        let template = try #require(served.template)
        return served.tokenizer.encode(try template.render([.init(role: "user", content: message)], addGenerationPrompt: true))
    }

    @Test("A chat completion is generate's greedy answer to the rendered conversation, with usage counts; streamed, the deltas add up to it")
    func chat() async throws {
        let served = try Self.served.get()
        let stop = Set([served.endOfTurn, served.endOfText].compactMap { $0 })
        let ids = try Self.chatIDs("What is the capital of France?")
        let reference = try Self.reference(ids, maxTokens: 24, stop: stop)
        try await Self.withService { service in
            let body = #"{"model": "smollm2", "messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 24, "temperature": 0}"#
            let (status, json) = try await Self.call(service, "/v1/chat/completions", body)
            #expect(status == 200, "\(json)")
            #expect(json["object"] as? String == "chat.completion" && json["model"] as? String == "smollm2")
            let choice = try #require((json["choices"] as? [[String: Any]])?.first)
            let message = try #require(choice["message"] as? [String: Any])
            #expect(message["role"] as? String == "assistant")
            #expect(message["content"] as? String == reference.text)
            #expect(choice["finish_reason"] as? String == (reference.stopped ? "stop" : "length"))
            let usage = try #require(json["usage"] as? [String: Int])
            #expect(usage == ["prompt_tokens": ids.count, "completion_tokens": reference.tokens, "total_tokens": ids.count + reference.tokens])

            let streamed = try await Self.events(service, "/v1/chat/completions",
                                                 body.replacingOccurrences(of: "}", with: #", "stream": true, "stream_options": {"include_usage": true}}"#,
                                                                           options: .backwards, range: body.index(body.endIndex, offsetBy: -1)..<body.endIndex))
            #expect(streamed.done)
            let choices = streamed.chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first }
            let deltas = choices.compactMap { $0["delta"] as? [String: Any] }
            #expect(deltas.first?["role"] as? String == "assistant")
            #expect(deltas.compactMap { $0["content"] as? String }.joined() == reference.text)
            #expect(choices.last?["finish_reason"] as? String == (reference.stopped ? "stop" : "length"))
            #expect(choices.dropLast().allSatisfy { $0["finish_reason"] is NSNull })
            #expect(streamed.chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" && $0["id"] as? String == streamed.chunks[0]["id"] as? String })
            #expect(streamed.chunks.last?["usage"] as? [String: Int] == usage)
        }
    }

    @Test("A text completion continues the prompt; a stop string cuts the text before it and ends with finish_reason stop")
    func completion() async throws {
        let served = try Self.served.get()
        let ids = served.tokenizer.encode("The capital of France is")
        let reference = try Self.reference(ids, maxTokens: 12, stop: [])
        try await Self.withService { service in
            let (status, json) = try await Self.call(service, "/v1/completions", #"{"prompt": "The capital of France is", "max_tokens": 12, "temperature": 0}"#)
            #expect(status == 200, "\(json)")
            let choice = try #require((json["choices"] as? [[String: Any]])?.first)
            #expect(choice["text"] as? String == reference.text && choice["finish_reason"] as? String == "length")
            #expect(json["object"] as? String == "text_completion")

            // Cut at the first stop string found in the reference's text, from the second word on.
            let words = reference.text.split(separator: " ")
            let stop = String(try #require(words.dropFirst().first))
            let cut = try #require(reference.text.range(of: stop))
            let expected = String(reference.text[..<cut.lowerBound])
            for stream in [false, true] {
                let body = #"{"prompt": "The capital of France is", "max_tokens": 12, "temperature": 0, "stop": ["\#(stop)", "never appears"], "stream": \#(stream)}"#
                if stream {
                    let events = try await Self.events(service, "/v1/completions", body)
                    let choices = events.chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first }
                    #expect(choices.compactMap { $0["text"] as? String }.joined() == expected)
                    #expect(choices.last?["finish_reason"] as? String == "stop" && events.done)
                } else {
                    let (_, json) = try await Self.call(service, "/v1/completions", body)
                    let choice = try #require((json["choices"] as? [[String: Any]])?.first)
                    #expect(choice["text"] as? String == expected && choice["finish_reason"] as? String == "stop")
                }
            }
        }
    }

    @Test("Every bad field gets a 400 in OpenAI's shape naming it; another model 404, a wrong path 404, a wrong method 405")
    func errors() async throws {
        try await Self.withService { service in
            let chat = #""messages": [{"role": "user", "content": "hi"}]"#
            let cases: [(String, String, Int, String?)] = [
                ("/v1/chat/completions", "not json", 400, nil),
                ("/v1/chat/completions", "{}", 400, "messages"),
                ("/v1/chat/completions", #"{"messages": []}"#, 400, "messages"),
                ("/v1/chat/completions", #"{"messages": [{"role": "robot", "content": "hi"}]}"#, 400, "messages[0].role"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user"}]}"#, 400, "messages[0].content"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": 5}]}"#, 400, "messages[0].content"),
                ("/v1/chat/completions", #"{\#(chat), "model": "gpt-4"}"#, 404, "model"),
                ("/v1/chat/completions", #"{\#(chat), "max_tokens": 0}"#, 400, "max_tokens"),
                ("/v1/chat/completions", #"{\#(chat), "max_tokens": -5}"#, 400, "max_tokens"),
                ("/v1/chat/completions", #"{\#(chat), "max_tokens": 1000}"#, 400, "max_tokens"),
                ("/v1/chat/completions", #"{\#(chat), "max_tokens": 9223372036854775807}"#, 400, "max_tokens"),
                ("/v1/chat/completions", #"{\#(chat), "max_completion_tokens": 1000}"#, 400, "max_completion_tokens"),
                ("/v1/chat/completions", #"{\#(chat), "max_tokens": "ten"}"#, 400, "max_tokens"),
                ("/v1/chat/completions", #"{\#(chat), "max_tokens": 1.5}"#, 400, nil),
                ("/v1/chat/completions", #"{\#(chat), "max_tokens": 9223372036854775808}"#, 400, nil),
                ("/v1/chat/completions", #"{\#(chat), "temperature": 2.5}"#, 400, "temperature"),
                ("/v1/chat/completions", #"{\#(chat), "temperature": -1}"#, 400, "temperature"),
                ("/v1/chat/completions", #"{\#(chat), "top_p": 0}"#, 400, "top_p"),
                ("/v1/chat/completions", #"{\#(chat), "top_p": 1.5}"#, 400, "top_p"),
                ("/v1/chat/completions", #"{\#(chat), "top_k": -1}"#, 400, "top_k"),
                ("/v1/chat/completions", #"{\#(chat), "n": 2}"#, 400, "n"),
                ("/v1/chat/completions", #"{\#(chat), "logprobs": true}"#, 400, "logprobs"),
                ("/v1/chat/completions", #"{\#(chat), "presence_penalty": 0.5}"#, 400, "presence_penalty"),
                ("/v1/chat/completions", #"{\#(chat), "stop": ["a", "b", "c", "d", "e"]}"#, 400, "stop"),
                ("/v1/chat/completions", #"{\#(chat), "stop": [""]}"#, 400, "stop"),
                ("/v1/chat/completions", #"{\#(chat), "stop": 7}"#, 400, "stop"),
                ("/v1/chat/completions", #"{\#(chat), "seed": "x"}"#, 400, "seed"),
                ("/v1/chat/completions", #"{\#(chat), "stream": "yes"}"#, 400, "stream"),
                ("/v1/completions", #"{"prompt": 5}"#, 400, "prompt"),
                ("/v1/completions", #"{"prompt": ["a", "b"]}"#, 400, "prompt"),
                ("/v1/completions", #"{"prompt": ""}"#, 400, "prompt"),
                ("/v1/completions", #"{"prompt": "\#(String(repeating: "word ", count: 300))"}"#, 400, "prompt"),
                ("/v1/completions", #"{"max_tokens": 3}"#, 400, "prompt"),
            ]
            for (path, body, status, param) in cases {
                let (got, json) = try await Self.call(service, path, body)
                #expect(got == status, "\(body): \(json)")
                let error = try #require(json["error"] as? [String: Any], "\(body): \(json)")
                #expect(Set(error.keys) == ["message", "type", "param", "code"], "\(body): \(error)")
                #expect((error["message"] as? String)?.isEmpty == false)
                #expect(error["type"] as? String == (status == 404 ? "not_found_error" : "invalid_request_error"))
                if let param { #expect(error["param"] as? String == param, "\(body): \(error)") }
            }
            // The context: both numbers named.
            let (_, long) = try await Self.call(service, "/v1/completions", #"{"prompt": "hi", "max_tokens": 300}"#)
            let error = try #require(long["error"] as? [String: Any])
            let message = try #require(error["message"] as? String)
            #expect(message.contains("300") && message.contains("256"))
            #expect(error["code"] as? String == "context_length_exceeded")
            #expect(try await Self.call(service, "/v1/nothing").status == 404)
            #expect(try await Self.call(service, "/v1/chat/completions", method: "GET").status == 405)
            #expect(try await Self.call(service, "/v1/models", method: "POST").status == 405)
            // Still serving.
            #expect(try await Self.call(service, "/v1/completions", #"{"prompt": "hi", "max_tokens": 2}"#).status == 200)
        }
    }

    @Test("Models and health; an API key is required when set (401 otherwise) but not for /health; a full queue is 429")
    func modelsKeysAndQueue() async throws {
        try await Self.withService(slots: 1, queueLimit: 1, apiKey: "sesame") { service in
            let (status, models) = try await Self.call(service, "/v1/models", method: "GET", authorization: "Bearer sesame")
            #expect(status == 200 && models["object"] as? String == "list")
            #expect((models["data"] as? [[String: Any]])?.map { $0["id"] as? String } == ["smollm2"])
            #expect(try await Self.call(service, "/health", method: "GET").json["status"] as? String == "ok")
            for authorization in [nil, "Bearer wrong", "sesame"] {
                let (status, json) = try await Self.call(service, "/v1/models", method: "GET", authorization: authorization)
                #expect(status == 401 && (json["error"] as? [String: Any])?["type"] as? String == "authentication_error")
            }
            // One request runs, one waits, the third is refused. The generator waits after each step
            // until the test ends, so the first is still running when the others come, however slow
            // the machine is.
            let gate = StepGate()
            service.generator.observeSteps { _ in gate.hold() }
            defer {
                service.generator.observeSteps { _ in }
                gate.allow()
            }
            let long = #"{"prompt": "Once upon a time", "max_tokens": 200, "stream": true}"#
            let first = await service.respond(method: "POST", path: "/v1/completions", authorization: "Bearer sesame", body: Data(long.utf8))
            while service.generator.currentStatistics.running == 0 { try await Task.sleep(for: .milliseconds(2)) }
            let second = await service.respond(method: "POST", path: "/v1/completions", authorization: "Bearer sesame", body: Data(long.utf8))
            let (busy, json) = try await Self.call(service, "/v1/completions", long, authorization: "Bearer sesame")
            #expect(busy == 429 && (json["error"] as? [String: Any])?["type"] as? String == "rate_limit_error", "\(json)")
            _ = (first, second)
        }
    }

    @Test("/metrics counts requests by endpoint and status, the tokens of every step, and records the time to the first token and the steps")
    func metrics() async throws {
        try await Self.withService(apiKey: "sesame") { service in
            for _ in 0..<2 {
                #expect(try await Self.call(service, "/v1/completions", #"{"prompt": "Hello", "max_tokens": 5}"#, authorization: "Bearer sesame").status == 200)
            }
            #expect(try await Self.call(service, "/v1/completions", #"{"prompt": "Hello", "max_tokens": 0}"#, authorization: "Bearer sesame").status == 400)
            let answer = await service.respond(method: "GET", path: "/metrics", authorization: nil, body: Data())
            guard case let .complete(status, contentType, body) = answer else { Issue.record("no page"); return }
            #expect(status == 200 && contentType.hasPrefix("text/plain"))
            let lines = String(decoding: body, as: UTF8.self).split(separator: "\n").map(String.init)
            func value(_ prefix: String) -> Double? { lines.first { $0.hasPrefix(prefix + " ") }.flatMap { Double($0.split(separator: " ").last!) } }
            #expect(value(#"attention_requests_total{endpoint="/v1/completions",status="200"}"#) == 2, "\(lines)")
            #expect(value(#"attention_requests_total{endpoint="/v1/completions",status="400"}"#) == 1)
            #expect(value("attention_generated_tokens_total") == 10)
            let promptTokens = try Self.served.get().tokenizer.encode("Hello").count
            #expect(value("attention_prompt_tokens_total") == Double(2 * promptTokens))
            #expect(value("attention_time_to_first_token_seconds_count") == 2)
            #expect(value("attention_request_duration_seconds_count") == 2)
            #expect((value("attention_step_duration_seconds_count") ?? 0) >= 5)
            #expect(value("attention_queue_length") == 0 && value("attention_running_requests") == 0)
        }
    }

    @Test("Over HTTP: a streamed answer arrives as server-sent events; a client that goes away frees its slot at once")
    func http() async throws {
        let served = try Self.served.get()
        let generator = try BatchedGenerator(model: served.model, configuration: .init(slots: 2, capacity: 1024))
        defer { generator.shutdown() }
        let service = CompletionService(served: served, generator: generator)
        try await LiveExplorer.serve(model: .unavailable("no explorer model in this test"), api: service) { base in
            let port = try #require(base.port)
            let answer = try await LoopbackHTTP.request(
                port: port, "POST", "/v1/completions", body: Data(#"{"prompt": "The capital of France is", "max_tokens": 5, "temperature": 0, "stream": true}"#.utf8))
            #expect(answer.status == 200 && answer.headers["content-type"]?.hasPrefix("text/event-stream") == true)
            let events = try Self.parse(events: answer.body)
            #expect(events.done && events.chunks.count == 6)

            // A raw connection that asks for 1,000 tokens, reads the first event, and closes.
            let (before, statistics) = try await Self.leave(#"{"prompt": "Once upon a time", "max_tokens": 1000, "stream": true}"#, port: port,
                                                            generator: generator, readingUntil: "data: ")
            #expect(statistics.running == 0)
            #expect(statistics.generatedTokens < before + 500, "the generation went on after the client left: \(statistics)")
        }
    }

    @Test("Over HTTP: a client that goes away before its whole (non-streamed) answer frees its slot at once; the request counts as 499")
    func httpNonStreamedDisconnect() async throws {
        let served = try Self.served.get()
        let generator = try BatchedGenerator(model: served.model, configuration: .init(slots: 2, capacity: 1024))
        defer { generator.shutdown() }
        let service = CompletionService(served: served, generator: generator)
        try await LiveExplorer.serve(model: .unavailable("no explorer model in this test"), api: service) { base in
            let port = try #require(base.port)
            let (before, statistics) = try await Self.leave(#"{"prompt": "Once upon a time", "max_tokens": 1000}"#, port: port, generator: generator)
            #expect(statistics.running == 0)
            #expect(statistics.generatedTokens < before + 500, "the generation went on after the client left: \(statistics)")
            let metrics = try await LoopbackHTTP.request(port: port, "GET", "/metrics")
            #expect(String(decoding: metrics.body, as: UTF8.self).contains(#"attention_requests_total{endpoint="/v1/completions",status="499"} 1"#))
        }
    }

    /// Sends `body` to `/v1/completions` on a raw connection (and reads its answer up to `marker`, if
    /// given), lets the request take six steps, and closes the connection. The generator waits after
    /// those six until the client has gone, so that the request cannot run to its end first however
    /// long this test's task waits for a thread. Returns the tokens generated before the request, and
    /// the generator's counts once no request runs (or after 20 s).
    static func leave(_ body: String, port: Int, generator: BatchedGenerator, readingUntil marker: String? = nil) async throws
        -> (before: Int, after: BatchedGenerator.Statistics) {
        let gate = StepGate()
        generator.observeSteps { _ in gate.hold() }
        gate.allow(6)
        let before = generator.currentStatistics.generatedTokens
        let socket = try LoopbackConnection(port: port)
        try socket.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        if let marker { #expect(try socket.receive(until: marker).hasPrefix("HTTP/1.1 200")) }
        let clock = ContinuousClock(), opened = clock.now
        while generator.currentStatistics.generatedTokens < before + 6 && clock.now - opened < .seconds(60) { try await Task.sleep(for: .milliseconds(5)) }
        #expect(generator.currentStatistics.generatedTokens >= before + 6, "the raw request did not take its six steps")
        socket.close()
        generator.observeSteps { _ in }
        gate.allow()
        let closed = clock.now
        while generator.currentStatistics.running > 0 && clock.now - closed < .seconds(20) { try await Task.sleep(for: .milliseconds(10)) }
        return (before, generator.currentStatistics)
    }

    @Test("Every committed fuzz seed of the API (Fuzz/corpus/openai) gets a 200 (JSON, or events ending [DONE]) or a 4xx, as the fuzz target checks")
    func fuzzSeeds() async throws {
        let served = try Self.served.get()
        let generator = try BatchedGenerator(model: served.model, configuration: .init(slots: 2, capacity: 256))
        defer { generator.shutdown() }
        let service = CompletionService(served: served, generator: generator)
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus/openai")
        var answered = 0, refused = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted() {
            let data = try Data(contentsOf: corpus.appendingPathComponent(name))
            guard let first = data.first else { continue }
            let path = first % 2 == 0 ? "/v1/chat/completions" : "/v1/completions"
            switch await service.respond(method: "POST", path: path, authorization: nil, body: data.dropFirst()) {
            case let .complete(status, _, body):
                if status == 200 {
                    #expect((try? JSONSerialization.jsonObject(with: body)) != nil, "\(name)")
                    answered += 1
                } else {
                    #expect((400..<500).contains(status), "\(name): \(status) \(String(decoding: body, as: UTF8.self))")
                    refused += 1
                }
            case let .events(events):
                var all = Data()
                for try await event in events { all += event }
                #expect(String(decoding: all, as: UTF8.self).hasSuffix("data: [DONE]\n\n"), "\(name)")
                answered += 1
            }
        }
        #expect(answered >= 5 && refused >= 3, "answered \(answered), refused \(refused)")
    }

    @Test("Answer text: whole characters only, a stop string held back across tokens and never sent, text that only began one sent")
    func answerText() {
        var text = AnswerText(stops: ["END", "é!"])
        #expect(text.add(Array("Hello E".utf8)) == "Hello ")            // "E" may begin "END"
        #expect(text.add(Array("x".utf8)) == "Ex")                      // it did not
        #expect(text.add([0xC3]) == "")                                 // half of "é"
        #expect(text.add([0xA9]) == "")                                 // "é" may begin "é!"
        #expect(text.add(Array(" EN".utf8)) == "é ")
        #expect(text.add(Array("D and more".utf8)) == "" && text.stopped)
        #expect(text.text == "Hello Exé " && text.finish() == "")
        var plain = AnswerText(stops: [])
        #expect(plain.add([0xE2, 0x82]) == "" && plain.add([0xAC, 0x41]) == "€A")
        #expect(plain.add([0xF0]) == "" && plain.finish() == "\u{FFFD}")
    }
}
