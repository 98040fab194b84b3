import Attention
import AttentionModels
import Foundation

/// An error the API answers with: an HTTP status and a message that says what is wrong.
public struct APIError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The HTTP status: 400, 413 or 503.
    public let status: Int
    /// What is wrong, for the page to show.
    public let message: String

    /// An error answered with `status`.
    public init(status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    static func badRequest(_ message: String) -> APIError { APIError(status: 400, message) }

    /// `status: message`.
    public var description: String { "\(status): \(message)" }

    /// `{"error": message, "status": status}`.
    public var json: Data {
        (try? JSONEncoder().encode(["error": message, "status": String(status)])) ?? Data("{\"error\":\"error\"}".utf8)
    }
}

/// `POST /api/attend`: attention of a few queries over a few keys, with the library's semantics.
public struct AttendRequest: Codable, Sendable {
    /// `[Nq][D]`.
    public var query: [[Double]]
    /// `[Nk][D]`.
    public var key: [[Double]]
    /// `[Nk][Dv]`.
    public var value: [[Double]]
    /// Multiplies `q·k`; default `1/√D`.
    public var scale: Double?
    /// Causal (bottom-right aligned: query i of Nq sees keys up to i + Nk - Nq).
    public var causal: Bool?
    /// `[left, right]`: each query sees keys from `left` before to `right` after its own position.
    public var window: [Int]?

    /// A request; unset options are the API's defaults.
    public init(query: [[Double]], key: [[Double]], value: [[Double]], scale: Double? = nil, causal: Bool? = nil, window: [Int]? = nil) {
        self.query = query
        self.key = key
        self.value = value
        self.scale = scale
        self.causal = causal
        self.window = window
    }
}

/// `POST /api/attend`'s answer.
public struct AttendResponse: Codable, Sendable, Equatable {
    /// `[Nq][Dv]`.
    public let output: [[Double]]
    /// `[Nq][Nk]`; each row sums to 1, or is all 0 for a query that sees no key.
    public let weights: [[Double]]
    /// `[Nq]`; null for a query that sees no key (its log-sum-exp is -∞).
    public let logSumExp: [Double?]
}

/// `POST /api/explain`: the model's attention on a sentence, or a pair (BERT only).
public struct ExplainRequest: Codable, Sendable {
    /// The sentence.
    public var text: String
    /// A second sentence: the model reads `[CLS] text [SEP] pair [SEP]`.
    public var pair: String?
    /// With `head`, 1-based: also return that head's query and key vectors.
    public var layer: Int?
    /// With `layer`, 1-based: the head whose vectors to return.
    public var head: Int?
    /// Whether to return every layer's and head's weights (default true); false for the vectors alone.
    public var attention: Bool?

    /// A request; unset options are the API's defaults.
    public init(text: String, pair: String? = nil, layer: Int? = nil, head: Int? = nil, attention: Bool? = nil) {
        self.text = text
        self.pair = pair
        self.layer = layer
        self.head = head
        self.attention = attention
    }
}

/// Every layer's and head's attention weights `[layers, heads, tokens, tokens]`, compactly: each weight
/// `w` ∈ [0, 1] as the 16-bit integer `round(w · 65535)`, little-endian, the whole array in `data`
/// (base64 in JSON). Within 7.7e-6 of the weight, two bytes each: at 512 tokens, 6 × 12 heads are
/// 38 MB instead of about 130 MB of decimal text, and encode in milliseconds instead of seconds.
public struct AttentionMaps: Codable, Sendable, Equatable {
    /// The extents of the weights.
    public let layers: Int, heads: Int, tokens: Int
    /// Always "uint16le": how `data` holds the weights.
    public let encoding: String
    /// The weights, two bytes each, `[layer][head][query][key]` order.
    public let data: Data

    /// The maps of per-layer weights `[heads, T, T]` (or `[1, heads, T, T]`).
    public init(_ weights: [Tensor<Float>], heads: Int, tokens t: Int) {
        layers = weights.count
        self.heads = heads
        tokens = t
        encoding = "uint16le"
        data = Self.encode(weights.map { $0.scalars.prefix(heads * t * t) })
    }

    /// The weight of `key` for `query` in a head of a layer (0-based), as sent (to 7.7e-6).
    public func weight(layer: Int, head: Int, query: Int, key: Int) -> Double {
        Self.decode(data, at: ((layer * heads + head) * tokens + query) * tokens + key)
    }

    /// Weights in [0, 1] as `"uint16le"`: `round(w · 65535)`, little-endian, two bytes each (NaN as 0).
    static func encode(_ parts: [some Collection<Float>]) -> Data {
        var bytes = [UInt8]()
        bytes.reserveCapacity(2 * parts.reduce(0) { $0 + $1.count })
        for part in parts {
            for x in part {
                let q = UInt16(min(max(x.isNaN ? 0 : x, 0), 1) * 65535 + 0.5)
                bytes.append(UInt8(truncatingIfNeeded: q))
                bytes.append(UInt8(truncatingIfNeeded: q >> 8))
            }
        }
        return Data(bytes)
    }

    /// Weight `index` of `data` in ``encode(_:)``'s encoding.
    static func decode(_ data: Data, at index: Int) -> Double {
        Double(UInt16(data[data.startIndex + 2 * index]) | UInt16(data[data.startIndex + 2 * index + 1]) << 8) / 65535
    }

    /// All weights as `[layer][head][query][key]`.
    public var nested: [[[[Double]]]] {
        (0..<layers).map { l in (0..<heads).map { h in (0..<tokens).map { i in (0..<tokens).map { j in
            weight(layer: l, head: h, query: i, key: j)
        } } } }
    }
}

/// One head's query and key vectors: `weights[i][j] = softmax_j(scale · queries[i] · keys[j])`.
public struct HeadVectors: Codable, Sendable, Equatable {
    /// The layer, 1-based.
    public let layer: Int
    /// The head, 1-based.
    public let head: Int
    /// The scale of the scores, 1/√d.
    public let scale: Double
    /// `[tokens][d]`.
    public let queries: [[Double]]
    /// `[tokens][d]`.
    public let keys: [[Double]]
}

/// `POST /api/explain`'s answer.
public struct ExplainResponse: Codable, Sendable, Equatable {
    /// The tokens the model read, special ones included.
    public let tokens: [String]
    /// Each token's sentence: 0, or 1 for the second of a pair.
    public let segments: [Int]
    /// Every layer's and head's weights, unless the request asked for none.
    public let attention: AttentionMaps?
    /// The requested head's vectors, when a layer and head were asked for.
    public let vectors: HeadVectors?
}

/// The explorer's computations, apart from HTTP: each takes a decoded request and returns the response
/// or an ``APIError``.
public enum ExplorerAPI {
    /// Request bodies above this many bytes are refused with 413.
    public static let maxBodyBytes = 1 << 20
    /// Texts of more tokens than this (`[CLS]` and `[SEP]` included) are refused.
    public static let maxTokens = 512
    /// `/api/attend` refuses problems with more query-key pairs than this.
    public static let maxWeights = 1 << 20

    /// Attention on the request's matrices, with the weights and log-sum-exp.
    /// - Throws: ``APIError`` (400) for ragged, empty, mismatched or non-finite input, an invalid mask; 413 above ``maxWeights``.
    public static func attend(_ r: AttendRequest) throws(APIError) -> AttendResponse {
        let q = try matrix(r.query, "query"), k = try matrix(r.key, "key"), v = try matrix(r.value, "value")
        guard q.rows * k.rows <= maxWeights else {
            throw .badRequest("query has \(q.rows) rows and key \(k.rows): more than \(maxWeights) weights")
        }
        var mask = AttentionMask.none
        if r.causal == true { mask = mask && .causal }
        if let window = r.window {
            guard window.count == 2, window.allSatisfy({ $0 >= 0 }) else {
                throw .badRequest("window must be [left, right] with both ≥ 0, got \(window)")
            }
            mask = mask && .slidingWindow(left: window[0], right: window[1])
        }
        if let scale = r.scale, !scale.isFinite {
            throw .badRequest("scale must be a finite number")
        }
        let result: AttentionResult<Double>
        do {
            result = try scaledDotProductAttention(
                query: q.tensor, key: k.tensor, value: v.tensor, mask: mask, scale: r.scale, returning: [.weights, .logSumExp])
        } catch let error as AttentionError {
            throw .badRequest(error.description)
        } catch {
            throw APIError(status: 500, "\(error)")
        }
        let (nq, nk, dv) = (q.rows, k.rows, v.columns)
        let weights = result.weights?.scalars ?? []
        let lse = result.logSumExp?.scalars ?? []
        guard result.output.scalars.allSatisfy(\.isFinite), weights.allSatisfy(\.isFinite),
              lse.allSatisfy({ $0.isFinite || $0 == -.infinity }) else {
            throw .badRequest("the result is not finite: the scores (scale · q·k) or the weighted values overflow; use smaller numbers")
        }
        return AttendResponse(
            output: (0..<nq).map { i in Array(result.output.scalars[(i * dv)..<((i + 1) * dv)]) },
            weights: (0..<nq).map { i in Array(weights[(i * nk)..<((i + 1) * nk)]) },
            logSumExp: lse.map { $0.isFinite ? $0 : nil })
    }

    private static func matrix(_ rows: [[Double]], _ name: String) throws(APIError) -> (tensor: Tensor<Double>, rows: Int, columns: Int) {
        guard let first = rows.first, !first.isEmpty else {
            throw .badRequest("\(name) must be a non-empty array of non-empty rows of numbers")
        }
        if let bad = rows.firstIndex(where: { $0.count != first.count }) {
            throw .badRequest("\(name) row \(bad) has \(rows[bad].count) numbers, row 0 has \(first.count): rows must have equal lengths")
        }
        guard let tensor = try? Tensor(shape: [rows.count, first.count], scalars: rows.flatMap { $0 }) else {
            throw .badRequest("\(name) is not a matrix")
        }
        return (tensor, rows.count, first.count)
    }

    /// The model's tokens, segments and attention; `vectors` when a layer and head are given.
    public static func explain(_ r: ExplainRequest, model: SentenceEmbedder) throws(APIError) -> ExplainResponse {
        let c = model.encoder.configuration
        guard !r.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw .badRequest("text is empty") }
        var ids = model.tokenizer.encode(r.text, maxLength: .max)
        var segments = [Int](repeating: 0, count: ids.count)
        if let pair = r.pair, !pair.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            let second = model.tokenizer.encode(pair, maxLength: .max).dropFirst()
            ids += second
            segments += [Int](repeating: 1, count: second.count)
        }
        let limit = min(maxTokens, c.maxPositions)
        guard ids.count <= limit else {
            throw APIError(status: 413, "the text has \(ids.count) tokens with [CLS] and [SEP]; the limit is \(limit)")
        }
        let chosen = try chosenHead(r, layers: c.layers, heads: c.heads)
        do {
            let output = try model.encoder([ids], tokenTypes: [segments], returning: chosen != nil ? [.attentions, .layerInputs] : .attentions)
            let t = ids.count
            let attention = r.attention == false ? nil : AttentionMaps(output.attentions, heads: c.heads, tokens: t)
            var vectors: HeadVectors?
            if let (layer, head) = chosen {
                let projection = model.encoder.layers[layer - 1].attention
                let input = output.layerInputs[layer - 1]
                let dh = projection.headDimension
                func slice(_ x: Tensor<Float>) -> [[Double]] {
                    let width = x.shape.last ?? 0
                    return (0..<t).map { i in (0..<dh).map { Double(x.scalars[i * width + (head - 1) * dh + $0]) } }
                }
                vectors = HeadVectors(
                    layer: layer, head: head, scale: 1 / Double(dh).squareRoot(),
                    queries: slice(try projection.queryProjection(input)), keys: slice(try projection.keyProjection(input)))
            }
            return ExplainResponse(tokens: model.tokenizer.decode(ids), segments: segments, attention: attention, vectors: vectors)
        } catch {
            throw APIError(status: 500, "the model failed: \(error)")
        }
    }

    /// The same for a GPT-2: causal attention (row i is zero right of i), one text (no pair), every
    /// segment 0.
    public static func explain(_ r: ExplainRequest, gpt: GPT2Model, tokenizer: ByteLevelBPETokenizer) throws(APIError) -> ExplainResponse {
        let c = gpt.configuration
        return try explainCausal(r, reader: "a GPT-2", tokenizer: tokenizer, positions: c.positions, layers: c.layers, heads: c.heads,
                                 headDimension: c.width / c.heads, keyHead: { $0 }) { ids, layer in
            try gpt.attentions(ids, queriesAndKeysOf: layer)
        }
    }

    /// The same for a decoder from a GGUF file: causal attention (within the window on a windowed
    /// layer), one text, every segment 0; a head's keys are those of the key/value head it reads.
    public static func explain(_ r: ExplainRequest, decoder: LlamaModel, tokenizer: any TextTokenizer) throws(APIError) -> ExplainResponse {
        let c = decoder.configuration
        return try explainCausal(r, reader: "a decoder", tokenizer: tokenizer, positions: c.contextLength, layers: c.layers, heads: c.heads,
                                 headDimension: c.headDimension, keyHead: decoder.keyValueHead(of:)) { ids, layer in
            try decoder.attentions(ids, queriesAndKeysOf: layer)
        }
    }

    /// A causal model's explanation of one text: `attentions(ids, layer)` gives every layer's
    /// `[heads, T, T]` weights and, for `layer` (from 0), its queries `[heads, T, d]` and keys;
    /// query head h (from 0) reads key head `keyHead(h)`.
    private static func explainCausal(
        _ r: ExplainRequest, reader: String, tokenizer: any TextTokenizer, positions: Int, layers: Int, heads: Int, headDimension d: Int,
        keyHead: (Int) -> Int, attentions: ([Int], Int?) throws -> ([Tensor<Float>], Tensor<Float>?, Tensor<Float>?)
    ) throws(APIError) -> ExplainResponse {
        guard !r.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw .badRequest("text is empty") }
        guard r.pair?.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ?? true else {
            throw .badRequest("\(reader) reads one text: pair is for the BERT model")
        }
        let ids = tokenizer.encode(r.text)
        guard !ids.isEmpty else { throw .badRequest("the text has no tokens") }
        let limit = min(maxTokens, positions)
        guard ids.count <= limit else {
            throw APIError(status: 413, "the text has \(ids.count) tokens; the limit is \(limit)")
        }
        let chosen = try chosenHead(r, layers: layers, heads: heads)
        do {
            let (weights, queries, keys) = try attentions(ids, chosen.map { $0.layer - 1 })
            var vectors: HeadVectors?
            if let (layer, head) = chosen, let queries, let keys {
                let t = ids.count
                func rows(_ x: Tensor<Float>, _ h: Int) -> [[Double]] {
                    (0..<t).map { i in (0..<d).map { Double(x.scalars[(h * t + i) * d + $0]) } }
                }
                vectors = HeadVectors(layer: layer, head: head, scale: 1 / Double(d).squareRoot(),
                                      queries: rows(queries, head - 1), keys: rows(keys, keyHead(head - 1)))
            }
            return ExplainResponse(tokens: try tokenizer.labels(of: ids), segments: [Int](repeating: 0, count: ids.count),
                                   attention: r.attention == false ? nil : AttentionMaps(weights, heads: heads, tokens: ids.count), vectors: vectors)
        } catch {
            throw APIError(status: 500, "the model failed: \(error)")
        }
    }

    /// The layer and head a request names (both or neither), checked against the model.
    private static func chosenHead(_ r: ExplainRequest, layers: Int, heads: Int) throws(APIError) -> (layer: Int, head: Int)? {
        switch (r.layer, r.head) {
        case (nil, nil): return nil
        case let (layer?, head?):
            guard (1...layers).contains(layer), (1...heads).contains(head) else {
                throw .badRequest("layer must be in 1...\(layers) and head in 1...\(heads), got layer \(layer), head \(head)")
            }
            return (layer, head)
        default: throw .badRequest("give both layer and head, or neither")
        }
    }

    /// Decodes a JSON body, turning decoding failures into a 400 that names the field.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(APIError) -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw .badRequest("missing field '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw .badRequest("'\(path(context.codingPath))': \(context.debugDescription)")
        } catch let DecodingError.dataCorrupted(context) {
            throw .badRequest(context.codingPath.isEmpty ? "the body is not valid JSON" : "'\(path(context.codingPath))': \(context.debugDescription)")
        } catch {
            throw .badRequest("the body is not valid JSON: \(error)")
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }
}

/// `POST /api/chat/attention`: a conversation with a chat model, rendered through its chat template,
/// and which token's attention to show.
public struct ChatAttentionRequest: Codable, Sendable {
    /// The conversation so far, the model's answers included: `{"role", "content"}` each.
    public let messages: [ChatTemplate.Message]
    /// The token whose attention is wanted, from 0 in the rendered conversation; nil: the last.
    public let query: Int?

    /// A request for token `query` of `messages`.
    public init(messages: [ChatTemplate.Message], query: Int?) {
        self.messages = messages
        self.query = query
    }
}

/// What one token of a conversation attends to, in every layer and head.
public struct ChatAttentionResponse: Codable, Sendable, Equatable {
    /// The rendered conversation's tokens (the template's markers included), as labels.
    public let tokens: [String]
    /// The token the weights are of.
    public let query: Int
    /// Layers and query heads of the model.
    public let layers: Int, heads: Int
    /// For each query head, the key/value head it reads, from 1 (grouped-query attention).
    public let keyValueHeads: [Int]
    /// `"uint16le"`: each weight as `round(w · 65535)`, little-endian.
    public let encoding: String
    /// `[layer][head][key]` for keys 0...query, base64 in JSON.
    public let weights: Data

    /// The weight of `head` in `layer` (from 0) on `key`.
    public func weight(layer: Int, head: Int, key: Int) -> Double {
        AttentionMaps.decode(weights, at: (layer * heads + head) * (query + 1) + key)
    }
}

extension ExplorerAPI {
    /// The most tokens a conversation in the chat explorer reaches.
    public static let maxChatTokens = 1024

    /// What token `r.query` of the conversation attends to, in every layer and head of `decoder`.
    /// - Throws: ``APIError``: 400 for no messages, a role other than system, user or assistant, a
    ///   conversation the template cannot render, or a query outside the tokens; 413 over
    ///   ``maxChatTokens`` tokens.
    public static func chatAttention(_ r: ChatAttentionRequest, decoder: LlamaModel, tokenizer: any TextTokenizer,
                                     template: ChatTemplate) throws(APIError) -> ChatAttentionResponse {
        guard !r.messages.isEmpty else { throw .badRequest("messages is empty") }
        if let bad = r.messages.first(where: { !["system", "user", "assistant"].contains($0.role) }) {
            throw .badRequest("messages: the role '\(bad.role)' is not system, user or assistant")
        }
        let text: String
        do {
            text = try template.render(r.messages, addGenerationPrompt: false)
        } catch {
            throw .badRequest("messages: the chat template cannot render them: \(error)")
        }
        let ids = tokenizer.encode(text)
        guard !ids.isEmpty else { throw .badRequest("the conversation has no tokens") }
        let limit = min(maxChatTokens, decoder.configuration.contextLength)
        guard ids.count <= limit else { throw APIError(status: 413, "the conversation has \(ids.count) tokens; the limit is \(limit)") }
        let query = r.query ?? ids.count - 1
        guard ids.indices.contains(query) else { throw .badRequest("query must be in 0..<\(ids.count) (the tokens), got \(query)") }
        do {
            let data = AttentionMaps.encode(try decoder.attentions(ids, row: query).map(\.scalars))
            let c = decoder.configuration
            return ChatAttentionResponse(tokens: try tokenizer.labels(of: ids), query: query, layers: c.layers, heads: c.heads,
                                         keyValueHeads: (0..<c.heads).map { decoder.keyValueHead(of: $0) + 1 }, encoding: "uint16le", weights: data)
        } catch {
            throw APIError(status: 500, "the model failed: \(error)")
        }
    }
}
