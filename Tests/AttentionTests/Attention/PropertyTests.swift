import Attention
import AttentionTestSupport
import Testing

/// Properties any attention must have, on random inputs.
@Suite("Properties of attention")
struct PropertyTests {
    func inputs(seed: UInt64, nq: Int = 5, nk: Int = 9, d: Int = 6, dv: Int = 4) throws
        -> (Tensor<Double>, Tensor<Double>, Tensor<Double>)
    {
        var g = SplitMix64(seed: seed)
        return (try .randomNormal(shape: [nq, d], using: &g), try .randomNormal(shape: [nk, d], using: &g),
                try .randomNormal(shape: [nk, dv], using: &g))
    }

    @Test("Weights are non-negative and each row sums to 1", arguments: [1, 2, 3] as [UInt64])
    func weightsAreDistributions(seed: UInt64) throws {
        let (q, k, v) = try inputs(seed: seed)
        let r = try scaledDotProductAttention(query: q, key: k, value: v, returning: .weights)
        let w = try #require(r.weights)
        #expect(w.scalars.allSatisfy { $0 >= 0 })
        for row in w.rows { #expect(abs(row.reduce(0, +) - 1) < 1e-12) }
    }

    @Test("Adding a constant to every score of a row changes nothing")
    func shiftInvariance() throws {
        let (q, k, v) = try inputs(seed: 4)
        let plain = try scaledDotProductAttention(query: q, key: k, value: v)
        let shift = try Tensor<Double>(shape: [5, 1], scalars: [3, -7, 100, 0.5, -1000])   // per row, broadcast over keys
        let shifted = try scaledDotProductAttention(query: q, key: k, value: v, bias: shift)
        #expect(maxAbsDifference(plain.output.scalars, shifted.output.scalars) < 1e-12)
    }

    @Test("Permuting keys and values together changes nothing")
    func permutationInvariance() throws {
        let (q, k, v) = try inputs(seed: 5)
        let permutation = [3, 0, 8, 1, 7, 2, 6, 4, 5]
        let kp = try Tensor(k.rows.indices.map { k.rows[permutation[$0]] })
        let vp = try Tensor(v.rows.indices.map { v.rows[permutation[$0]] })
        let a = try scaledDotProductAttention(query: q, key: k, value: v)
        let b = try scaledDotProductAttention(query: q, key: kp, value: vp)
        #expect(maxAbsDifference(a.output.scalars, b.output.scalars) < 1e-12)
    }

    @Test("One dominant key returns its value")
    func dominantKey() throws {
        let keys: [[Double]] = [[0, 1], [50, 0], [0, -1], [1, 1]]
        let values: [[Double]] = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]
        let r = try singleQueryAttention(query: [10, 0], keys: keys, values: values, scale: 1)
        #expect(maxAbsDifference(r.output, [4.0, 5, 6]) < 1e-12)
    }

    @Test("Equal scores return the mean of the values")
    func equalScores() throws {
        let keys: [[Double]] = [[1, 2], [1, 2], [1, 2]]
        let values: [[Double]] = [[3, 0], [6, 1], [0, 5]]
        let r = try singleQueryAttention(query: [0.3, -0.8], keys: keys, values: values)
        #expect(maxAbsDifference(r.output, [3.0, 2]) < 1e-14)
        #expect(maxAbsDifference(r.weights, [1 / 3.0, 1 / 3.0, 1 / 3.0]) < 1e-15)
    }

    @Test("Log-sum-exp recovers the weights: P = exp(S - L)")
    func logSumExpRecoversWeights() throws {
        let (q, k, v) = try inputs(seed: 6)
        let r = try scaledDotProductAttention(query: q, key: k, value: v, scale: 0.7, returning: .all)
        let w = try #require(r.weights), l = try #require(r.logSumExp)
        #expect(l.shape == [5])
        for i in 0..<5 {
            for j in 0..<9 {
                var s = 0.0
                for c in 0..<6 { s += q[i, c] * k[j, c] }
                #expect(abs(w[i, j] - Foundation.exp(0.7 * s - l[i])) < 1e-12)
            }
        }
    }

    @Test("Huge scores do not overflow")
    func hugeScores() throws {
        let r = try singleQueryAttention(query: [1e5, 1e5], keys: [[1, 1], [1, 0.999]], values: [[1.0], [0.0]], scale: 1)
        #expect(r.output[0].isFinite)
        #expect(abs(r.output[0] - 1) < 1e-12)
    }
}

import Foundation
