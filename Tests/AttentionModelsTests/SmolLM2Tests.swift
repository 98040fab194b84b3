import Attention
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// SmolLM2-135M-Instruct's GGUF file against transformers loading the same file (fixtures from
/// scripts/make-smollm2-fixtures.py). The file is installed the way a user installs it
/// (`SmolLM2Store.fetch`, what `attention model fetch smollm2` runs) if it is not there yet; these
/// tests never skip.
@Suite("SmolLM2 GGUF", .serialized)
struct SmolLM2Tests {
    struct Fixture: Decodable {
        struct Case: Decodable { let text: String, ids: [Int], decoded: String }
        struct Chat: Decodable { let text: String, ids: [Int] }
        struct TensorSummary: Decodable { let type: String, shape: [Int], first: [Float], sum: Double, absSum: Double }
        let cases: [Case]
        let chat: Chat
        let bos: String
        let eos: String
        struct Prompt: Decodable {
            let ids: [Int], topIds: [[Int]], topLogits: [[Float]], generated: [Int], generatedText: String, margins: [Float], untilTie: Int
        }
        let tensors: [String: TensorSummary]
        let prompts: [Prompt]
        struct Attentions: Decodable { let ids: [Int], layers: [String: [[[Float]]]] }
        let attentions: Attentions
    }

    static let file: Result<GGUF, Error> = Result {
        let directory = SmolLM2Store.defaultDirectory()
        try SmolLM2Store.fetch(into: directory) { print($0) }
        return try GGUF(contentsOf: SmolLM2Store.file(in: directory))
    }

    /// The model as stored (the quantized kernels) and dequantized to Float (the reference).
    static let quantized: Result<LlamaModel, Error> = Result { try LlamaModel(gguf: file.get()) }
    static let float: Result<LlamaModel, Error> = Result { try LlamaModel(gguf: file.get(), precision: .float32) }
    static func model(_ precision: LlamaModel.WeightPrecision) throws -> LlamaModel {
        try (precision == .asStored ? quantized : float).get()
    }

    func fixture() throws -> Fixture {
        let url = Fixtures.root.appendingPathComponent("smollm2/tokens.json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    @Test("The metadata says what the model is: Llama, 30 layers, 9 query heads sharing 3 key/value heads")
    func metadata() throws {
        let file = try Self.file.get()
        #expect(file.version == 3 && file.alignment == 32)
        #expect(file.metadata["general.architecture"]?.string == "llama")
        #expect(file.metadata["llama.block_count"]?.integer == 30)
        #expect(file.metadata["llama.embedding_length"]?.integer == 576)
        #expect(file.metadata["llama.feed_forward_length"]?.integer == 1536)
        #expect(file.metadata["llama.attention.head_count"]?.integer == 9)
        #expect(file.metadata["llama.attention.head_count_kv"]?.integer == 3)
        #expect(file.metadata["llama.rope.freq_base"]?.floatingPoint == 100_000)
        #expect(file.metadata["tokenizer.ggml.tokens"]?.strings?.count == 49152)
        #expect(file.metadata["tokenizer.chat_template"]?.string?.contains("<|im_start|>") == true)
        #expect(file.tensors.count == 272)
        #expect(Dictionary(grouping: file.tensors, by: \.type).mapValues(\.count) == [.Q4_1: 210, .F32: 61, .Q8_0: 1])
    }

    @Test("Tensors of each stored type dequantize as transformers dequantizes them")
    func tensors() throws {
        let file = try Self.file.get()
        for (name, expected) in try fixture().tensors.sorted(by: { $0.key < $1.key }) {
            let entry = try #require(file.info(name), "\(name)")
            #expect(entry.type.name == expected.type, "\(name)")
            let tensor = try file.tensor(name)
            #expect(tensor.shape == expected.shape, "\(name)")
            #expect(Array(tensor.scalars.prefix(16)) == expected.first, "\(name)")
            // Sums in Double of the same Float values, in another order: agreement to ~1e-12 relative.
            let sum = tensor.scalars.reduce(0.0) { $0 + Double($1) }
            let absSum = tensor.scalars.reduce(0.0) { $0 + Double(abs($1)) }
            #expect(abs(sum - expected.sum) <= 1e-9 * expected.absSum, "\(name): sum \(sum), expected \(expected.sum)")
            #expect(abs(absSum - expected.absSum) <= 1e-9 * expected.absSum, "\(name)")
        }
    }

    @Test("The tokenizer from the file's metadata gives transformers' ids, and decodes back to the text")
    func tokenizer() throws {
        let tokenizer = try ByteLevelBPETokenizer(gguf: Self.file.get())
        let fixture = try fixture()
        for c in fixture.cases {
            #expect(tokenizer.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            #expect(try tokenizer.decode(c.ids) == c.decoded, "\(c.text.debugDescription)")
        }
        #expect(tokenizer.encode(fixture.chat.text) == fixture.chat.ids)
        // The file's own chat template, rendered here, gives the same text and ids.
        let source = try #require(try Self.file.get().metadata["tokenizer.chat_template"]?.string)
        let template = try ChatTemplate(source)
        let rendered = try template.render([.init(role: "user", content: "What does attention compute in a transformer?")], addGenerationPrompt: true)
        #expect(rendered == fixture.chat.text)
        #expect(tokenizer.specialTokens[fixture.bos] == 1 && tokenizer.specialTokens[fixture.eos] == 2)
        #expect(tokenizer.specialTokens.count == 17)
    }

    @Test("A GGUF tokenizer of another kind, or with its tokens or merges missing, is refused by name")
    func tokenizerErrors() {
        func file(_ body: (inout GGUFBuilder) -> Void, pairs: UInt64) throws -> GGUF {
            var b = GGUFBuilder()
            b.header(tensors: 0, metadata: pairs)
            body(&b)
            return try GGUF(data: b.data, path: "t.gguf")
        }
        func reason(_ body: (inout GGUFBuilder) -> Void, pairs: UInt64) -> String {
            do { _ = try ByteLevelBPETokenizer(gguf: file(body, pairs: pairs)); return "no error" } catch { return "\(error)" }
        }
        let bytes = (0..<256).map { String(ByteLevelBPETokenizer.byteToCharacter[$0]) }
        #expect(reason({ $0.metadata("tokenizer.ggml.model", string: "llama") }, pairs: 1).contains("'llama'; only byte-level BPE"))
        #expect(reason({ _ in }, pairs: 0).contains("tokenizer.ggml.model is missing"))
        #expect(reason({ $0.metadata("tokenizer.ggml.model", string: "gpt2") }, pairs: 1).contains("tokenizer.ggml.tokens is missing"))
        #expect(reason({ b in
            b.metadata("tokenizer.ggml.model", string: "gpt2"); b.metadata("tokenizer.ggml.tokens", strings: bytes)
        }, pairs: 2).contains("tokenizer.ggml.merges is missing"))
        #expect(reason({ b in
            b.metadata("tokenizer.ggml.model", string: "gpt2"); b.metadata("tokenizer.ggml.tokens", strings: bytes)
            b.metadata("tokenizer.ggml.merges", strings: ["a  b"])
        }, pairs: 3).contains("merge 1 of tokenizer.ggml.merges"))
        // A minimal byte-level vocabulary with one merge works; a byte without a token ("!") is
        // dropped before merging, as transformers drops it.
        let exclamation = Int(UInt8(ascii: "!"))
        var tokens = bytes + ["ab", "##"]
        tokens[exclamation] = "<unused>"
        let ok = Result { try ByteLevelBPETokenizer(gguf: file({ b in
            b.metadata("tokenizer.ggml.model", string: "gpt2"); b.metadata("tokenizer.ggml.tokens", strings: tokens)
            b.metadata("tokenizer.ggml.merges", strings: ["a b", "# #"])
        }, pairs: 3)) }
        #expect((try? ok.get().encode("abc")) == [256, Int(UInt8(ascii: "c"))])
        #expect((try? ok.get().encode("a!b")) == [97, 98])   // three pieces; "!" leaves nothing
        #expect((try? ok.get().encode("#!#")) == [257])      // one piece: "#", "#" merge once "!" is gone
    }

    @Test("The configuration comes from the metadata; a file of another architecture is refused by name")
    func configuration() throws {
        let c = try LlamaConfiguration(gguf: Self.file.get())
        #expect(c.layers == 30 && c.width == 576 && c.feedForwardSize == 1536 && c.heads == 9 && c.keyValueHeads == 3)
        #expect(c.headDimension == 64 && c.ropeBase == 100_000 && c.vocabularySize == 49152 && c.contextLength == 8192)
        #expect(abs(c.rmsEpsilon - 1e-5) < 1e-12)
        var b = GGUFBuilder()
        b.header(tensors: 0, metadata: 1)
        b.metadata("general.architecture", string: "gpt2")
        #expect(thrownError { try LlamaConfiguration(gguf: GGUF(data: b.data, path: "g.gguf")) } == .invalidFile("g.gguf"))
    }

    /// The runs of the logits and greedy tests (top-64 logits):
    /// - Float weights, or block-quantized weights with Float products: the same products as
    ///   transformers' in another order, 3e-5 to 1e-4 measured; ties below 0.1.
    /// - Int8 products: each layer's and the output layer's input rounded to 8 bits per block of 32
    ///   (as llama.cpp does) moves the logits by up to 2.5 at the prompts' positions (0.2 to 1.2 at their last one,
    ///   the first generated token's) and changes the best token where the two best were within
    ///   0.26, measured on this CPU; the bounds leave some room above those figures.
    static let runs = [DecoderRun(weights: .asStored, products: .int8, tolerance: 3.5, tie: 0.35),
                       DecoderRun(weights: .asStored, products: .float32, tolerance: 1e-3, tie: 0.1),
                       DecoderRun(weights: .float32, products: .float32, tolerance: 1e-3, tie: 0.1)]

    @Test("Logits at every position agree with transformers' LlamaForCausalLM on the same file: weights quantized or in Float, products in Float or int8",
          arguments: runs)
    func logits(run: DecoderRun) throws {
        let model = try Self.model(run.weights)
        #expect(model.precision == run.weights)
        for prompt in try fixture().prompts {
            let logits = try model.logits(prompt.ids, options: run.options)
            let vocabulary = model.configuration.vocabularySize
            #expect(logits.shape == [prompt.ids.count, vocabulary])
            var worst: Float = 0
            for (t, (ids, values)) in zip(prompt.topIds, prompt.topLogits).enumerated() {
                let row = logits.scalars[(t * vocabulary)..<((t + 1) * vocabulary)]
                // The most likely next token is transformers', where its two best are not a tie.
                if values[0] - values[1] > (run.products == .int8 ? run.tie : 1e-3) {
                    #expect(row.indices.max(by: { row[$0] < row[$1] }).map { $0 - t * vocabulary } == ids[0], "\(run): position \(t)")
                }
                for (id, value) in zip(ids, values) { worst = max(worst, abs(row[t * vocabulary + id] - value)) }
            }
            #expect(worst < run.tolerance, "\(run): largest difference \(worst) among the top-64 logits")
        }
    }

    @Test("Greedy decoding through the caches gives transformers' tokens for 32 steps on every prompt, except at near-ties",
          arguments: runs)
    func greedy(run: DecoderRun) throws {
        let model = try Self.model(run.weights)
        let tokenizer = try ByteLevelBPETokenizer(gguf: Self.file.get())
        func argmax(_ logits: Tensor<Float>) -> Int { logits.scalars.indices.max(by: { logits.scalars[$0] < logits.scalars[$1] })! }
        for (index, prompt) in try fixture().prompts.enumerated() {
            #expect(prompt.generated.count == 32 && prompt.margins.count == 32)
            // Teacher forcing: the reference's token is fed on at every step, and ours must be the
            // same at every step where the reference's two best logits are not a near-tie.
            var caches = try model.makeCaches(capacity: prompt.ids.count + prompt.generated.count)
            var logits = try model.logits(appending: prompt.ids, to: &caches, lastOnly: true, options: run.options)
            var checked = 0
            for (step, (token, margin)) in zip(prompt.generated, prompt.margins).enumerated() {
                if margin >= run.tie {
                    #expect(argmax(logits) == token, "\(run), prompt \(index), step \(step)")
                    checked += 1
                }
                logits = try model.logits(appending: [token], to: &caches, lastOnly: true, options: run.options)
            }
            #expect(checked == prompt.margins.filter { $0 >= run.tie }.count && checked >= 22)
            // Free running, as attention generate runs: the same tokens up to the first near-tie.
            let untilTie = prompt.margins.firstIndex { $0 < run.tie } ?? prompt.margins.count
            #expect(untilTie <= prompt.untilTie)
            let free = try model.generate(prompt: prompt.ids, maxTokens: untilTie, options: run.options)
            #expect(free.generatedIDs == Array(prompt.generated.prefix(untilTie)), "\(run), prompt \(index)")
        }
        let text = try #require(try fixture().prompts.last)
        #expect(try tokenizer.decode(text.generated) == text.generatedText)
    }
}

extension SmolLM2Tests {
    func session(capacity: Int, system: String? = nil) throws -> ChatSession {
        let file = try Self.file.get()
        let template = try ChatTemplate(try #require(file.metadata["tokenizer.chat_template"]?.string))
        return try ChatSession(model: Self.model(.asStored), tokenizer: ByteLevelBPETokenizer(gguf: file), template: template,
                               endOfTurn: file.metadata["tokenizer.ggml.eos_token_id"]?.integer, system: system, capacity: capacity)
    }

    @Test("A chat keeps the conversation in its caches: the second answer reads the first turn from them and equals a fresh run")
    func chatSession() throws {
        var chat = try session(capacity: 512, system: "You are a helpful assistant.")
        let first = try chat.reply(to: "What is the capital of France?", maxTokens: 12)
        #expect(first.reusedTokens == 0 && first.newTokens == chat.cachedIDs.count - first.generatedIDs.count + 1)
        #expect(first.text.contains("Paris"))
        let before = chat.cachedIDs
        var streamed: [Int] = []
        let second = try chat.reply(to: "And of Italy?", maxTokens: 12) { streamed.append($0) }
        #expect(streamed == second.generatedIDs)
        // Everything of the first turn that the template writes back as it was generated is reused.
        #expect(second.reusedTokens >= before.count - 2 && second.reusedTokens <= before.count)
        #expect(chat.messages.map(\.role) == ["system", "user", "assistant", "user", "assistant"])
        #expect(chat.messages[2].content == first.text && chat.messages[4].content == second.text)
        // The same answer from scratch: the whole conversation rendered and run through fresh caches.
        let template = chat.template
        let text = try template.render(Array(chat.messages.prefix(4)), addGenerationPrompt: true)
        let fresh = try Self.model(.asStored).generate(prompt: chat.tokenizer.encode(text), maxTokens: 12, endOfText: chat.endOfTurn)
        #expect(fresh.generatedIDs == second.generatedIDs)
        #expect(second.newTokens == chat.tokenizer.encode(text).count - second.reusedTokens)

        chat.reset()
        #expect(chat.messages.map(\.role) == ["system"] && chat.cachedIDs.isEmpty)
        #expect(try chat.reply(to: "What is the capital of France?", maxTokens: 12).generatedIDs == first.generatedIDs)
    }

    @Test("A message that no longer fits the caches is refused by name, and the conversation is as it was")
    func chatOverflow() throws {
        var chat = try session(capacity: 48)
        let first = try chat.reply(to: "Hi", maxTokens: 200)
        // The answer stops where the caches are full (every token but the last is in them).
        #expect(chat.cachedIDs.count <= 48 && (first.finished || chat.cachedIDs.count == 48))
        let (messages, cached) = (chat.messages, chat.cachedIDs)
        #expect(thrownError { _ = try chat.reply(to: "Tell me more about the history of the city, please.", maxTokens: 8) } == .invalidArgument("message"))
        #expect(chat.messages == messages && chat.cachedIDs == cached)
        #expect(thrownError { _ = try ChatSession(model: Self.model(.asStored), tokenizer: chat.tokenizer, template: chat.template,
                                                   endOfTurn: nil, capacity: 100_000) } == .invalidArgument("capacity"))
    }
}

extension SmolLM2Tests {
    @Test("Attention maps per layer and head are transformers' (eager attention, Float products), grouped three query heads to a key/value head")
    func attentionMaps() throws {
        let model = try Self.model(.asStored)
        let expected = try fixture().attentions
        let maps = try model.attentions(expected.ids, options: AttentionOptions(quantizedPrecision: .float32))
        let t = expected.ids.count
        #expect(maps.count == 30 && maps.allSatisfy { $0.shape == [9, t, t] })
        #expect((0..<9).map(model.keyValueHead(of:)) == [0, 0, 0, 1, 1, 1, 2, 2, 2])
        var worst: Float = 0
        for (layer, heads) in expected.layers {
            let w = maps[try #require(Int(layer))].scalars
            for (h, rows) in heads.enumerated() {
                for (i, row) in rows.enumerated() {
                    for (j, value) in row.enumerated() {
                        worst = max(worst, abs(w[(h * t + i) * t + j] - value))
                        if j > i { #expect(w[(h * t + i) * t + j] == 0) }
                    }
                }
            }
        }
        // Weights in [0, 1] after 30 blocks of Float32 in another summation order.
        #expect(worst < 1e-4, "largest difference \(worst)")
    }
}
