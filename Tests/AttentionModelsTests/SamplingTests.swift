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
    /// The draw written plainly, in Double, from the weights ``Sampling/weights(_:temperature:)``
    /// defines: without a cut, every token in index order, walked until `u = unit · Σ w` is passed;
    /// with one, the tokens by decreasing logit (the lower index first on ties), the first `topK`,
    /// then the fewest whose weights reach `topP` of the sum (of all, or of the `topK` kept), walked
    /// until `u = unit · Σ kept` is passed.
    static func drawn(_ x: [Float], _ sampling: Sampling, using g: inout SplitMix64) -> Int {
        let w = Sampling.weights(x, temperature: sampling.temperature).map(Double.init)
        let total = w.reduce(0, +)
        if sampling.topK == nil, (sampling.topP ?? 1) >= 1 {
            var u = g.nextUnit() * total
            for i in x.indices where w[i] > 0 {
                u -= w[i]
                if u < 0 { return i }
            }
            return x.indices.last { w[$0] > 0 }!
        }
        var order = x.indices.sorted { x[$0] > x[$1] || (x[$0] == x[$1] && $0 < $1) }
        if let k = sampling.topK { order = Array(order.prefix(k)) }
        let keptTotal = sampling.topK == nil ? total : order.reduce(0) { $0 + w[$1] }
        if let p = sampling.topP {
            var cumulative = 0.0
            for n in order.indices {
                cumulative += w[order[n]] / keptTotal
                if cumulative >= p { order = Array(order.prefix(n + 1)); break }
            }
        }
        var u = g.nextUnit() * order.reduce(0) { $0 + w[$1] }
        for i in order {
            u -= w[i]
            if u < 0 { return i }
        }
        return order.last!
    }

    @Test("The weights are exp((x − max)/T) to within Float rounding of the exponent (0 for NaN logits and far below the maximum), and one-hot on the greedy choice without a temperature or with an infinite logit")
    func weights() {
        var g = SplitMix64(seed: 0x3E1)
        for (length, temperature) in [(1, 1.0), (15, 0.7), (16, 1.0), (17, 0.05), (300, 2.0), (5000, 25.0)] {
            var x = (0..<length).map { _ in Float(Int(g.next() % 4000)) / 40 - 50 }
            if length > 3 { x[2] = .nan }
            let w = Sampling.weights(x, temperature: temperature)
            let top = Double(x.filter { !$0.isNaN }.max()!)
            for i in x.indices {
                guard !x[i].isNaN else { #expect(w[i] == 0); continue }
                let exact = exp((Double(x[i]) - top) / temperature)
                if exact > 1e-30 {
                    // The exponent is rounded to Float: an error of 1e-7 of its size becomes a
                    // relative error of 1e-7·|ln w| in the weight, besides the exponential's own.
                    let bound = (2e-7 + 3e-7 * abs(log(exact))) * exact
                    #expect(abs(Double(w[i]) - exact) <= bound, "length \(length), T \(temperature), token \(i): \(w[i]) against \(exact)")
                } else {
                    #expect(Double(w[i]) <= 1.1e-30)
                }
            }
        }
        // Temperatures at the ends of Double's range: the weights of greedy, and of a uniform draw.
        for tiny in [1e-40, 1e-300] {
            #expect(Sampling.weights([1, 3, 3, 2], temperature: tiny) == [0, 1, 1, 0])
            var r = SplitMix64(seed: 3)
            // The two tied most likely tokens, each half the time; top-p 0.5 keeps the first of them.
            for sampling in [Sampling(temperature: tiny), Sampling(temperature: tiny, topK: 3)] {
                let drawn = Set((0..<40).map { _ in sampling.next([1, 3, 3, 2][...], using: &r) })
                #expect(drawn == [1, 2], "\(sampling)")
            }
            let half = Sampling(temperature: tiny, topP: 0.5)
            #expect((0..<20).allSatisfy { _ in half.next([1, 3, 3, 2][...], using: &r) == 1 })
        }
        #expect(Sampling.weights([1, 3, 3, 2], temperature: 1e300) == [1, 1, 1, 1])
        #expect(Sampling.weights([1, 3, 3, 2], temperature: 0) == [0, 1, 0, 0])
        #expect(Sampling.weights([1, .infinity, 3, .infinity], temperature: 1) == [0, 1, 0, 0])
        #expect(Sampling.weights([], temperature: 1) == [])
    }

    @Test("Draws with a temperature, with and without top-k and top-p, are the plain walk's, seed for seed (up to one draw in 4,200 where the sums' rounding decides)")
    func drawsAreThePlainWalks() {
        var g = SplitMix64(seed: 0x7E4)
        var draws = 0, differing: [String] = []
        for (length, temperature) in [(5, 1.0), (17, 0.7), (300, 1.0), (2000, 2.0), (2000, 25.0), (40_000, 1.0)] {
            // Ties, and logits spread so that the tail below 1e-9 of the most likely is sometimes reached.
            let x = (0..<length).map { _ in Float(Int(g.next() % 400)) / 10 - 20 }
            for (topK, topP) in [(nil, nil), (nil, 1.0), (40, nil), (nil, 0.9), (3, 0.5), (1, nil), (nil, 0.001)] as [(Int?, Double?)] {
                var a = SplitMix64(seed: 99), b = SplitMix64(seed: 99)
                let sampling = Sampling(temperature: temperature, topK: topK, topP: topP)
                for draw in 0..<100 {
                    let (got, expected) = (sampling.next(x[...], using: &a), Self.drawn(x, sampling, using: &b))
                    draws += 1
                    if got != expected { differing.append("length \(length), T \(temperature), \(sampling), draw \(draw): \(got) not \(expected)") }
                }
            }
        }
        // The sampler sums the weights sixteen at a time in Float: a draw can differ only when u
        // falls within about 1e-7 of the total from a boundary (some 4e-4 expected in all).
        #expect(differing.count <= 1, "\(differing.count) of \(draws) draws differ: \(differing.prefix(5))")
    }

    @Test("A draw from the same logits follows the weights' proportions (top-k 2 at temperature 5, 20,000 draws)")
    func proportions() {
        let x: [Float] = [0, 2, 1, -1]
        let sampling = Sampling(temperature: 5, topK: 2)
        var g = SplitMix64(seed: 5)
        var counts = [0, 0, 0, 0]
        for _ in 0..<20_000 { counts[sampling.next(x[...], using: &g)] += 1 }
        // Tokens 1 and 2 only, in the ratio exp(2/5) : exp(1/5) = 0.550 : 0.450 (the binomial's
        // standard deviation is 0.0035 of the draws: the bound is about five of them).
        #expect(counts[0] == 0 && counts[3] == 0)
        #expect(abs(Double(counts[1]) / 20_000 - exp(0.4) / (exp(0.4) + exp(0.2))) < 0.018)
    }
}
