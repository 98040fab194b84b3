import Attention
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// Gemma 3 270M (Q4_K_M) against transformers' Gemma3ForCausalLM loading the same file (fixtures
/// from scripts/make-gemma3-fixtures.py): five prompts, one of 746 tokens, longer than the sliding
/// window of 512.
@Suite("Gemma 3 model", .serialized)
struct Gemma3ModelTests {
    struct Fixture: Decodable {
        struct Prompt: Decodable { let text: String, ids: [Int], topIds: [[Int]], topLogits: [[Float]], generated: [Int], margins: [Float] }
        let prompts: [Prompt]
    }

    static let quantized: Result<LlamaModel, Error> = Result { try LlamaModel(gguf: Gemma3FileTests.file.get()) }
    static let float: Result<LlamaModel, Error> = Result { try LlamaModel(gguf: Gemma3FileTests.file.get(), precision: .float32) }
    static func model(_ precision: LlamaModel.WeightPrecision) throws -> LlamaModel { try (precision == .asStored ? quantized : float).get() }

    func fixture() throws -> Fixture {
        try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.root.appendingPathComponent("gemma3/model.json")))
    }

    @Test("The configuration is Gemma 3's: windowed layers but every sixth, heads wider than the width, RoPE bases 1e6 and 1e4")
    func configuration() throws {
        let model = try Self.model(.asStored)
        let c = model.configuration
        #expect(c.family == .gemma3 && c.layers == 18 && c.width == 640 && c.heads == 4 && c.keyValueHeads == 1 && c.headDimension == 256)
        #expect(c.slidingWindow == 512 && c.ropeBase == 1_000_000 && c.vocabularySize == 262_144 && c.feedForwardSize == 2048)
        #expect((0..<18).filter(c.isGlobal) == [5, 11, 17])
        #expect(model.tiedOutput && model.blocks.allSatisfy { $0.queryNorm != nil && $0.feedForwardOutputNorm != nil })
        #expect(model.windowedRotary.base == 10_000 && model.rotary.base == 1_000_000)
        // The value projections (Q8_0) multiply in Float under int8; the other Q8_0 matrix, the output layer, does not.
        #expect(model.blocks.allSatisfy { $0.value.quantizedWeight?.usesIntegerProducts == false && $0.query.quantizedWeight?.usesIntegerProducts == true })
        #expect(model.head.quantizedWeight?.format == .q8_0 && model.head.quantizedWeight?.usesIntegerProducts == true)
    }

    @Test("The prompts' ids are transformers' (the tokenizer from the file)")
    func promptIDs() throws {
        let tokenizer = try SentencePieceBPETokenizer(gguf: Gemma3FileTests.file.get())
        for prompt in try fixture().prompts { #expect(tokenizer.encode(prompt.text) == prompt.ids, "\(prompt.text.prefix(40))") }
    }

    @Test("A base model's file has no chat template: Gemma's turns render the fixture's chat prompt, an assistant's turn as the model's")
    func turns() throws {
        let template = try ChatTemplate(#require(DecoderFamily.gemma3.turnTemplate))
        let chatPrompt = try #require(fixture().prompts.first { $0.text.hasPrefix("<start_of_turn>") })
        #expect(try template.render([.init(role: "user", content: "What does attention compute?")], addGenerationPrompt: true) == chatPrompt.text)
        let conversation = try template.render([.init(role: "user", content: " Hi "), .init(role: "assistant", content: "Hello."), .init(role: "user", content: "Why?")],
                                               addGenerationPrompt: false)
        #expect(conversation == "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nWhy?<end_of_turn>\n")
        #expect(DecoderFamily.gemma3.endOfTurn == "<end_of_turn>" && DecoderFamily.llama.turnTemplate == nil)
    }

    /// The runs of the logits and greedy tests (top-16 logits):
    /// - Float products: float32 through 18 blocks in another order of sums than PyTorch's, 7.6e-5
    ///   (Float weights) and 2.1e-4 (quantized kernels) measured.
    /// - Int8 products (the inputs of the Q5_0 matrices and of the Q8_0 output layer rounded to 8 bits
    ///   per block, those of the Q4_K attention outputs and the Q4_K and Q6_K down projections in two
    ///   passes; the value projections stay in Float, as the family says): top logits within 0.49 of
    ///   transformers' on every prompt (1.78 with one pass), measured on a Zen 4 (llama.cpp on the same file, which
    ///   rounds every matrix's input, value projections included: 0.59 to 3.1). Greedy decoding
    ///   keeps transformers' tokens except where its two best were within 0.057 (the chat prompt's
    ///   third step; llama.cpp parts from them at a gap of 0.012, on the first prompt). Over the
    ///   prompts' positions the best token is transformers' except where its two best were 0.072
    ///   apart (the code prompt's second position).
    static let runs = [DecoderRun(weights: .asStored, products: .int8, tolerance: 1, tie: 0.06, positionTie: 0.075),
                       DecoderRun(weights: .asStored, products: .float32, tolerance: 1e-3, tie: 0.05),
                       DecoderRun(weights: .float32, products: .float32, tolerance: 1e-3, tie: 0.05)]

    /// The largest difference between `row` (one position's logits) and transformers' top 16 there,
    /// after checking that the most likely token is its where its two best are not a near-tie (`tie`).
    func compare(_ row: ArraySlice<Float>, ids: [Int], values: [Float], tie: Float, _ where: String) -> Float {
        if values[0] - values[1] > tie {
            #expect(row.indices.max(by: { row[$0] < row[$1] }).map { $0 - row.startIndex } == ids[0], "\(`where`)")
        }
        return zip(ids, values).map { abs(row[row.startIndex + $0] - $1) }.max() ?? 0
    }

    @Test("Logits at every position of the short prompts, and past the window on the long one, agree with transformers': weights quantized or in Float, products in Float or int8",
          arguments: runs)
    func logits(run: DecoderRun) throws {
        let model = try Self.model(run.weights)
        let vocabulary = model.configuration.vocabularySize
        var worst: Float = 0
        for prompt in try fixture().prompts {
            if prompt.ids.count <= 64 {
                let logits = try model.logits(prompt.ids, options: run.options)
                for t in prompt.ids.indices {
                    worst = max(worst, compare(logits.scalars[(t * vocabulary)..<((t + 1) * vocabulary)], ids: prompt.topIds[t],
                                               values: prompt.topLogits[t], tie: run.positionTie ?? run.tie, "\(run) \(prompt.text.prefix(20)) position \(t)"))
                }
            } else {
                // Through the caches in pieces: positions 255, 511 (the window's edge), 600 and the
                // last, each the last row of its piece; with caches of the whole history (capacity
                // the prompt's length), then with the windowed layers' rings (capacity 4,096).
                for capacity in [prompt.ids.count, 4096] {
                    var caches = try model.makeCaches(capacity: capacity)
                    #expect(caches.filter { $0.slidingWindow != nil }.count == (capacity == 4096 ? 15 : 0))
                    var start = 0
                    for end in [256, 512, 601, prompt.ids.count] {
                        let row = try model.logits(appending: Array(prompt.ids[start..<end]), to: &caches, lastOnly: true, options: run.options)
                        worst = max(worst, compare(row.scalars[...], ids: prompt.topIds[end - 1], values: prompt.topLogits[end - 1], tie: run.positionTie ?? run.tie,
                                                   "\(run) long prompt position \(end - 1), capacity \(capacity)"))
                        start = end
                    }
                }
                // The whole prompt in one call: 512 positions, then the rest (the rings take 512 at once).
                var rings = try model.makeCaches(capacity: 4096)
                let row = try model.logits(appending: prompt.ids, to: &rings, lastOnly: true, options: run.options)
                worst = max(worst, compare(row.scalars[...], ids: prompt.topIds.last!, values: prompt.topLogits.last!, tie: run.positionTie ?? run.tie,
                                           "\(run) long prompt in one call"))
                #expect(rings.allSatisfy { $0.count == prompt.ids.count })
            }
        }
        #expect(worst < run.tolerance, "\(run): largest difference \(worst) among the top-16 logits")
    }

    @Test("A windowed layer's cache is a ring of the window and a chunk; a ring on a global layer, or of another window, is refused")
    func windowedCaches() throws {
        let model = try Self.model(.asStored)
        let c = model.configuration
        let caches = try model.makeCaches(capacity: 8192)
        for (layer, cache) in caches.enumerated() {
            if c.isGlobal(layer) {
                #expect(cache.slidingWindow == nil && cache.capacity == 8192, "layer \(layer)")
            } else {
                #expect(cache.slidingWindow == 512 && cache.capacity == 512 + LlamaModel.prefillChunk - 1, "layer \(layer)")
            }
        }
        // 15 rings of 2 × 1,023 rows (each position stored twice) and 3 caches of 8,192: 113 MB against 302.
        let plain = try KVCache(keyValueHeads: c.keyValueHeads, headDimension: c.headDimension, capacity: 8192).allocatedBytes
        let ring = try KVCache(keyValueHeads: c.keyValueHeads, headDimension: c.headDimension, capacity: 1023, slidingWindow: 512).allocatedBytes
        #expect(caches.map(\.allocatedBytes).reduce(0, +) == 3 * plain + 15 * ring && 3 * plain + 15 * ring < 18 * plain * 2 / 5)
        #expect(model.capacity(of: caches) == 8192)
        // Small capacities keep the whole history everywhere: a ring would take more.
        #expect(try model.makeCaches(capacity: 2000).allSatisfy { $0.slidingWindow == nil })
        // Past the ring's capacity, where positions wrap around: 1,491 tokens (the long prompt twice)
        // through rings and through caches of the whole history give the same logits, up to the
        // order of the attention's sums. (Float products: int8 ones round their inputs to 8 bits,
        // and a difference of 1e-7 there can move a rounding, and a logit by a tenth.)
        let float32 = AttentionOptions(quantizedPrecision: .float32)
        let long = try #require(fixture().prompts.first { $0.ids.count > 512 }).ids
        let ids = long + long.dropFirst()
        var rings = try model.makeCaches(capacity: 4096), whole = try model.makeCaches(capacity: ids.count + 8)
        #expect(rings[0].slidingWindow != nil && whole.allSatisfy { $0.slidingWindow == nil })
        var start = 0
        for end in [700, 1100, ids.count] {
            let a = try model.logits(appending: Array(ids[start..<end]), to: &rings, lastOnly: true, options: float32)
            let b = try model.logits(appending: Array(ids[start..<end]), to: &whole, lastOnly: true, options: float32)
            #expect(maxAbsDifference(a.scalars, b.scalars) < 1e-3, "position \(end - 1)")
            start = end
        }
        for _ in 0..<4 {
            let a = try model.logits(appending: [2], to: &rings, options: float32), b = try model.logits(appending: [2], to: &whole, options: float32)
            #expect(maxAbsDifference(a.scalars, b.scalars) < 1e-3)
        }
        var wrong = caches
        wrong[5] = caches[0]   // a ring on the first global layer
        #expect(thrownError { try model.logits(appending: [2], to: &wrong) } == .invalidArgument("caches"))
        wrong = caches
        wrong[0] = try KVCache(keyValueHeads: c.keyValueHeads, headDimension: c.headDimension, capacity: 1023, slidingWindow: 256)
        #expect(thrownError { try model.logits(appending: [2], to: &wrong) } == .invalidArgument("caches"))
    }

    @Test("Greedy decoding through the caches gives transformers' 32 tokens on every prompt, the long one included, up to a near-tie",
          arguments: runs)
    func greedy(run: DecoderRun) throws {
        let model = try Self.model(run.weights)
        let prompts = try fixture().prompts
        var compared = 0
        for prompt in prompts {
            var caches = try model.makeCaches(capacity: prompt.ids.count + 32)
            var logits = try model.logits(appending: prompt.ids, to: &caches, lastOnly: true, options: run.options)
            var generated: [Int] = []
            for step in 0..<32 {
                let next = logits.scalars.indices.max(by: { logits.scalars[$0] < logits.scalars[$1] })!
                // Past a near-tie (a top-2 gap in transformers' run under the run's) the two may part ways.
                if prompt.margins[step] < run.tie { break }
                #expect(next == prompt.generated[step], "\(run) \(prompt.text.prefix(20)) step \(step)")
                guard next == prompt.generated[step] else { break }
                generated.append(next)
                logits = try model.logits(appending: [next], to: &caches, lastOnly: true, options: run.options)
            }
            compared += generated.count
        }
        // Not a test that stops at once: on average at least 8 steps per prompt before a near-tie.
        #expect(compared >= 8 * prompts.count, "\(run): only \(compared) steps compared before near-ties")
    }
}
