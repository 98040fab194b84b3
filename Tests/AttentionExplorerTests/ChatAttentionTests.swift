import Attention
import AttentionExplorer
import AttentionModels
import Foundation
import Testing

/// `/api/chat/attention` on SmolLM2: the rendered conversation's tokens, one token's weights in every
/// layer and head (the model's own, through the caches), and a 4xx for every bad request.
@Suite("Chat explorer API", .serialized)
struct ChatAttentionTests {
    static let setup: Result<(LlamaModel, any TextTokenizer, ChatTemplate), Error> = Result {
        let directory = SmolLM2Store.defaultDirectory()
        try SmolLM2Store.fetch(into: directory) { print($0) }
        let file = try GGUF(contentsOf: SmolLM2Store.file(in: directory))
        let model = try LlamaModel(gguf: file)
        return (model, try ggufTokenizer(file), try ChatTemplate(try #require(file.chatTemplate(of: model.configuration.family))))
    }

    @Test("A token's weights are the model's, in every layer and head; the last token by default")
    func weights() throws {
        let (model, tokenizer, template) = try Self.setup.get()
        let service = ExplorerService(model: .decoder(model, tokenizer, name: "smollm2"), chatTemplate: template)
        let messages = #"[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]"#
        let ids = tokenizer.encode(try template.render([.init(role: "user", content: "Hi"), .init(role: "assistant", content: "Hello! How can I help?")],
                                                       addGenerationPrompt: false))
        for query in [nil, 0, 7] as [Int?] {
            let body = query.map { #"{"messages": \#(messages), "query": \#($0)}"# } ?? #"{"messages": \#(messages)}"#
            let response = service.post("/api/chat/attention", body)
            #expect(response.status == 200, "\(response.text)")
            let answer = try JSONDecoder().decode(ChatAttentionResponse.self, from: response.body)
            let q = query ?? ids.count - 1
            let labels = try tokenizer.labels(of: ids)
            #expect(answer.query == q && answer.tokens == labels)
            #expect(answer.layers == 30 && answer.heads == 9 && answer.keyValueHeads == [1, 1, 1, 2, 2, 2, 3, 3, 3] && answer.encoding == "uint16le")
            #expect(answer.weights.count == 2 * 30 * 9 * (q + 1))
            let rows = try model.attentions(ids, row: q)
            for layer in [0, 29] {
                for head in [0, 8] {
                    let sum = (0...q).map { answer.weight(layer: layer, head: head, key: $0) }.reduce(0, +)
                    #expect(abs(sum - 1) < 1e-3)
                    for key in 0...q {
                        #expect(abs(answer.weight(layer: layer, head: head, key: key) - Double(rows[layer].scalars[head * (q + 1) + key])) <= 1 / 65535 + 1e-6)
                    }
                }
            }
        }
    }

    @Test("Bad requests: no messages, an unknown role, a query outside the tokens, too long a conversation; no chat model is 503")
    func errors() throws {
        let (model, tokenizer, template) = try Self.setup.get()
        let service = ExplorerService(model: .decoder(model, tokenizer, name: "smollm2"), chatTemplate: template)
        let long = String(repeating: "word ", count: 1100)
        for (body, status) in [(#"{"messages": []}"#, 400), (#"{"messages": [{"role": "robot", "content": "x"}]}"#, 400),
                               (#"{"messages": [{"role": "user", "content": "x"}], "query": -1}"#, 400),
                               (#"{"messages": [{"role": "user", "content": "x"}], "query": 9223372036854775807}"#, 400),
                               (#"{"messages": [{"role": "user", "content": "x"}], "query": 1e300}"#, 400),
                               (#"{"messages": [{"role": "user"}]}"#, 400), (#"not json"#, 400),
                               (#"{"messages": [{"role": "user", "content": "\#(long)"}]}"#, 413)] {
            let response = service.post("/api/chat/attention", body)
            #expect(response.status == status, "\(body.prefix(80)): \(response.text)")
        }
        #expect(service.get("/api/chat/attention").status == 405)
        let noTemplate = ExplorerService(model: .decoder(model, tokenizer, name: "smollm2"))
        #expect(noTemplate.post("/api/chat/attention", #"{"messages": [{"role": "user", "content": "x"}]}"#).status == 503)
        #expect(ExplorerService(model: .unavailable("none")).post("/api/chat/attention", #"{"messages": [{"role": "user", "content": "x"}]}"#).status == 503)
    }
}
