import Attention
import AttentionTestSupport
import Testing

@Suite("Single-query attention, the lessons' form")
struct SingleQueryTests {
    @Test("The worked example: query [0.5, 0.5] over two keys, scale 1")
    func workedExample() throws {
        let r = try singleQueryAttention(
            query: [0.5, 0.5], keys: [[0.1, 0.2], [0.2, 0.3]], values: [[0.6, 0.8], [0.7, 0.9]], scale: 1.0)
        // Scores by hand: 0.5·0.1 + 0.5·0.2 and 0.5·0.2 + 0.5·0.3.
        #expect(abs(r.scores[0] - 0.15) < 1e-15)
        #expect(abs(r.scores[1] - 0.25) < 1e-15)
        // Weights: softmax of [0.15, 0.25] is [1, e^0.1] / (1 + e^0.1).
        let e = Foundation.exp(0.1)
        #expect(abs(r.weights[0] - 1 / (1 + e)) < 1e-15)
        #expect(abs(r.weights[1] - e / (1 + e)) < 1e-15)
        // The lesson prints [0.6524979187478941, 0.852497918747894]; the exact value is
        // 0.65249791874789399861..., so any correct Double computation lands within 2 ulps of both.
        let expected = [0.6524979187478941, 0.852497918747894]
        for c in 0..<2 {
            #expect(abs(r.output[c] - expected[c]) <= 2 * expected[c].ulp, "output[\(c)] = \(r.output[c])")
        }
    }

    @Test("Float and Double agree on the worked example")
    func floatAgrees() throws {
        let r = try singleQueryAttention(
            query: [Float(0.5), 0.5], keys: [[0.1, 0.2], [0.2, 0.3]], values: [[0.6, 0.8], [0.7, 0.9]], scale: 1)
        #expect(abs(Double(r.output[0]) - 0.6524979187478940) < 1e-7)
        #expect(abs(Double(r.output[1]) - 0.8524979187478940) < 1e-7)
    }

    @Test("The default scale is 1/√D")
    func defaultScale() throws {
        let keys: [[Double]] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
        let values: [[Double]] = [[1], [2], [3]]
        let query: [Double] = [2, 0, 0, 0]
        let byDefault = try singleQueryAttention(query: query, keys: keys, values: values)
        let explicit = try singleQueryAttention(query: query, keys: keys, values: values, scale: 0.5)
        #expect(byDefault == explicit)
        #expect(abs(byDefault.scores[0] - 1) < 1e-15)
    }

    @Test("Ragged keys are an error, not a trap")
    func raggedKeys() {
        #expect(thrownError {
            try singleQueryAttention(query: [1.0, 2.0], keys: [[1, 2], [3]], values: [[1], [2]])
        } == .invalidShape("keys"))
    }
}

import Foundation
