import AttentionExplorer
import AttentionModels
import Foundation
import Testing

extension ExplorerService {
    func get(_ path: String) -> ExplorerResponse { respond(method: "GET", path: path, body: Data()) }
    func post(_ path: String, _ json: String) -> ExplorerResponse { respond(method: "POST", path: path, body: Data(json.utf8)) }
}

/// The explorer's HTTP API through Hummingbird's test client: answers against a hand computation, and a
/// JSON 4xx for every kind of bad request.
@Suite("Explorer API")
struct ExplorerServiceTests {
    static let noModel = ExplorerModel.unavailable("no model in this test")

    static func post(_ client: ExplorerService, _ uri: String, _ json: String) -> ExplorerResponse {
        client.post(uri, json)
    }

    struct ErrorBody: Decodable { let error: String; let status: String }

    static func error(_ response: ExplorerResponse) throws -> ErrorBody {
        #expect(response.contentType == "application/json")
        return try JSONDecoder().decode(ErrorBody.self, from: response.body)
    }

    @Test("attend: weights, output and log-sum-exp equal a hand computation")
    func attend() throws {
        let client = ExplorerService(model: Self.noModel)
        let response = Self.post(client, "/api/attend", #"""
            {"query": [[1, 0], [0, 2]], "key": [[1, 0], [0, 1], [1, 1]], "value": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "scale": 0.5}
            """#)
        #expect(response.status == 200)
        let r = try JSONDecoder().decode(AttendResponse.self, from: response.body)
        // Scores scale·q·k: query 0 → [0.5, 0, 0.5], query 1 → [0, 1, 1].
        for (i, scores) in [[0.5, 0.0, 0.5], [0.0, 1.0, 1.0]].enumerated() {
            let sum = scores.map(exp).reduce(0, +)
            let expected = scores.map { exp($0) / sum }
            for j in 0..<3 {
                #expect(abs(r.weights[i][j] - expected[j]) < 1e-12)
                #expect(abs(r.output[i][j] - expected[j]) < 1e-12)  // the values are the identity
            }
            #expect(abs((r.logSumExp[i] ?? .nan) - log(sum)) < 1e-12)
        }
    }

    @Test("attend: causal and window masks; a query that sees no key gets zeros and a null log-sum-exp")
    func masks() throws {
        let client = ExplorerService(model: Self.noModel)
        // Bottom-right causal with 3 queries over 2 keys: query 0 sees nothing, query 1 key 0, query 2 both.
        let causal = Self.post(client, "/api/attend", #"{"query": [[1], [1], [1]], "key": [[1], [2]], "value": [[1], [3]], "causal": true}"#)
        #expect(causal.status == 200)
        let c = try JSONDecoder().decode(AttendResponse.self, from: causal.body)
        #expect(c.weights[0] == [0, 0] && c.output[0] == [0] && c.logSumExp[0] == nil)
        #expect(c.weights[1] == [1, 0] && c.output[1] == [1])
        #expect(abs(c.weights[2].reduce(0, +) - 1) < 1e-12 && c.weights[2][1] > c.weights[2][0])
        // Window [0, 0]: each query sees only its own position.
        let window = Self.post(client, "/api/attend", #"{"query": [[1], [1]], "key": [[1], [2]], "value": [[5], [7]], "window": [0, 0]}"#)
        let w = try JSONDecoder().decode(AttendResponse.self, from: window.body)
        #expect(w.weights == [[1, 0], [0, 1]] && w.output == [[5], [7]])
    }

    @Test("Bad requests get a 4xx JSON error that says what is wrong", arguments: [
        (#"{"query": [[1, 0], [1]], "key": [[1, 0]], "value": [[1]]}"#, 400, "row 1"),
        (#"{"query": [[1, 0]], "key": [[1, 0, 0]], "value": [[1]]}"#, 400, "key"),
        (#"{"query": [[1, 0]], "key": [[1, 0]], "value": [[1], [2]]}"#, 400, "value"),
        (#"{"query": [], "key": [[1]], "value": [[1]]}"#, 400, "query"),
        (#"{"key": [[1]], "value": [[1]]}"#, 400, "missing field 'query'"),
        (#"{"query": [[1]], "key": [[1]], "value": [["one"]]}"#, 400, "value"),
        (#"{"query": [[1]], "key": [[1]], "value": [[1]], "window": [1]}"#, 400, "window"),
        (#"{"query": [[1]], "key": [[1]], "value": [[1]], "window": [-1, 0]}"#, 400, "window"),
        (#"{"query": [[1e200]], "key": [[1e200], [1]], "value": [[1], [2]]}"#, 400, "overflow"),
        (#"{"query": [[1]], "key": [[1]], "value": [[1]], "scale": 1e309}"#, 400, "JSON"),
        (#"{"query": [[1]], "#, 400, "JSON"),
    ])
    func badRequests(body: String, status: Int, mentions: String) throws {
        let client = ExplorerService(model: Self.noModel)
        let response = Self.post(client, "/api/attend", body)
        #expect(response.status == status)
        let e = try Self.error(response)
        #expect(e.error.contains(mentions), "\(e.error)")
        #expect(e.status == String(status))
    }

    @Test("Too much: bodies over 1 MiB (413), too many weights (400), unknown endpoints (404), the model missing (503)")
    func limits() throws {
        let client = ExplorerService(model: Self.noModel)
        let big = "{\"query\": [[" + Array(repeating: "1", count: 600_000).joined(separator: ",") + "]]}"
        let tooLarge = Self.post(client, "/api/attend", big)
        #expect(tooLarge.status == 413)
        #expect(try Self.error(tooLarge).error.contains("1048576"))

        let rows = "[" + Array(repeating: "[1]", count: 1100).joined(separator: ",") + "]"
        let tooMany = Self.post(client, "/api/attend", "{\"query\": \(rows), \"key\": \(rows), \"value\": \(rows)}")
        #expect(tooMany.status == 400)
        #expect(try Self.error(tooMany).error.contains("weights"))

        let missing = client.get("/api/nothing")
        #expect(missing.status == 404)
        #expect(try Self.error(missing).error.contains("/api/nothing"))

        let explain = Self.post(client, "/api/explain", #"{"text": "hello"}"#)
        #expect(explain.status == 503)
        #expect(try Self.error(explain).error == "no model in this test")

        let status = client.get("/api/status")
        #expect(status.text.contains("\"model\":false"))
    }

    @Test("Each path answers its one method (405 otherwise); the page's files are served as given; the body limit holds before routing")
    func routing() throws {
        let page = ExplorerService.File(contentType: "text/html; charset=utf-8", body: Data("<p>page</p>".utf8))
        let service = ExplorerService(model: Self.noModel, files: ["/": page])
        let root = service.get("/")
        #expect(root.status == 200 && root.contentType == page.contentType && root.body == page.body)
        #expect(service.respond(method: "get", path: "/", body: Data()).status == 200)
        for (method, path, allowed) in [("POST", "/", "GET"), ("GET", "/api/attend", "POST"), ("DELETE", "/api/explain", "POST"),
                                        ("POST", "/api/status", "GET")] {
            let response = service.respond(method: method, path: path, body: Data())
            #expect(response.status == 405, "\(method) \(path)")
            #expect(try Self.error(response).error == "\(path) answers \(allowed), not \(method)")
        }
        let missing = service.get("/explorer.js")
        #expect(missing.status == 404)
        #expect(try Self.error(missing).error == "no such page or endpoint: GET /explorer.js")
        let huge = service.respond(method: "GET", path: "/nothing", body: Data(count: ExplorerAPI.maxBodyBytes + 1))
        #expect(huge.status == 413)
        #expect(try Self.error(huge).error == "the body has 1048577 bytes; the limit is 1048576")
    }
}

/// `/api/explain` on the real model, installed as `attention model fetch` installs it if it is not there.
@Suite("Explorer API with the model", .serialized)
struct ExplorerModelTests {
    static let model: Result<SentenceEmbedder, Error> = Result {
        let directory = ModelStore.defaultDirectory()
        try ModelStore.fetch(into: directory) { print($0) }
        return try SentenceEmbedder(directory: directory)
    }

    func explain(_ json: String) throws -> (ExplorerResponse, ExplainResponse?) {
        let response = ExplorerService(model: .loaded(try Self.model.get())).post("/api/explain", json)
        let decoded = response.status == 200 ? try JSONDecoder().decode(ExplainResponse.self, from: response.body) : nil
        return (response, decoded)
    }

    @Test("Tokens, segments of a pair, and attention [layer][head][query][key] whose rows sum to 1")
    func pair() throws {
        let (response, decoded) = try explain(#"{"text": "The cat sat.", "pair": "It was tired."}"#)
        #expect(response.status == 200)
        let r = try #require(decoded)
        #expect(r.tokens == ["[CLS]", "the", "cat", "sat", ".", "[SEP]", "it", "was", "tired", ".", "[SEP]"])
        #expect(r.segments == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
        let attention = try #require(r.attention).nested
        #expect(attention.count == 6 && attention.allSatisfy { $0.count == 12 })
        for layer in attention { for head in layer { for row in head {
            #expect(row.count == r.tokens.count && abs(row.reduce(0, +) - 1) < 2e-3)
        } } }
        #expect(r.vectors == nil)
    }

    @Test("One head's query and key vectors reproduce its weights")
    func vectors() throws {
        let (_, decoded) = try explain(#"{"text": "Attention is a weighted average.", "layer": 3, "head": 5}"#)
        let r = try #require(decoded)
        let v = try #require(r.vectors)
        #expect(v.layer == 3 && v.head == 5 && v.queries.count == r.tokens.count && v.queries[0].count == 32)
        for i in 0..<r.tokens.count {
            let scores = v.keys.map { k in v.scale * zip(v.queries[i], k).reduce(0) { $0 + $1.0 * $1.1 } }
            let m = scores.max() ?? 0
            let sum = scores.reduce(0) { $0 + exp($1 - m) }
            for j in 0..<r.tokens.count {
                #expect(abs(exp(scores[j] - m) / sum - (r.attention?.weight(layer: 2, head: 4, query: i, key: j) ?? -1)) < 1e-3)
            }
        }
    }

    @Test("Texts over 512 tokens, empty texts and bad heads are refused", arguments: [
        ("{\"text\": \"" + Array(repeating: "word", count: 511).joined(separator: " ") + "\"}", 413, "513 tokens"),
        (#"{"text": "   "}"#, 400, "empty"),
        (#"{"text": "hello", "layer": 7, "head": 1}"#, 400, "layer must be in 1...6"),
        (#"{"text": "hello", "layer": 1}"#, 400, "both"),
    ])
    func refused(json: String, status: Int, mentions: String) throws {
        let (response, _) = try explain(json)
        #expect(response.status == status)
        #expect(try ExplorerServiceTests.error(response).error.contains(mentions))
    }
}

/// `/api/status` and `/api/explain` serving a GPT-2 folder (the fixture of scripts/make-gpt2-fixtures.py:
/// 2 layers × 4 heads, 64 wide, 64 positions).
@Suite("Explorer API with a GPT-2")
struct ExplorerGPTTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gpt2")

    func request(_ uri: String, _ json: String? = nil) -> ExplorerResponse {
        let model = ExplorerModel.load(from: Self.directory)
        if case let .unavailable(message) = model { Issue.record("the fixture did not load: \(message)") }
        let service = ExplorerService(model: model)
        return json.map { service.post(uri, $0) } ?? service.get(uri)
    }

    func explain(_ json: String) throws -> ExplainResponse {
        let response = request("/api/explain", json)
        #expect(response.status == 200, "\(response.text)")
        return try JSONDecoder().decode(ExplainResponse.self, from: response.body)
    }

    @Test("The status names a causal GPT-2 with the folder's layers, heads and positions")
    func status() throws {
        let body = request("/api/status").text
        for part in [#""model":true"#, #""kind":"gpt2""#, #""layers":2"#, #""heads":4"#, #""maxTokens":64"#] {
            #expect(body.contains(part), "\(body)")
        }
    }

    @Test("Attention is causal: each row sums to 1 over the token and those before it, zero after")
    func causal() throws {
        let r = try explain(#"{"text": "The cat sat on the mat."}"#)
        let t = r.tokens.count
        #expect(t > 3 && r.segments == [Int](repeating: 0, count: t))
        let attention = try #require(r.attention).nested
        #expect(attention.count == 2 && attention.allSatisfy { $0.count == 4 })
        for layer in attention { for head in layer { for (i, row) in head.enumerated() {
            #expect(row.count == t && abs(row.reduce(0, +) - 1) < 2e-3)
            #expect(row[(i + 1)...].allSatisfy { $0 == 0 }, "row \(i) reads a later token")
        } } }
    }

    @Test("One head's query and key vectors reproduce its causal weights")
    func vectors() throws {
        let r = try explain(#"{"text": "Attention is a weighted average.", "layer": 2, "head": 3}"#)
        let v = try #require(r.vectors)
        #expect(v.layer == 2 && v.head == 3 && v.queries.count == r.tokens.count && v.queries[0].count == 16)
        for i in 0..<r.tokens.count {
            let scores = v.keys[...i].map { k in v.scale * zip(v.queries[i], k).reduce(0) { $0 + $1.0 * $1.1 } }
            let m = scores.max() ?? 0
            let sum = scores.reduce(0) { $0 + exp($1 - m) }
            for j in 0...i { #expect(abs(exp(scores[j] - m) / sum - (r.attention?.weight(layer: 1, head: 2, query: i, key: j) ?? -1)) < 1e-3) }
        }
    }

    @Test("A pair, a text beyond the model's positions and a layer it lacks are refused", arguments: [
        (#"{"text": "hello", "pair": "there"}"#, 400, "one text"),
        ("{\"text\": \"" + String(repeating: "x ", count: 200) + "\"}", 413, "the limit is 64"),
        (#"{"text": "hello", "layer": 3, "head": 1}"#, 400, "layer must be in 1...2"),
    ])
    func refused(json: String, status: Int, mentions: String) throws {
        let response = request("/api/explain", json)
        #expect(response.status == status)
        #expect(try ExplorerServiceTests.error(response).error.contains(mentions))
    }
}

/// `/api/status` and `/api/explain` serving a decoder from a GGUF file: SmolLM2-135M-Instruct (30 layers,
/// 9 query heads over 3 key/value heads), installed as `attention model fetch smollm2` installs it.
@Suite("Explorer API with a GGUF decoder", .serialized)
struct ExplorerDecoderTests {
    static let model: Result<ExplorerModel, Error> = Result {
        let directory = SmolLM2Store.defaultDirectory()
        try SmolLM2Store.fetch(into: directory) { print($0) }
        let model = ExplorerModel.load(gguf: SmolLM2Store.file(in: directory))
        if case let .unavailable(message) = model { Issue.record("SmolLM2 did not load: \(message)") }
        return model
    }

    func request(_ uri: String, _ json: String? = nil) throws -> ExplorerResponse {
        let service = ExplorerService(model: try Self.model.get())
        return json.map { service.post(uri, $0) } ?? service.get(uri)
    }

    @Test("The status names the file, a causal decoder, and the key/value head each query head reads")
    func status() throws {
        let body = try request("/api/status").text
        for part in [#""model":true"#, #""kind":"decoder""#, #""layers":30"#, #""heads":9"#, #""maxTokens":512"#,
                     #""keyValueHeads":[1,1,1,2,2,2,3,3,3]"#, #""name":"SmolLM2-135M-Instruct.Q4_1.gguf""#] {
            #expect(body.contains(part), "\(body)")
        }
    }

    @Test("Attention is causal, each row sums to 1, and one head's queries and its key/value head's keys reproduce its weights")
    func causalAndVectors() throws {
        let response = try request("/api/explain", #"{"text": "The cat sat on the mat.", "layer": 30, "head": 5}"#)
        #expect(response.status == 200, "\(response.text)")
        let r = try JSONDecoder().decode(ExplainResponse.self, from: response.body)
        let t = r.tokens.count
        #expect(t > 4 && r.segments == [Int](repeating: 0, count: t))
        let attention = try #require(r.attention)
        #expect(attention.layers == 30 && attention.heads == 9 && attention.tokens == t)
        for layer in [0, 29] { for head in 0..<9 { for i in 0..<t {
            let row = (0..<t).map { attention.weight(layer: layer, head: head, query: i, key: $0) }
            #expect(abs(row.reduce(0, +) - 1) < 2e-3 && row[(i + 1)...].allSatisfy { $0 == 0 }, "layer \(layer) head \(head) row \(i)")
        } } }
        // Head 5 reads key/value head 2: its keys are the second key/value head's.
        let v = try #require(r.vectors)
        #expect(v.layer == 30 && v.head == 5 && v.queries.count == t && v.queries[0].count == 64 && v.keys.count == t)
        for i in 0..<t {
            let scores = v.keys[...i].map { k in v.scale * zip(v.queries[i], k).reduce(0) { $0 + $1.0 * $1.1 } }
            let m = scores.max() ?? 0
            let sum = scores.reduce(0) { $0 + exp($1 - m) }
            for j in 0...i { #expect(abs(exp(scores[j] - m) / sum - attention.weight(layer: 29, head: 4, query: i, key: j)) < 1e-3) }
        }
    }

    @Test("A pair, a text over 512 tokens and a layer the model lacks are refused", arguments: [
        (#"{"text": "hello", "pair": "there"}"#, 400, "one text"),
        ("{\"text\": \"" + String(repeating: "x ", count: 600) + "\"}", 413, "the limit is 512"),
        (#"{"text": "hello", "layer": 31, "head": 1}"#, 400, "layer must be in 1...30"),
    ])
    func refused(json: String, status: Int, mentions: String) throws {
        let response = try request("/api/explain", json)
        #expect(response.status == status)
        #expect(try ExplorerServiceTests.error(response).error.contains(mentions))
    }

    @Test("A file that is not a GGUF decoder leaves the explorer off, saying why")
    func badFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-model-\(UUID()).gguf")
        try Data("not a gguf".utf8).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        guard case let .unavailable(message) = ExplorerModel.load(gguf: path) else { Issue.record("loaded"); return }
        #expect(message.contains(path.lastPathComponent))
        #expect(ExplorerService(model: .unavailable(message)).get("/api/status").text.contains(#""model":false"#))
    }
}

@Suite("Explorer API fuzz seeds")
struct ExplorerSeedTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus/explorer")

    @Test("Every /api/attend seed (the extreme windows among them) answers or is refused with an APIError, as the fuzz target runs it")
    func attendSeeds() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path).sorted()
        var answered = 0
        for name in names {
            let data = try Data(contentsOf: Self.corpus.appendingPathComponent(name))
            guard let first = data.first, first % 2 == 0 else { continue }
            do {
                let request = try ExplorerAPI.decode(AttendRequest.self, from: data.dropFirst())
                let response = try ExplorerAPI.attend(request)
                #expect(response.weights.joined().allSatisfy { $0.isFinite }, "\(name)")
                answered += 1
            } catch {
                #expect(error.status == 400 || error.status == 413, "\(name): \(error)")
            }
        }
        #expect(answered >= 5)
        // The reported request, through the API as the server runs it: a window of Int.max is no limit.
        let wide = try ExplorerAPI.attend(ExplorerAPI.decode(AttendRequest.self, from: Data(
            #"{"query": [[1]], "key": [[1]], "value": [[1]], "window": [0, 9223372036854775807]}"#.utf8)))
        #expect(wide.output == [[1]] && wide.weights == [[1]])
    }
}
