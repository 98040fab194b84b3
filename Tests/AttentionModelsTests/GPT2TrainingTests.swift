import Attention
import AttentionTestSupport
import AttentionModels
import Foundation
import Testing

/// Learning a byte-level BPE vocabulary, and training a GPT-2 from scratch (small sizes: the
/// gradients themselves are checked against PyTorch in GPT2Tests).
@Suite("GPT-2 training")
struct GPT2TrainingTests {
    /// A folder for this test's files, removed when the test ends.
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory("gpt2-training") }

    static let corpus = [
        "the cat sat on the mat. the cat sat on the hat. the dog sat on the log.",
        "a cat and a dog; the cat, the dog, the mat and the log.",
    ]

    @Test("BPE training merges the most frequent pair first and round-trips any text")
    func bytePairTraining() throws {
        let tokenizer = try ByteLevelBPETokenizer.train(on: Self.corpus, vocabularySize: 300)
        #expect(tokenizer.vocabulary.count <= 300)
        #expect(tokenizer.vocabulary["<|endoftext|>"] == tokenizer.vocabulary.count - 1)
        // Counted by hand over the pre-tokenized corpus: "t h", "h e" and "a t" occur 10 times each,
        // "Ġ t" 9; ties go to the older (here: smaller byte) tokens, so "a t" first, then "h e", after
        // which "t h" has become "t he" (still 10).
        #expect(tokenizer.merges.prefix(3).map { "\($0.0) \($0.1)" } == ["a t", "h e", "t he"])
        #expect(tokenizer.vocabulary["Ġthe"] != nil && tokenizer.vocabulary["Ġcat"] != nil)
        for text in Self.corpus + ["unseen words: Zürich 🙂 東京", "  spaces\tand\nlines  "] {
            #expect(try tokenizer.decode(tokenizer.encode(text)) == text)
        }
        #expect(tokenizer.encode(" the cat").count == 2)
        // Frequent merges shorten the corpus.
        #expect(tokenizer.encode(Self.corpus[0]).count < Self.corpus[0].utf8.count / 2)
    }

    @Test("A learned vocabulary saved as vocab.json and merges.txt loads back and encodes the same")
    func saveAndLoad() throws {
        let tokenizer = try ByteLevelBPETokenizer.train(on: Self.corpus, vocabularySize: 290)
        let folder = scratch.file("tokenizer")
        try tokenizer.save(to: folder)
        let loaded = try ByteLevelBPETokenizer(directory: folder)
        #expect(loaded.vocabulary == tokenizer.vocabulary)
        #expect(loaded.merges.map { $0.0 + " " + $0.1 } == tokenizer.merges.map { $0.0 + " " + $0.1 })
        let text = Self.corpus.joined(separator: "<|endoftext|>")
        #expect(loaded.encode(text) == tokenizer.encode(text))
        let merges = try String(contentsOf: folder.appendingPathComponent("merges.txt"), encoding: .utf8)
        #expect(merges.hasPrefix("#version: 0.2\n"))
    }

    @Test("BPE training stops at the minimum frequency, and refuses bad sizes")
    func bytePairLimits() throws {
        let rare = try ByteLevelBPETokenizer.train(on: ["abcdefgh"], vocabularySize: 1000, minimumFrequency: 2)
        #expect(rare.merges.isEmpty)
        #expect(rare.vocabulary.count == 257)
        let once = try ByteLevelBPETokenizer.train(on: ["abcdefgh"], vocabularySize: 1000, minimumFrequency: 1)
        #expect(once.merges.count == 7)
        #expect(once.encode("abcdefgh").count == 1)
        #expect(thrownError { try ByteLevelBPETokenizer.train(on: Self.corpus, vocabularySize: 256) } == .invalidArgument("vocabularySize"))
        #expect(thrownError { try ByteLevelBPETokenizer.train(on: Self.corpus, vocabularySize: 300, minimumFrequency: 0) } == .invalidArgument("minimumFrequency"))
    }

    @Test("A small GPT-2 learns a repetitive text: the held-out loss falls, and the same seed gives the same run")
    func training() throws {
        let tokenizer = try ByteLevelBPETokenizer.train(on: Self.corpus, vocabularySize: 300)
        let tokens = tokenizer.encode(String(repeating: Self.corpus.joined(separator: " "), count: 12))
        var s = GPT2TrainingSettings()
        (s.layers, s.heads, s.width, s.context, s.batchSize, s.steps, s.evaluationInterval, s.learningRate) = (1, 2, 32, 16, 8, 40, 10, 1e-2)
        s.validationFraction = 0.2
        var reported: [Int] = []
        let (model, history) = try GPT2Training.train(tokens: tokens, vocabularySize: tokenizer.vocabulary.count,
                                                      endOfText: tokenizer.endOfText, settings: s) { reported.append($0.step) }
        #expect(reported == Array(1...40))
        #expect(history.losses.count == 40)
        #expect(history.validation.map(\.step) == [10, 20, 30, 40])
        let initial = log(Double(tokenizer.vocabulary.count))
        #expect(history.validation.last!.loss < 0.5 * initial)
        let first: Double = history.losses.prefix(5).reduce(0, +) / 5, last: Double = history.losses.suffix(5).reduce(0, +) / 5
        #expect(last < first)
        #expect(history.parameters == model.parameterCount)
        #expect(model.configuration.endOfTextToken == tokenizer.endOfText)
        let (_, again) = try GPT2Training.train(tokens: tokens, vocabularySize: tokenizer.vocabulary.count, endOfText: tokenizer.endOfText, settings: s)
        #expect(again.losses == history.losses)
    }

    @Test("Training refuses settings out of range and too little text")
    func trainingErrors() throws {
        var s = GPT2TrainingSettings()
        s.width = 30
        #expect(thrownError { try GPT2Training.train(tokens: Array(repeating: 1, count: 5000), vocabularySize: 10, endOfText: nil, settings: s) } == .invalidArgument("width"))
        s = GPT2TrainingSettings()
        s.steps = 0
        #expect(thrownError { try s.validate() } == .invalidArgument("steps"))
        s = GPT2TrainingSettings()
        s.learningRate = .nan
        #expect(thrownError { try s.validate() } == .invalidArgument("learningRate"))
        #expect(thrownError { try GPT2Training.train(tokens: Array(repeating: 1, count: 100), vocabularySize: 10, endOfText: nil, settings: GPT2TrainingSettings()) } == .invalidArgument("tokens"))
    }

    @Test("The learning rate warms up, peaks, and decays to a tenth")
    func schedule() {
        var s = GPT2TrainingSettings()
        s.steps = 200
        #expect(abs(s.learningRate(at: 1) - s.learningRate / 10) < 1e-12)
        #expect(abs(s.learningRate(at: 10) - s.learningRate) < 1e-12)
        #expect(abs(s.learningRate(at: 200) - s.learningRate / 10) < 1e-12)
        #expect(s.learningRate(at: 100) < s.learningRate && s.learningRate(at: 100) > s.learningRate / 10)
    }

    @Test("GPT-2's initialization: weights of deviation 0.02, residual projections smaller, LayerNorms identity")
    func initialization() throws {
        var c = GPT2Configuration(vocabularySize: 500, positions: 32, width: 64, layers: 4, heads: 4)
        c.endOfTextToken = 499
        let model = try GPT2Model(configuration: c, seed: 7)
        let p = model.parameterDictionary
        func deviation(_ name: String) -> Double {
            let v = p[name]!.scalars.map(Double.init)
            let mean = v.reduce(0, +) / Double(v.count)
            return (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)).squareRoot()
        }
        #expect(abs(deviation("transformer.wte.weight") - 0.02) < 0.001)
        #expect(abs(deviation("transformer.h.0.attn.c_proj.weight") - 0.02 / 8.0.squareRoot()) < 0.0005)
        #expect(p["transformer.h.3.ln_2.weight"]!.scalars.allSatisfy { $0 == 1 })
        #expect(p["transformer.h.3.mlp.c_fc.bias"]!.scalars.allSatisfy { $0 == 0 })
        #expect(model.tiedOutput)
    }
}
