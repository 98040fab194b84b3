import Attention
import AttentionExperiments
import Foundation
import Testing

@Suite("Experiments")
struct ExperimentTests {
    @Test("Scaling: unscaled entropy collapses monotonically, scaled entropy stays nearly flat")
    func scaling() throws {
        let r = try ScalingExperiment.run(seed: 7, keys: 16, trials: 300)
        #expect(r.rows.map(\.dk) == [8, 32, 64, 128, 256, 512])
        let unscaled = r.rows.map(\.unscaledEntropy), scaled = r.rows.map(\.scaledEntropy)
        #expect(zip(unscaled, unscaled.dropFirst()).allSatisfy { $0 > $1 }, "\(unscaled)")
        #expect(unscaled.last! < 0.3 && unscaled.first! > 1)
        #expect((scaled.max()! - scaled.min()!) < 0.15, "\(scaled)")
        #expect(scaled.allSatisfy { $0 > 2 && $0 <= log(16.0) })
        // Entropy is bounded by 0 and ln(keys); example weights are distributions.
        #expect(r.rows.allSatisfy { $0.unscaledEntropy >= 0 && $0.scaledEntropy <= r.maximumEntropy })
        for w in [r.example.unscaledWeights, r.example.scaledWeights] {
            #expect(w.count == 16 && abs(w.reduce(0, +) - 1) < 1e-12)
        }
        #expect(r.example.unscaledWeights.max()! > r.example.scaledWeights.max()!)
    }

    @Test("Every experiment is deterministic by seed and changes with it")
    func determinism() throws {
        #expect(try ScalingExperiment.run(seed: 1, trials: 20) == ScalingExperiment.run(seed: 1, trials: 20))
        #expect(try ScalingExperiment.run(seed: 1, trials: 20) != ScalingExperiment.run(seed: 2, trials: 20))
        #expect(try PatternsExperiment.run(tokens: ["a", "b"], seed: 1) == PatternsExperiment.run(tokens: ["a", "b"], seed: 1))
        #expect(try HeadsExperiment.run(seed: 3) == HeadsExperiment.run(seed: 3))
        #expect(try HeadsExperiment.run(seed: 3) != HeadsExperiment.run(seed: 4))
        #expect(try RetrievalExperiment.run(seed: 5, lengths: [4, 16], trials: 10) == RetrievalExperiment.run(seed: 5, lengths: [4, 16], trials: 10))
        #expect(try CrossExperiment.run(seed: 6) == CrossExperiment.run(seed: 6))
    }

    @Test("Patterns: rows are distributions, causal hides the future, local hides what is outside the window")
    func patterns() throws {
        let tokens = "The cat sat on the mat because it was tired".split(separator: " ").map(String.init)
        let r = try PatternsExperiment.run(tokens: tokens, seed: 11, window: 3)
        for map in [r.full, r.causal, r.local] {
            #expect(map.count == tokens.count)
            #expect(map.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-12 && $0.allSatisfy { $0 >= 0 } })
        }
        for i in tokens.indices {
            for j in tokens.indices {
                if j > i { #expect(r.causal[i][j] == 0) }
                if abs(i - j) > 1 { #expect(r.local[i][j] == 0) }
                #expect(r.full[i][j] > 0)
            }
        }
        // "The" and "the" share an embedding, so they attend alike.
        #expect(r.full[0] == r.full[4])
    }

    @Test("Heads: a single head has similarity 1; several random heads are far from identical")
    func heads() throws {
        let r = try HeadsExperiment.run(seed: 42)
        #expect(r.rows.map(\.heads) == [1, 2, 4, 8])
        #expect(r.rows.map(\.pairs) == [0, 1, 6, 28])
        #expect(r.rows[0].meanCosine == 1 && r.rows[0].meanCorrelation == 1)
        for row in r.rows.dropFirst() {
            #expect(row.meanCosine > 0 && row.meanCosine < 0.95)
            #expect(abs(row.meanCorrelation) < 0.5)
        }
        #expect(r.maps.count == 8)
        // Identical maps have similarity exactly 1, by the definition.
        let same = try HeadsExperiment.similarity([[0.2, 0.8, 0.5, 0.5], [0.2, 0.8, 0.5, 0.5]], heads: 2)
        #expect(abs(same.meanCosine - 1) < 1e-12 && abs(same.meanCorrelation - 1) < 1e-12)
    }

    @Test("Retrieval: attention stays high as sequences grow; average, moving average and memory fall")
    func retrieval() throws {
        let r = try RetrievalExperiment.run(seed: 42, lengths: [4, 16, 64, 256], trials: 60)
        let first = r.rows.first!, last = r.rows.last!
        #expect(r.rows.allSatisfy { $0.attention.accuracy >= 0.9 && $0.attention.cosine > 0.85 })
        #expect(last.average.cosine < first.average.cosine / 3)
        #expect(last.movingAverage.cosine < first.movingAverage.cosine / 3)
        #expect(last.rnnMemory.cosine < first.rnnMemory.cosine / 2)
        #expect(last.rnnMemory.accuracy < 0.5 && first.rnnMemory.accuracy > 0.9)
        #expect(r.rows.allSatisfy { $0.attention.cosine > $0.average.cosine && $0.attention.cosine > $0.rnnMemory.cosine })
    }

    @Test("Cross: every French word reads its English counterpart; weights are Nq × Nk distributions")
    func cross() throws {
        let r = try CrossExperiment.run(seed: 42)
        #expect(r.cross.count == 7 && r.cross.allSatisfy { $0.count == 6 })
        #expect(r.cross.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-12 })
        let expected = ["Le": ["The", "the"], "chat": ["cat"], "s'est": ["sat"], "assis": ["sat"], "sur": ["on"],
                        "le": ["The", "the"], "tapis": ["mat"]]
        for read in r.reads { #expect(expected[read.query]?.contains(read.key) == true, "\(read)") }
        #expect(r.selfAttention.count == 6 && r.selfAttention.allSatisfy { $0.count == 6 })
    }
}
