import Attention
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// The real model against transformers and sentence-transformers (fixtures from
/// scripts/make-model-fixtures.py). The model is installed the way a user installs it
/// (`ModelStore.fetch`, what `attention model fetch` runs) if it is not there yet; these tests never skip.
@Suite("all-MiniLM-L6-v2", .serialized)
struct MiniLMTests {
    struct Fixture: Decodable {
        let sentences: [String]
        let ids: [[Int]]
        let embeddingSentences: [String]
        let attentionSentence: String
        let attentionIds: [Int]
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/model")

    static let model: Result<SentenceEmbedder, Error> = Result {
        let directory = ModelStore.defaultDirectory()
        try ModelStore.fetch(into: directory) { print($0) }
        return try SentenceEmbedder(directory: directory)
    }

    func fixture() throws -> Fixture {
        try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("tokens.json")))
    }

    func npy(_ name: String) throws -> Tensor<Float> {
        let url = Self.fixtures.appendingPathComponent(name)
        return try NPY.read(contentsOf: url).floatingPoint(path: url.path)
    }

    @Test("The encoder's parameters have the checkpoint's names, and rebuilt from them it encodes the same")
    func namedParameters() throws {
        let model = try Self.model.get()
        let file = try SafeTensors(contentsOf: ModelStore.defaultDirectory().appendingPathComponent("model.safetensors"))
        let names = model.encoder.namedParameters.map(\.name)
        #expect(names.count == 5 + 16 * model.encoder.configuration.layers)
        #expect(Set(names).isSubset(of: Set(file.entries.keys)))
        #expect(Set(file.entries.keys).subtracting(names).allSatisfy { $0.hasPrefix("pooler.") || $0.hasSuffix("position_ids") })
        let rebuilt = try model.encoder.loadingParameters(model.encoder.parameterDictionary)
        let ids = [[101, 1996, 4937, 2938, 2006, 1996, 13523, 102]]
        #expect(try rebuilt(ids).hiddenStates.scalars == model.encoder(ids).hiddenStates.scalars)
    }

    @Test("Token ids are identical to the model's own tokenizer")
    func tokenizer() throws {
        let model = try Self.model.get()
        let f = try fixture()
        #expect(f.sentences.count == f.ids.count && f.sentences.count >= 10)
        for (sentence, ids) in zip(f.sentences, f.ids) {
            #expect(model.tokenize(sentence) == ids, "\(sentence.prefix(60))")
        }
        #expect(f.ids.contains { $0.count == 256 })                        // the long input is truncated
        #expect(f.ids.joined().contains(model.tokenizer.unknownID))        // something maps to [UNK]
    }

    /// Every way the encoder can run here: each instruction set this CPU has, on all threads and on
    /// one, and the reference.
    static let everyExecution: [AttentionOptions] = KernelInstructionSet.allCases.filter(\.isSupported).flatMap {
        [AttentionOptions(implementation: .tiled($0)), AttentionOptions(implementation: .tiled($0), threads: 1)]
    } + [AttentionOptions(implementation: .reference)]

    @Test("Embeddings match sentence-transformers: cosine ≥ 0.99999, max abs ≤ 1e-4, on every instruction set and the reference",
          arguments: everyExecution)
    func embeddings(options: AttentionOptions) throws {
        let model = try Self.model.get()
        let f = try fixture()
        let expected = try npy("embeddings.npy")
        let ours = try model.embed(f.embeddingSentences, options: options)
        #expect(expected.shape == [f.embeddingSentences.count, 384])
        for (n, vector) in ours.enumerated() {
            let reference = Array(expected.scalars[n * 384..<(n + 1) * 384])
            #expect(try cosineSimilarity(vector, reference) >= 0.99999)
            #expect(zip(vector, reference).map { abs($0 - $1) }.max() ?? 1 <= 1e-4)
            #expect(abs(vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
        }
    }

    @Test("Every layer's and head's attention weights match transformers within 1e-5")
    func attentions() throws {
        let model = try Self.model.get()
        let f = try fixture()
        #expect(model.tokenize(f.attentionSentence) == f.attentionIds)
        let expected = try npy("attentions.npy")
        let output = try model.encoder([f.attentionIds], returning: .attentions)
        let t = f.attentionIds.count
        #expect(expected.shape == [6, 12, t, t])
        #expect(output.attentions.count == 6)
        for (layer, weights) in output.attentions.enumerated() {
            #expect(weights.shape == [1, 12, t, t])
            let reference = Array(expected.scalars[layer * 12 * t * t..<(layer + 1) * 12 * t * t])
            let worst = zip(weights.scalars, reference).map { abs($0 - $1) }.max() ?? 1
            #expect(worst <= 1e-5, "layer \(layer + 1): \(worst)")
        }
    }

    @Test("Embedding in batches reports progress after each and gives the embeddings of one call")
    func batches() throws {
        let model = try Self.model.get()
        let sentences = (0..<70).map { "Sentence \($0) says the cat sat on mat number \($0 * 7)" }
        var reported: [Int] = []
        let batched = try model.embed(sentences, batchSize: 32) { reported.append($0) }
        #expect(reported == [32, 64, 70])
        let whole = try model.embed(sentences)
        for (a, b) in zip(batched, whole) { #expect(zip(a, b).map { abs($0 - $1) }.max() ?? 1 < 1e-5) }
        #expect(thrownError { try model.embed(sentences, batchSize: 0) { _ in } } == .invalidArgument("batchSize"))
    }

    @Test("Padding in a batch does not change a sentence's embedding")
    func padding() throws {
        let model = try Self.model.get()
        let alone = try model.embed(["A cat"])[0]
        let batched = try model.embed(["A cat", "A considerably longer sentence that forces padding of the first one"])[0]
        #expect(zip(alone, batched).map { abs($0 - $1) }.max() ?? 1 < 1e-5)
    }

    @Test("A batch of mixed lengths (tokens packed, attention in groups of similar length) gives each sequence its hidden states alone, and zeros past its length",
          arguments: [false, true])
    func mixedLengths(withAttentions: Bool) throws {
        let model = try Self.model.get()
        // Lengths from 3 to 70 in no order: several attention groups, and one with every sequence when
        // the weights are asked for.
        let batch = [9, 70, 3, 41, 12, 66, 25, 4, 38].enumerated().map { index, count in
            [101] + (0..<(count - 2)).map { 1000 + (index * 131 + $0 * 17) % 20000 } + [102]
        }
        let output = try model.encoder(batch, returning: withAttentions ? .attentions : [])
        let (t, h) = (70, 384)
        #expect(output.hiddenStates.shape == [batch.count, t, h])
        #expect(output.lengths == batch.map(\.count))
        for (b, ids) in batch.enumerated() {
            let alone = try model.encoder([ids], returning: withAttentions ? .attentions : [])
            let rows = Array(output.hiddenStates.scalars[b * t * h ..< (b * t + ids.count) * h])
            #expect(maxAbsDifference(rows, alone.hiddenStates.scalars) <= 2e-5, "sequence \(b) of \(ids.count) tokens")
            #expect(output.hiddenStates.scalars[(b * t + ids.count) * h ..< (b + 1) * t * h].allSatisfy { $0 == 0 })
            if withAttentions {
                // Layer 3's weights of head 5 over the sequence's own keys; nothing on its padding.
                let n = ids.count, weights = output.attentions[2], single = alone.attentions[2]
                #expect(weights.shape == [batch.count, 12, t, t])
                for i in 0..<n {
                    let row = ((b * 12 + 5) * t + i) * t
                    let expected = Array(single.scalars[(5 * n + i) * n ..< (5 * n + i + 1) * n])
                    #expect(maxAbsDifference(Array(weights.scalars[row ..< row + n]), expected) <= 1e-5)
                    #expect(weights.scalars[row + n ..< row + t].allSatisfy { $0 == 0 })
                }
            }
        }
    }

    @Test("A missing model gets a clear error that says how to fetch it")
    func missing() {
        do {
            try ModelStore.check(URL(fileURLWithPath: "/nonexistent-model-dir"))
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("attention model fetch"))
        }
    }
}
