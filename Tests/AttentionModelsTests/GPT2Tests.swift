import Attention
import AttentionTestSupport
import AttentionModels
import Foundation
import Testing

/// A small GPT-2 and its byte-level BPE tokenizer against transformers (fixtures from
/// scripts/make-gpt2-fixtures.py: a vocabulary trained with Hugging Face `tokenizers`, a random
/// `GPT2LMHeadModel` saved with `save_pretrained`).
@Suite("GPT-2")
struct GPT2Tests {
    /// A folder for this test's files, removed when the test ends.
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory("gpt2") }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gpt2")

    struct TokenCases: Decodable {
        struct Case: Decodable { let text: String, ids: [Int], decoded: String }
        let cases: [Case]
    }
    struct Generations: Decodable {
        struct Case: Decodable { let prompt: String, promptIds: [Int], generatedIds: [Int] }
        let logitText: String
        let logitIds: [Int]
        let generations: [Case]
        let trainingInputs: [[Int]]
        let trainingTargets: [[Int]]
        let trainingLoss: Double
    }

    static let model = Result { try GPT2Model(directory: directory) }
    static let tokenizer = Result { try ByteLevelBPETokenizer(directory: directory) }

    func fixture<T: Decodable>(_ name: String, as: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: Self.directory.appendingPathComponent(name)))
    }

    /// max |a - b| over max(1, max |b|).
    func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        let scale = max(1, b.map(abs).max() ?? 0)
        return zip(a, b).map { abs($0 - $1) }.max()! / scale
    }

    @Test("Token ids equal GPT2TokenizerFast's, and decoding gives the text back")
    func tokenizerMatches() throws {
        let tokenizer = try Self.tokenizer.get()
        let cases = try fixture("tokens.json", as: TokenCases.self).cases
        #expect(cases.count >= 12)
        for c in cases {
            #expect(tokenizer.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            #expect(try tokenizer.decode(c.ids) == c.decoded, "\(c.text.debugDescription)")
            #expect(c.decoded == c.text)
        }
    }

    @Test("Pre-tokenizing follows GPT-2's pattern")
    func pretokenizer() {
        func pieces(_ s: String) -> [String] { ByteLevelBPETokenizer.pretokenize(s[...]).map(String.init) }
        #expect(pieces("Hello world") == ["Hello", " world"])
        #expect(pieces("a  b") == ["a", " ", " b"])
        #expect(pieces("it's they're") == ["it", "'s", " they", "'re"])
        #expect(pieces("x  ") == ["x", "  "])
        #expect(pieces("tab\tx") == ["tab", "\t", "x"])
        #expect(pieces("3.14 ok!!") == ["3", ".", "14", " ok", "!!"])
        #expect(pieces("DON'T") == ["DON", "'", "T"])
    }

    @Test("A malformed vocabulary or merge list is refused with the reason")
    func tokenizerErrors() throws {
        let bytes = Dictionary(uniqueKeysWithValues: ByteLevelBPETokenizer.byteToCharacter.enumerated().map { (String($1), $0) })
        #expect(thrownError { try ByteLevelBPETokenizer(vocabulary: ["a": 0], merges: []) } == .invalidFile("<vocabulary>"))
        #expect(thrownError { try ByteLevelBPETokenizer(vocabulary: bytes, merges: [("a", "b")]) } == .invalidFile("<vocabulary>"))
        var repeated = bytes
        repeated["ab"] = 0
        #expect(thrownError { try ByteLevelBPETokenizer(vocabulary: repeated, merges: []) } == .invalidFile("<vocabulary>"))
        var merged = bytes
        merged["ab"] = 256
        let tokenizer = try ByteLevelBPETokenizer(vocabulary: merged, merges: [("a", "b")])
        #expect(tokenizer.encode("abc ab ba") == [256, bytes["c"]!, bytes["Ġ"]!, 256, bytes["Ġ"]!, bytes["b"]!, bytes["a"]!])
        #expect(try tokenizer.decode(tokenizer.encode("abc ab ba")) == "abc ab ba")
        #expect(thrownError { try tokenizer.decode([-1]) } == .invalidArgument("ids"))
        #expect(thrownError { try tokenizer.decode([Int.max]) } == .invalidArgument("ids"))
    }

    /// Every way the model can run here: each instruction set this CPU has, on all threads and on
    /// one, and the reference.
    static let everyExecution: [AttentionOptions] = KernelInstructionSet.allCases.filter(\.isSupported).flatMap {
        [AttentionOptions(implementation: .tiled($0)), AttentionOptions(implementation: .tiled($0), threads: 1)]
    } + [AttentionOptions(implementation: .reference)]

    @Test("Logits equal transformers' GPT2LMHeadModel on every instruction set and the reference", arguments: everyExecution)
    func logitsMatch(options: AttentionOptions) throws {
        let model = try Self.model.get(), tokenizer = try Self.tokenizer.get()
        let f = try fixture("generation.json", as: Generations.self)
        #expect(tokenizer.encode(f.logitText) == f.logitIds)
        let url = Self.directory.appendingPathComponent("logits.npy")
        let expected = try NPY.read(contentsOf: url).floatingPoint(as: Float.self, path: url.path)
        let logits = try model.logits(f.logitIds, options: options)
        #expect(logits.shape == expected.shape)
        #expect(relativeError(logits.scalars, expected.scalars) < 1e-4)
    }

    @Test("Greedy generation equals transformers' generate(), with and without the cache")
    func greedyGeneration() throws {
        let model = try Self.model.get()
        for g in try fixture("generation.json", as: Generations.self).generations {
            var streamed: [Int] = []
            let cached = try model.generate(prompt: g.promptIds, maxTokens: g.generatedIds.count) { streamed.append($0) }
            #expect(cached.generatedIDs == g.generatedIds, "\(g.prompt)")
            #expect(streamed == cached.generatedIDs)
            let recomputed = try model.generate(prompt: g.promptIds, maxTokens: g.generatedIds.count, useCache: false)
            #expect(recomputed.generatedIDs == g.generatedIds, "\(g.prompt)")
            // With an end-of-text token, generation stops right after its first occurrence.
            let stop = g.generatedIds[1]
            let stopped = try model.generate(prompt: g.promptIds, maxTokens: g.generatedIds.count, endOfText: stop)
            #expect(stopped.generatedIDs == Array(g.generatedIds.prefix(through: g.generatedIds.firstIndex(of: stop)!)))
            #expect(stopped.stopReason == .endOfText && cached.stopReason == .maxTokens && recomputed.stopReason == .maxTokens)
        }
    }

    @Test("Decoding through the caches equals the full forward at every position", arguments: [KVCache.Storage.float32, .float16])
    func incrementalEqualsFull(storage: KVCache.Storage) throws {
        let model = try Self.model.get()
        let ids = (0..<40).map { ($0 * 37 + 11) % model.configuration.vocabularySize }
        let full = try model.logits(ids)
        let v = model.configuration.vocabularySize
        // A chunk of 13 (chunked prefill), then one token at a time.
        var caches = try model.makeCaches(storage: storage)
        var rows = try model.logits(appending: Array(ids[..<13]), to: &caches).scalars
        for id in ids[13...] { rows += try model.logits(appending: [id], to: &caches).scalars }
        #expect(caches.allSatisfy { $0.count == ids.count })
        #expect(rows.count == full.count)
        // Float16 rounds keys and values (relative 2^-11); the logits move by a few units of that.
        let tolerance: Float = storage == .float32 ? 1e-4 : 1e-2
        for t in [0, 12, 13, 39] {
            let error = relativeError(Array(rows[t * v..<(t + 1) * v]), Array(full.scalars[t * v..<(t + 1) * v]))
            #expect(error < tolerance, "position \(t)")
        }
        #expect(relativeError(rows, full.scalars) < tolerance)
    }

    @Test("Bad token ids, lengths and caches are typed errors; the caches are left as they were")
    func modelErrors() throws {
        let model = try Self.model.get()
        let c = model.configuration
        #expect(thrownError { try model.logits([]) } == .invalidArgument("ids"))
        #expect(thrownError { try model.logits([c.vocabularySize]) } == .invalidArgument("ids"))
        #expect(thrownError { try model.logits([-1]) } == .invalidArgument("ids"))
        #expect(thrownError { try model.logits([Int](repeating: 1, count: c.positions + 1)) } == .invalidArgument("ids"))
        #expect(thrownError { try model.makeCaches(capacity: 0) } == .invalidArgument("capacity"))
        #expect(thrownError { try model.makeCaches(capacity: c.positions + 1) } == .invalidArgument("capacity"))
        var caches = try model.makeCaches(capacity: 8)
        _ = try model.logits(appending: [1, 2, 3], to: &caches)
        #expect(thrownError { try model.logits(appending: [Int](repeating: 1, count: 6), to: &caches) } == .invalidArgument("ids"))
        #expect(thrownError { try model.logits(appending: [Int.min], to: &caches) } == .invalidArgument("ids"))
        #expect(thrownError { try model.logits(appending: [1], to: &caches, options: AttentionOptions(threads: 0)) } == .invalidArgument("threads"))
        #expect(caches.allSatisfy { $0.count == 3 })
        var wrong = Array(caches.dropLast())
        #expect(thrownError { try model.logits(appending: [1], to: &wrong) } == .invalidArgument("caches"))
        #expect(thrownError { try model.generate(prompt: [1], maxTokens: -1) } == .invalidArgument("maxTokens"))
        #expect(thrownError { try model.generate(prompt: [], maxTokens: 1) } == .invalidArgument("prompt"))
        #expect(thrownError { try model.generate(prompt: [1], maxTokens: 1, sampling: Sampling(temperature: -1)) } == .invalidArgument("temperature"))
        #expect(thrownError { try model.generate(prompt: [1], maxTokens: 1, sampling: Sampling(temperature: 1, topK: 0)) } == .invalidArgument("topK"))
        #expect(thrownError { try model.generate(prompt: [1], maxTokens: 1, sampling: Sampling(temperature: 1, topP: 1.5)) } == .invalidArgument("topP"))
        // Generation stops at the model's positions, and says so, with and without the cache.
        for useCache in [true, false] {
            let long = try model.generate(prompt: [Int](repeating: 1, count: c.positions - 2), maxTokens: 10, useCache: useCache)
            #expect(long.generatedIDs.count == 2 && long.stopReason == .contextFull)
            let exact = try model.generate(prompt: [Int](repeating: 1, count: c.positions - 2), maxTokens: 2, useCache: useCache)
            #expect(exact.generatedIDs.count == 2 && exact.stopReason == .maxTokens)
        }
    }

    @Test("A missing or misshapen tensor in the checkpoint names it")
    func checkpointErrors() throws {
        let configuration = try GPT2Configuration(contentsOf: Self.directory.appendingPathComponent("config.json"))
        let weights = try SafeTensors(contentsOf: Self.directory.appendingPathComponent("model.safetensors"))
        var wider = configuration
        wider.width = 128
        #expect { try GPT2Model(configuration: wider, weights: weights) } throws: { error in
            "\(error)".contains("transformer.wte.weight") && "\(error)".contains("[557, 64]")
        }
        var deeper = configuration
        deeper.layers = 3
        #expect { try GPT2Model(configuration: deeper, weights: weights) } throws: { error in "\(error)".contains("transformer.h.2.ln_1.weight") }
        var odd = configuration
        odd.heads = 5
        #expect(thrownError { try GPT2Model(configuration: odd, weights: weights) } == .invalidFile("config.json"))
        var activation = configuration
        activation.activation = "relu"
        #expect(thrownError { try GPT2Model(configuration: activation, weights: weights) } == .invalidFile("config.json"))
    }

    @Test("Parameters have transformers' names; saved and loaded back, the model computes the same logits")
    func namedParameters() throws {
        let model = try Self.model.get()
        let file = try SafeTensors(contentsOf: Self.directory.appendingPathComponent("model.safetensors"))
        #expect(Set(model.namedParameters.map(\.name)) == Set(file.entries.keys))
        for (name, tensor) in model.namedParameters {
            #expect(try file.tensor(name).scalars == tensor.scalars, "\(name)")
        }
        let folder = scratch.file("model")
        try model.save(to: folder)
        let reloaded = try GPT2Model(directory: folder)
        #expect(reloaded.configuration.width == model.configuration.width && reloaded.configuration.layers == model.configuration.layers)
        #expect(reloaded.configuration.endOfTextToken == 0 && reloaded.configuration.beginningOfTextToken == 0)
        let ids = [5, 99, 300, 12, 7]
        #expect(try reloaded.logits(ids).scalars == model.logits(ids).scalars)
        // A model rebuilt from its own parameters by name; a wrong shape is refused, naming it.
        #expect(try model.loadingParameters(model.parameterDictionary).logits(ids).scalars == model.logits(ids).scalars)
        var broken = model.parameterDictionary
        broken["transformer.h.1.mlp.c_fc.weight"] = try Tensor(zeros: [256, 64])
        #expect { try model.loadingParameters(broken) } throws: { "\($0)".contains("transformer.h.1.mlp.c_fc.weight") }
    }

    @Test("A checkpoint with tensors the model does not have is refused, naming them")
    func extraTensors() throws {
        let model = try Self.model.get()
        let folder = scratch.url
        try SafeTensors.write(model.namedParameters + [("transformer.h.9.mlp.c_fc.weight", try Tensor(zeros: [2]))],
                              to: folder.appendingPathComponent("model.safetensors"))
        let configuration = try GPT2Configuration(contentsOf: Self.directory.appendingPathComponent("config.json"))
        let weights = try SafeTensors(contentsOf: folder.appendingPathComponent("model.safetensors"))
        #expect { try GPT2Model(configuration: configuration, weights: weights) } throws: { "\($0)".contains("transformer.h.9.mlp.c_fc.weight") }
        // The causal-mask buffers of older checkpoints are not parameters: skipped.
        try SafeTensors.write(model.namedParameters + [("transformer.h.0.attn.bias", try Tensor(zeros: [1, 1, 4, 4]))],
                              to: folder.appendingPathComponent("model.safetensors"))
        _ = try GPT2Model(configuration: configuration, weights: SafeTensors(contentsOf: folder.appendingPathComponent("model.safetensors")))
    }

    @Test("The loss and every parameter's gradient equal PyTorch autograd's")
    func gradientsMatchAutograd() throws {
        let model = try Self.model.get()
        let f = try fixture("generation.json", as: Generations.self)
        let expected = try SafeTensors(contentsOf: Self.directory.appendingPathComponent("gradients.safetensors"))
        let (loss, gradients) = try model.lossAndGradients(inputs: f.trainingInputs, targets: f.trainingTargets)
        #expect(abs(loss - f.trainingLoss) < 1e-5 * f.trainingLoss)
        #expect(abs(try model.loss(inputs: f.trainingInputs, targets: f.trainingTargets) - loss) < 1e-9)
        #expect(Set(gradients.keys) == Set(expected.entries.keys))
        for (name, gradient) in gradients {
            let reference = try expected.tensor(name)
            #expect(gradient.shape == reference.shape, "\(name)")
            #expect(relativeError(gradient.scalars, reference.scalars) < 1e-4, "\(name)")
            // Relative to the gradient's own size, not only to 1: small gradients must match too.
            let scale = reference.scalars.map(abs).max() ?? 0
            #expect(zip(gradient.scalars, reference.scalars).map { abs($0 - $1) }.max()! <= 1e-3 * scale + 1e-7, "\(name)")
        }
    }

    @Test("Next-token logits through the screened output layer are the whole row's, bit for bit, wherever sampling can pick; the draws are the same")
    func screenedNextTokenLogits() throws {
        let model = try Self.model.get()
        let prompt = try fixture("generation.json", as: Generations.self).generations[0].promptIds
        for sampling in [Sampling.greedy, Sampling(temperature: 0.8, topK: 5), Sampling(temperature: 2, topK: 40, topP: 0.9),
                         Sampling(temperature: 0.8)] {
            var whole = try model.makeCaches(), screened = try model.makeCaches()
            var pending = prompt, draws = (SplitMix64(seed: 3), SplitMix64(seed: 3))
            for step in 0..<16 {
                let row = try model.logits(appending: pending, to: &whole, lastOnly: true, options: AttentionOptions()).scalars
                let next = try model.nextTokenLogits(appending: pending, to: &screened, sampling: sampling, options: AttentionOptions())
                let label = "\(sampling) step \(step)"
                #expect(next.count == row.count)
                // Every finite entry is the whole row's; the most likely `candidateCount` all are.
                #expect(next.indices.allSatisfy { next[$0] == -.infinity || next[$0].bitPattern == row[$0].bitPattern }, "\(label)")
                let count = sampling.candidateCount ?? row.count
                let likeliest = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(count)
                #expect(likeliest.allSatisfy { next[$0].bitPattern == row[$0].bitPattern }, "\(label)")
                if sampling.candidateCount == nil { #expect(next == row, "\(label)") }
                let token = sampling.next(next[...], using: &draws.0)
                #expect(token == sampling.next(row[...], using: &draws.1), "\(label)")
                pending = [token]
            }
        }
    }

    @Test("Sampling: the same seed gives the same tokens; top-k 1 is greedy; a temperature spreads the choice")
    func sampling() throws {
        let logits: [Float] = [0.5, 2.0, 1.0, -1.0, 1.9]
        var g = SplitMix64(seed: 1)
        #expect(Sampling.greedy.next(logits[...], using: &g) == 1)
        #expect(Sampling(temperature: 1, topK: 1).next(logits[...], using: &g) == 1)
        #expect(Sampling(temperature: 1, topP: 0.01).next(logits[...], using: &g) == 1)
        var a = SplitMix64(seed: 7), b = SplitMix64(seed: 7)
        let hot = Sampling(temperature: 1.5)
        let first = (0..<50).map { _ in hot.next(logits[...], using: &a) }
        #expect(first == (0..<50).map { _ in hot.next(logits[...], using: &b) })
        #expect(Set(first).count >= 3)
        let topTwo = Sampling(temperature: 5, topK: 2)
        #expect(Set((0..<50).map { _ in topTwo.next(logits[...], using: &a) }) == [1, 4])
    }
}

extension GPT2Tests {
    @Test("Attention maps are causal distributions, and the outputs they weight give the model's logits")
    func attentionMaps() throws {
        let model = try Self.model.get()
        let ids = [5, 99, 300, 12, 7, 7, 40]
        let maps = try model.attentions(ids)
        #expect(maps.count == model.configuration.layers)
        let (h, t) = (model.configuration.heads, ids.count)
        for map in maps {
            #expect(map.shape == [h, t, t])
            for head in 0..<h {
                for i in 0..<t {
                    let row = (0..<t).map { map.scalars[(head * t + i) * t + $0] }
                    #expect(abs(row.reduce(0, +) - 1) < 1e-5)
                    #expect(row[(i + 1)...].allSatisfy { $0 == 0 }, "token \(i) must not see later tokens")
                    #expect(row[...i].allSatisfy { $0 > 0 })
                }
            }
        }
        // Token 0 sees only itself.
        #expect(maps[0].scalars[0] == 1)
    }
}
