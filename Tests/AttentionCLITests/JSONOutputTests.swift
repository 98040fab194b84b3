import Attention
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
