import Attention
import AttentionTestSupport
import AttentionExperiments
import Testing

@Suite("Associative recall")
struct RecallTests {
    @Test("Batches: distinct keys, the query is the key at its position, the target its value, same seed same batch")
    func batches() throws {
        var g1 = SplitMix64(seed: 5), g2 = SplitMix64(seed: 5)
        let a = try RecallBatch(count: 50, length: 12, keyVocabulary: 20, valueVocabulary: 4, using: &g1)
        let b = try RecallBatch(count: 50, length: 12, keyVocabulary: 20, valueVocabulary: 4, using: &g2)
        #expect(a.keys == b.keys && a.values == b.values && a.queries == b.queries)
        for s in 0..<a.count {
            let keys = Array(a.keys[(s * 12)..<((s + 1) * 12)])
            #expect(Set(keys).count == 12)
            #expect(keys.allSatisfy { (0..<20).contains($0) })
            #expect(keys[a.positions[s]] == a.queries[s])
            #expect(a.targets[s] == a.values[s * 12 + a.positions[s]])
        }
        #expect(a.values.allSatisfy { (0..<4).contains($0) })
        // Every position and every value turns up: the draws are not stuck.
        #expect(Set(a.positions).count > 8 && Set(a.values).count == 4)
    }

    @Test("A sequence longer than the key vocabulary is an error naming the length")
    func tooLong() throws {
        var g = SplitMix64(seed: 1)
        #expect(throws: AttentionError.invalidArgument(
            argument: "length", reason: "300 pairs need at least 300 distinct keys; the key vocabulary has 256")) {
            try RecallBatch(count: 1, length: 300, keyVocabulary: 256, valueVocabulary: 16, using: &g)
        }
        var c = RecallExperiment.Configuration()
        c.lengths = [8, 512]
        #expect(thrownError { try RecallExperiment.run(c) } == .invalidArgument("lengths"))
        c.lengths = [8]
        c.steps = 0
        #expect(thrownError { try RecallExperiment.run(c) } == .invalidArgument("steps"))
    }

    static func small(scaled: Bool = true) -> RecallExperiment.Configuration {
        var c = RecallExperiment.Configuration()
        c.keyVocabulary = 24
        c.valueVocabulary = 5
        c.embedDimension = 12
        c.heads = 2
        c.scaled = scaled
        c.seed = 3
        return c
    }

    @Test("Every model's backward pass agrees with the change of its loss, every parameter",
          arguments: RecallExperiment.Model.allCases, [true, false])
    func gradients(model: RecallExperiment.Model, scaled: Bool) throws {
        let checks = try RecallExperiment.gradientChecks(model, Self.small(scaled: scaled), length: 6)
        #expect(checks.count == (model == .attention ? 12 : model == .gru ? 8 : 6))
        for check in checks {
            let error = abs(check.analytic - check.numeric)
            #expect(error <= 1e-2 * abs(check.numeric) + 2e-4, "\(model) parameter \(check.parameter): \(check.analytic) vs \(check.numeric)")
        }
        // The checks can fail: the derivatives are not all zero.
        #expect(checks.contains { abs($0.numeric) > 1e-2 })
    }

    @Test("Attention learns recall on short sequences; mean pooling cannot; the same seed gives the same run")
    func learns() throws {
        var c = Self.small()
        c.lengths = [4, 8]
        c.steps = 500
        c.batchSize = 16
        c.evaluationSize = 200
        c.models = [.attention, .meanPooling]
        let r = try RecallExperiment.run(c)
        let attention = try #require(r.run(.attention)), mean = try #require(r.run(.meanPooling))
        #expect(attention.accuracies.allSatisfy { $0 > 0.9 }, "\(attention.accuracies) \(attention.losses)")
        #expect(try #require(attention.losses.last) < 0.5 * (try #require(attention.losses.first)))
        #expect(mean.accuracies[1] < 0.6, "\(mean.accuracies)")
        let expectedParameters = 4 * (12 * 12 + 12) + 12 * 5 + 5
        #expect(attention.parameters == expectedParameters)
        let inspection = try #require(r.inspection)
        #expect(inspection.length == 8 && inspection.weights.count == 2)
        #expect(inspection.weights.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-4 })
        #expect(inspection.weightOnMatch.max() ?? 0 > 0.5)

        c.steps = 30
        let again1 = try RecallExperiment.run(c), again2 = try RecallExperiment.run(c)
        #expect(again1.runs.map(\.losses) == again2.runs.map(\.losses))
        #expect(again1.runs.map(\.accuracies) == again2.runs.map(\.accuracies))
    }

    @Test("The GRU's hidden size makes its parameter count closest to attention's")
    func gruSize() throws {
        var c = Self.small()
        c.lengths = [4]
        c.steps = 1
        c.evaluationSize = 4
        let r = try RecallExperiment.run(c)
        let attention = try #require(r.run(.attention)?.parameters), gru = try #require(r.run(.gru)?.parameters)
        // 3h(d + h + 2) + (h + 1)·v with d = 12, v = 5: each step in h moves it by at least 3(d + 2) + v.
        let halfStep = (3 * (12 + 2 * 12 + 2) + 5) / 2 + 1
        #expect(abs(gru - attention) <= halfStep, "GRU \(gru) vs attention \(attention)")
    }
}
