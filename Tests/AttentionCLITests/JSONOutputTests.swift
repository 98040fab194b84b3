import Attention
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// `--json` of the commands that print numbers, read back as a script would read it.
@Suite("--json of the executable")
struct JSONOutputTests {
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory("json-output") }

    @Test("heatmap --json gives the slice drawn and its labels")
    func heatmap() throws {
        let weights = scratch.file("w.npy")
        try NPY.write(try Tensor<Float>([[[0.25, 0.75], [1, 0]], [[0.5, 0.5], [0.125, 0.875]]]), to: weights)
        let r = try ExitStatusTests.run(["heatmap", "--weights", weights.path, "--head", "1", "--tokens", "a b", "--json"])
        #expect(r.status == 0, "\(r.error)")
        struct Slice: Decodable { let queryTokens: [String], keyTokens: [String], weights: [[Double]] }
        let slice = try JSONDecoder().decode(Slice.self, from: Data(r.output.utf8))
        #expect(slice.queryTokens == ["a", "b"] && slice.keyTokens == ["a", "b"])
        #expect(slice.weights == [[0.5, 0.5], [0.125, 0.875]])
    }

    @Test("generate --model FILE.gguf --greedy --json continues a prompt with SmolLM2 as transformers does")
    func generateGGUF() throws {
        let directory = SmolLM2Store.defaultDirectory()
        try SmolLM2Store.fetch(into: directory) { print($0) }
        struct Prompt: Decodable { let ids: [Int], generated: [Int], generatedText: String, untilTie: Int }
        struct Fixture: Decodable { let prompts: [Prompt] }
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.root.appendingPathComponent("smollm2/tokens.json")))
        // "1, 2, 3, 4, 5, 6," and its 32 greedy tokens (no near-tie among them).
        let counting = try #require(fixture.prompts.first { $0.generatedText.hasPrefix(" 7, 8, 9") })
        #expect(counting.untilTie == counting.generated.count)
        let r = try ExitStatusTests.run(["generate", "--model", SmolLM2Store.file(in: directory).path, "1, 2, 3, 4, 5, 6,",
                                         "--greedy", "--max-tokens", "\(counting.generated.count)", "--json"])
        #expect(r.status == 0, "\(r.error)")
        struct Report: Decodable {
            let promptIds: [Int], generatedIds: [Int], text: String, promptTokensPerSecond: Double, generatedTokensPerSecond: Double, stopReason: String
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(r.output.utf8))
        #expect(report.stopReason == "max-tokens")
        #expect(report.promptIds == counting.ids)
        #expect(report.generatedIds == counting.generated)
        #expect(report.text == counting.generatedText)
        #expect(report.promptTokensPerSecond > 0 && report.generatedTokensPerSecond > 0)
        // --chat: the question as one user message through the file's template, answered as transformers answers it.
        // (Up to the first near-tie of the reference's two best logits.)
        let chat = try #require(fixture.prompts.first)
        let c = try ExitStatusTests.run(["generate", "--model", SmolLM2Store.file(in: directory).path, "--chat",
                                         "What does attention compute in a transformer?", "--greedy", "--max-tokens", "\(chat.untilTie)", "--json"])
        #expect(c.status == 0, "\(c.error)")
        let answer = try JSONDecoder().decode(Report.self, from: Data(c.output.utf8))
        #expect(answer.promptIds == chat.ids && answer.generatedIds == Array(chat.generated.prefix(chat.untilTie)))
        let both = try ExitStatusTests.run(["generate", "--model", "m.gguf", "--model-dir", "d", "x"])
        #expect(both.status == 64 && both.error.contains("give --model-dir or --model, not both"))
        let neither = try ExitStatusTests.run(["generate", "x"])
        #expect(neither.status == 64 && neither.error.contains("give --model-dir DIR (a GPT-2 folder) or --model FILE.gguf"))
    }

    @Test("bench --model FILE.gguf --streams N --json times one stream and N, and stream 0's tokens are the same in both")
    func benchStreams() throws {
        let directory = SmolLM2Store.defaultDirectory()
        try SmolLM2Store.fetch(into: directory) { print($0) }
        let r = try ExitStatusTests.run(["bench", "--model", SmolLM2Store.file(in: directory).path, "--streams", "3", "--tokens", "4",
                                         "--repeat", "1", "--kv-dtype", "float16", "--json"])
        #expect(r.status == 0, "\(r.error)")
        struct Report: Decodable {
            let streams: Int, tokens: Int, kvDtype: String, oneStreamTokensPerSecond: Double, tokensPerSecond: Double, ratio: Double,
                stepSeconds: Double, sameTokens: Bool
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(r.output.utf8))
        #expect(report.streams == 3 && report.tokens == 4 && report.kvDtype == "float16" && report.sameTokens)
        #expect(report.oneStreamTokensPerSecond > 0 && report.tokensPerSecond > 0 && report.stepSeconds > 0)
        #expect(abs(report.ratio - report.tokensPerSecond / report.oneStreamTokensPerSecond) < 1e-9 * report.ratio)
    }

    @Test("attend --json names the path that ran and every file written, with shapes and dtypes")
    func attend() throws {
        let (q, k, v) = (scratch.file("q.npy"), scratch.file("k.npy"), scratch.file("v.npy"))
        try NPY.write(try Tensor<Float>.randomNormal(shape: [2, 3, 4], seed: 1), to: q)
        try NPY.write(try Tensor<Float>.randomNormal(shape: [2, 5, 4], seed: 2), to: k)
        try NPY.write(try Tensor<Float>.randomNormal(shape: [2, 5, 6], seed: 3), to: v)
        let (o, w) = (scratch.file("o.npy").path, scratch.file("w.npy").path)
        let r = try ExitStatusTests.run(["attend", "--query", q.path, "--key", k.path, "--value", v.path, "--output", o, "--weights", w, "--json"])
        #expect(r.status == 0, "\(r.error)")
        struct Written: Decodable, Equatable { let file: String, shape: [Int], dtype: String }
        struct Report: Decodable { let path: String?, wrote: [Written] }
        let report = try JSONDecoder().decode(Report.self, from: Data(r.output.utf8))
        #expect(report.path?.hasPrefix("tiled (") == true, "\(report.path ?? "nil")")
        #expect(report.wrote == [Written(file: o, shape: [2, 3, 6], dtype: "float32"), Written(file: w, shape: [2, 3, 5], dtype: "float32")])
    }

    @Test("demo --json holds the walkthrough's numbers: distributions, a causal triangle, entropy rising with temperature")
    func demo() throws {
        let r = try ExitStatusTests.run(["demo", "--json"])
        #expect(r.status == 0, "\(r.error)")
        struct Numbers: Decodable {
            struct Weights: Decodable { let weights: [Double] }
            struct SelfAttention: Decodable { let words: [String], full: [[Double]], causal: [[Double]] }
            struct Temperature: Decodable { let temperature: Double, entropy: Double }
            let workedExample: Weights, sentenceQueries: [Weights], selfAttention: SelfAttention, temperatures: [Temperature]
        }
        let n = try JSONDecoder().decode(Numbers.self, from: Data(r.output.utf8))
        for w in [n.workedExample.weights] + n.sentenceQueries.map(\.weights) + n.selfAttention.full + n.selfAttention.causal {
            #expect(abs(w.reduce(0, +) - 1) < 1e-12 && w.allSatisfy { $0 >= 0 })
        }
        #expect(n.sentenceQueries.count == 3 && n.selfAttention.words.count == 6)
        for (i, row) in n.selfAttention.causal.enumerated() { #expect(row[(i + 1)...].allSatisfy { $0 == 0 }) }
        #expect(zip(n.temperatures, n.temperatures.dropFirst()).allSatisfy { $0.temperature < $1.temperature && $0.entropy < $1.entropy })
    }

    @Test("similarity --json gives the cosine in full precision, equal to the printed one")
    func similarity() throws {
        let (a, b) = ("The cat sat on the mat", "A cat was sitting on a rug")
        let r = try ExitStatusTests.run(["similarity", "--json", a, b])
        #expect(r.status == 0, "\(r.error)")
        struct Answer: Decodable { let first: String, second: String, cosine: Double }
        let answer = try JSONDecoder().decode(Answer.self, from: Data(r.output.utf8))
        #expect((answer.first, answer.second) == (a, b))
        let printed = try ExitStatusTests.run(["similarity", a, b])
        #expect(printed.output == String(format: "%.4f\n", answer.cosine))
    }
}
