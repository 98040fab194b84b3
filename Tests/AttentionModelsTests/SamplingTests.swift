import Attention
import AttentionModels
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
