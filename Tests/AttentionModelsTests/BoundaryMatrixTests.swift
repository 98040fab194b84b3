import Attention
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// Every integer of the `AttentionModels` library at the extremes: configuration fields (each table a
/// valid input indexes must have its rows), token ids, lengths, counts and capacities. A typed error
/// or a correct result, never a trap or a hang.
@Suite("Integer boundaries of AttentionModels", .timeLimit(.minutes(3)))
struct ModelsBoundaryMatrixTests {
    static let gpt2 = GPT2Tests.model
    static let bpe = GPT2Tests.tokenizer

    /// A BERT configuration small enough to build from zeros, with `field` set to `n`.
    static func bert(_ field: String, _ n: Int) throws -> BERTConfiguration {
        var object: [String: Any] = ["vocab_size": 5, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2,
                                     "intermediate_size": 8, "max_position_embeddings": 6, "type_vocab_size": 2,
                                     "layer_norm_eps": 1e-12, "hidden_act": "gelu"]
        object[field] = n
        let scratch = try TemporaryDirectory("bert-config")
        let url = scratch.url.appendingPathComponent("config.json")
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        return try BERTConfiguration(contentsOf: url)
    }

    /// Every parameter of a BERT of configuration `c`, zero (LayerNorm weights one).
    static func bertParameters(_ c: BERTConfiguration) throws -> [String: Tensor<Float>] {
        let (h, i) = (c.hiddenSize, c.intermediateSize)
        var p: [String: Tensor<Float>] = [
            "embeddings.word_embeddings.weight": try Tensor(zeros: [c.vocabularySize, h]),
            "embeddings.position_embeddings.weight": try Tensor(zeros: [c.maxPositions, h]),
            "embeddings.token_type_embeddings.weight": try Tensor(zeros: [c.typeVocabularySize, h]),
        ]
        func norm(_ name: String) throws { p[name + ".weight"] = try Tensor(repeating: 1, shape: [h]); p[name + ".bias"] = try Tensor(zeros: [h]) }
        func linear(_ name: String, _ output: Int, _ input: Int) throws {
            p[name + ".weight"] = try Tensor(zeros: [output, input]); p[name + ".bias"] = try Tensor(zeros: [output])
        }
        try norm("embeddings.LayerNorm")
        for n in 0..<c.layers {
            let l = "encoder.layer.\(n)."
            for name in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] { try linear(l + name, h, h) }
            try norm(l + "attention.output.LayerNorm")
            try linear(l + "intermediate.dense", i, h)
            try linear(l + "output.dense", h, i)
            try norm(l + "output.LayerNorm")
        }
        return p
    }

    static let bertFields = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                             "max_position_embeddings", "type_vocab_size"]

    static let configurations: [IntegerInput] = bertFields.map { field in
        IntegerInput("BERT config.json \(field)") { n in
            let c = try bert(field, n)
            // Accepted: the encoder builds and reads every token and type a valid input can hold.
            let encoder = try BERTEncoder(configuration: c, parameters: try bertParameters(c))
            let ids = [0, c.vocabularySize - 1], types = [0, c.typeVocabularySize - 1]
            #expect(try encoder([ids], tokenTypes: [types]).hiddenStates.shape == [1, 2, c.hiddenSize])
        }
    } + [
        IntegerInput("BERT: type_vocab_size 0 with a token-type table of 0 rows (the reported trap)", values: [0]) { _ in
            var c = try bert("type_vocab_size", 1)
            c.typeVocabularySize = 0
            #expect(thrownError { try BERTEncoder(configuration: c, parameters: try bertParameters(c)) } == .invalidFile("<parameters>"))
            throw AttentionError.invalidArgument(argument: "type_vocab_size", reason: "refused, as expected")
        },
    ] + ["vocabularySize", "positions", "width", "layers", "heads", "innerSize", "bos", "eos"].map { field in
        IntegerInput("GPT2Configuration \(field)") { n in
            var c = GPT2Configuration(vocabularySize: 7, positions: 5, width: 4, layers: 1, heads: 2)
            switch field {
            case "vocabularySize": c.vocabularySize = n
            case "positions": c.positions = n
            case "width": c.width = n
            case "layers": c.layers = n
            case "heads": c.heads = n
            case "innerSize": c.innerSize = n
            case "bos": c.beginningOfTextToken = n
            default: c.endOfTextToken = n
            }
            try c.validate()
            let model = try GPT2Model(configuration: c, seed: 1)
            #expect(try model.logits([0, c.vocabularySize - 1, 0].prefix(c.positions).map { $0 }).shape.last == c.vocabularySize)
        }
    }

    static let gpt2Inputs: [IntegerInput] = [
        IntegerInput("GPT2Model.logits ids") { n in _ = try gpt2.get().logits([1, n]) },
        IntegerInput("GPT2Model.attentions queriesAndKeysOf") { n in _ = try gpt2.get().attentions([1, 2], queriesAndKeysOf: n) },
        IntegerInput("GPT2Model.makeCaches capacity") { n in _ = try gpt2.get().makeCaches(capacity: n) },
        IntegerInput("GPT2Model.logits(appending:) ids") { n in
            var caches = try gpt2.get().makeCaches(capacity: 4)
            _ = try gpt2.get().logits(appending: [n], to: &caches)
        },
        IntegerInput("generate maxTokens") { n in
            let g = try gpt2.get().generate(prompt: [1, 2], maxTokens: n)
            #expect(g.generatedIDs.count <= min(n, try gpt2.get().maximumPositions - 2))
        },
        IntegerInput("generate prompt ids") { n in _ = try gpt2.get().generate(prompt: [n], maxTokens: 2) },
        IntegerInput("generate(appending:) maxTokens") { n in
            var caches = try gpt2.get().makeCaches(capacity: 8)
            var generator = SplitMix64(seed: 1)
            _ = try gpt2.get().generate(appending: [1], to: &caches, maxTokens: n, sampling: .greedy, generator: &generator)
        },
        IntegerInput("Sampling topK") { n in
            let sampling = Sampling(temperature: 1, topK: n)
            var generator = SplitMix64(seed: 1)
            let token = sampling.next([0.5, 2, -1, 2][...], using: &generator)
            #expect((0..<4).contains(token))
            _ = try gpt2.get().generate(prompt: [1], maxTokens: 2, sampling: sampling)
        },
        IntegerInput("GPT2TrainingSettings, every integer setting") { n in
            // The documented ranges; a value inside one is accepted unless heads no longer divide width.
            let settings: [(WritableKeyPath<GPT2TrainingSettings, Int>, String, ClosedRange<Int>)] = [
                (\.layers, "layers", 1...64), (\.heads, "heads", 1...64), (\.width, "width", 1...4096), (\.context, "context", 2...4096),
                (\.batchSize, "batchSize", 1...4096), (\.steps, "steps", 1...10_000_000), (\.evaluationInterval, "evaluationInterval", 1...10_000_000),
            ]
            for (path, name, range) in settings {
                var s = GPT2TrainingSettings()
                s[keyPath: path] = n
                let rate = s.learningRate(at: n)
                #expect(rate.isFinite, "learningRate(at: \(n)) with \(name) = \(n)")
                let expected: ErrorPin? = !range.contains(n) ? .invalidArgument(name) : s.width % s.heads != 0 ? .invalidArgument("width") : nil
                #expect(thrownError { try s.validate() } == expected, "\(name) = \(n)")
            }
        },
        IntegerInput("GPT2Training.train vocabularySize and endOfText") { n in
            var s = GPT2TrainingSettings()
            (s.layers, s.heads, s.width, s.context, s.batchSize, s.steps, s.evaluationInterval) = (1, 1, 4, 2, 1, 1, 1)
            let tokens = (0..<200).map { $0 % 3 }
            _ = try GPT2Training.train(tokens: tokens, vocabularySize: n, endOfText: nil, settings: s)
            _ = try GPT2Training.train(tokens: tokens, vocabularySize: 3, endOfText: n, settings: s)
        },
        IntegerInput("ByteLevelBPETokenizer decode, labels and bytes ids") { n in
            let t = try bpe.get()
            _ = try t.decode([n])
            _ = try t.labels(of: [n])
            _ = try t.bytes(of: [n])
        },
        IntegerInput("BytePairTraining.train vocabularySize") { n in
            _ = try ByteLevelBPETokenizer.train(on: ["the cat sat"], vocabularySize: n)
        },
        IntegerInput("BytePairTraining.train minimumFrequency") { n in
            _ = try ByteLevelBPETokenizer.train(on: ["the cat sat"], vocabularySize: 260, minimumFrequency: n)
        },
        IntegerInput("WordPieceTokenizer.encode maxLength") { n in
            let t = try WordPieceTokenizer(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat"])
            let ids = t.encode("the cat the cat", maxLength: n)
            #expect(ids.first == 2 && ids.last == 3 && ids.count <= max(2, n))
            _ = t.decode([n])
        },
    ]

    /// A GGUF holding only a configuration of `family` (Gemma 3's with its window), with `key` set to
    /// `n` as a 64-bit integer.
    static func llamaConfiguration(_ key: String, _ n: Int, family: String = "llama") throws -> LlamaConfiguration {
        var fields: [(String, Int)] = [("block_count", 2), ("embedding_length", 8), ("feed_forward_length", 16), ("context_length", 32),
                                       ("attention.head_count", 2), ("attention.head_count_kv", 1), ("vocab_size", 10)]
        if family == "gemma3" { fields += [("attention.key_length", 16), ("attention.sliding_window", 4)] }
        if let i = fields.firstIndex(where: { $0.0 == key }) { fields[i].1 = n } else { fields.append((key, n)) }
        var b = GGUFBuilder()
        b.header(tensors: 0, metadata: UInt64(fields.count + 2))
        b.metadata("general.architecture", string: family)
        b.metadata("\(family).attention.layer_norm_rms_epsilon", float32: 1e-5)
        for (k, v) in fields { b.metadata("\(family)." + k, int64: Int64(v)) }
        b.pad(to: 32)
        return try LlamaConfiguration(gguf: GGUF(data: b.data, path: "llama.gguf"))
    }

    static let llamaInputs: [IntegerInput] = ["block_count", "embedding_length", "feed_forward_length", "context_length", "attention.head_count",
                                              "attention.head_count_kv", "rope.dimension_count", "vocab_size"].map { key in
        IntegerInput("GGUF llama.\(key)") { n in
            let c = try llamaConfiguration(key, n)
            #expect(c.heads % c.keyValueHeads == 0 && c.headDimension * c.heads == c.width && c.vocabularySize > 0)
        }
    } + ["block_count", "embedding_length", "attention.head_count", "attention.head_count_kv", "attention.key_length",
         "attention.sliding_window", "vocab_size"].map { key in
        IntegerInput("GGUF gemma3.\(key)") { n in
            let c = try llamaConfiguration(key, n, family: "gemma3")
            #expect(c.heads % c.keyValueHeads == 0 && c.headDimension % 2 == 0 && (c.slidingWindow ?? 0) > 0 && c.vocabularySize > 0)
        }
    } + [
        IntegerInput("SentencePieceBPETokenizer decode and labels id") { n in
            let tokenizer = try SentencePieceBPETokenizer(gguf: Gemma3FileTests.file.get())
            _ = try tokenizer.decode([n])
            _ = try tokenizer.labels(of: [n])
            _ = try tokenizer.bytes(of: [n])
        },
        IntegerInput("LlamaModel.makeCaches capacity, logits ids, keyValueHead, attentions layer") { n in
            let model = try SmolLM2Tests.model(.asStored)
            _ = model.keyValueHead(of: n)
            _ = try model.logits([1, n])
            _ = try model.makeCaches(capacity: n)
            _ = try model.attentions([1, 2], queriesAndKeysOf: n)
        },
        IntegerInput("Gemma 3 makeCaches capacity (windowed rings)") { n in
            let model = try Gemma3ModelTests.model(.asStored)
            var caches = try model.makeCaches(capacity: n)
            _ = try model.logits(appending: [2], to: &caches)
        },
        IntegerInput("ChatSession capacity and reply maxTokens") { n in
            let model = try SmolLM2Tests.model(.asStored)
            let tokenizer = try ByteLevelBPETokenizer(gguf: SmolLM2Tests.file.get())
            let source = try #require(SmolLM2Tests.file.get().metadata["tokenizer.chat_template"]?.string)
            let template = try ChatTemplate(source)
            _ = try? ChatSession(model: model, tokenizer: tokenizer, template: template, endOfTurn: nil, capacity: n)
            var session = try ChatSession(model: model, tokenizer: tokenizer, template: template, endOfTurn: n, capacity: 64)
            _ = try session.reply(to: "Hi", maxTokens: n == .max ? 3 : n)
        },
    ]

    static let embedderInputs: [IntegerInput] = [
        IntegerInput("SentenceEmbedder maxTokens") { n in
            let embedder = try SentenceEmbedder(directory: ModelStore.defaultDirectory(), maxTokens: n)
            #expect(try embedder.embed(["a long sentence of several words"], batchSize: 1, progress: { _ in }).count == 1)
        },
        IntegerInput("SentenceEmbedder.embedCorpus batchSize") { n in
            _ = try MiniLMTests.model.get().embedCorpus(["a", "b c"], batchSize: n)
        },
    ]

    @Test("Configurations", arguments: configurations) func configurationInputs(_ input: IntegerInput) { input.check() }
    @Test("GPT-2, sampling, training, tokenizers", arguments: gpt2Inputs) func gpt2Integers(_ input: IntegerInput) { input.check() }
    @Test("Llama", arguments: llamaInputs) func llamaIntegers(_ input: IntegerInput) { input.check() }
    @Test("Sentence embeddings", arguments: embedderInputs) func embedderIntegers(_ input: IntegerInput) { input.check() }
}
