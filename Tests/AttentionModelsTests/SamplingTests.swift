import Attention
import AttentionModels
import Foundation
import Testing

@Suite("Sampling")
struct SamplingTests {
    /// The rule, written plainly: the first index of the largest logit, from index 0 on, replaced
    /// only by a larger one (so NaNs never win, unless the first logit is NaN).
    static func firstLargest(_ x: ArraySlice<Float>) -> Int {
        var best = x.startIndex
        for i in x.indices where x[i] > x[best] { best = i }
        return best - x.startIndex
    }

    @Test("Greedy picks the first largest logit, as the plain loop does: ties, NaNs, infinities, signed zeros, every length to 50 and a vocabulary")
    func greedyIsTheFirstLargest() {
        var g = SplitMix64(seed: 0x6EED)
        var random = SplitMix64(seed: 1)
        let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 3, 3, -2]
        for length in Array(1...50) + [49_152] {
            for trial in 0..<40 {
                // Few distinct values, so that the largest is often tied; some specials in place.
                var x = (0..<length).map { _ in Float(Int(g.next() % 7)) - 3 }
                for _ in 0..<(trial % 4) { x[Int(g.next() % UInt64(length))] = specials[Int(g.next() % UInt64(specials.count))] }
                if trial == 5 { x[0] = .nan }
                if trial == 6 { x = x.map { _ in -.infinity } }
                // Also a slice that does not start at 0.
                let padded = [Float(9)] + x
                for row in [x[...], padded[1...]] {
                    #expect(Sampling.greedy.next(row, using: &random) == Self.firstLargest(row), "length \(length), trial \(trial): \(Array(row.prefix(60)))")
                }
            }
        }
    }
}

extension SamplingTests {
    /// The draw written plainly: every token by decreasing logit (the lower index first on ties),
    /// walked until `u = unit · Σ weights` (the sum in index order) is passed.
    static func drawn(_ x: [Float], temperature: Double, using g: inout SplitMix64) -> Int {
        let top = Double(x.max()!)
        let weights = x.map { exp((Double($0) - top) / temperature) }
        let order = x.indices.sorted { x[$0] > x[$1] || (x[$0] == x[$1] && $0 < $1) }
        var u = g.nextUnit() * weights.reduce(0, +)
        for i in order {
            u -= weights[i]
            if u < 0 { return i }
        }
        return order.last!
    }

    @Test("Temperature sampling without a cut (or top-p 1) draws what walking every token in order draws, seed for seed")
    func temperatureWithoutCut() {
        var g = SplitMix64(seed: 0x7E4)
        for (length, temperature) in [(5, 1.0), (300, 0.7), (300, 1.0), (2000, 2.0), (2000, 25.0), (40_000, 1.0)] {
            // Ties, and logits spread so that the tail below 1e-9 of the most likely is sometimes reached.
            let x = (0..<length).map { _ in Float(Int(g.next() % 400)) / 10 - 20 }
            for topP in [nil, 1.0] as [Double?] {
                var a = SplitMix64(seed: 99), b = SplitMix64(seed: 99)
                let sampling = Sampling(temperature: temperature, topP: topP)
                for draw in 0..<200 {
                    #expect(sampling.next(x[...], using: &a) == Self.drawn(x, temperature: temperature, using: &b),
                            "length \(length), temperature \(temperature), top-p \(String(describing: topP)), draw \(draw)")
                }
            }
        }
    }
}
