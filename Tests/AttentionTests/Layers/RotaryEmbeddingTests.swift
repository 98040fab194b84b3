import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("Rotary embeddings")
struct RotaryEmbeddingTests {
    @Test("RoPE: position 0 is the identity, norms are kept, scores depend only on the distance, and the two pairings agree under their permutation")
    func rotary() throws {
        let d = 8
        let halves = try RotaryEmbedding(headDimension: d, base: 100, pairing: .halves)
        let adjacent = try RotaryEmbedding(headDimension: d, base: 100, pairing: .adjacent)
        let x = try Tensor<Double>.randomNormal(shape: [2, 5, d], seed: 3)
        let zero = try halves(Tensor(shape: [1, d], scalars: Array(x.scalars.prefix(d))))
        #expect(zero.scalars == Array(x.scalars.prefix(d)))
        let rotated = try halves(x, startingAt: 3)
        for row in 0..<10 {
            let before = x.scalars[(row * d)..<((row + 1) * d)].reduce(0) { $0 + $1 * $1 }
            let after = rotated.scalars[(row * d)..<((row + 1) * d)].reduce(0) { $0 + $1 * $1 }
            #expect(abs(before - after) < 1e-12)
        }
        // q at position m and k at position n: q·k depends on m − n only.
        let q = Array(x.scalars.prefix(d)), k = Array(x.scalars[d..<(2 * d)])
        func score(_ m: Int, _ n: Int) throws -> Double {
            let a = try halves(Tensor(shape: [1, d], scalars: q), startingAt: m).scalars
            let b = try halves(Tensor(shape: [1, d], scalars: k), startingAt: n).scalars
            return zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
        }
        #expect(abs(try score(7, 4) - score(3, 0)) < 1e-12)
        #expect(abs(try score(2, 9) - score(100, 107)) < 1e-10)
        // Halves index (h, j) is adjacent index 2j + h: permuted, rotated, permuted back is the same.
        func permuted(_ t: Tensor<Double>) -> Tensor<Double> {
            var out = t.scalars
            for row in 0..<(t.count / d) {
                for j in 0..<(d / 2) {
                    out[row * d + 2 * j] = t.scalars[row * d + j]
                    out[row * d + 2 * j + 1] = t.scalars[row * d + j + d / 2]
                }
            }
            return try! Tensor(shape: t.shape, scalars: out)
        }
        let viaAdjacent = try adjacent(permuted(x), startingAt: 5)
        let viaHalves = permuted(try halves(x, startingAt: 5))
        #expect(zip(viaAdjacent.scalars, viaHalves.scalars).allSatisfy { abs($0 - $1) < 1e-15 })
        #expect(thrownError { try RotaryEmbedding(headDimension: 7) } == .invalidArgument("headDimension"))
        #expect(thrownError { try RotaryEmbedding(headDimension: 8, base: 1) } == .invalidArgument("base"))
        #expect(thrownError { try halves(Tensor<Double>(zeros: [2, 6])) } == .invalidShape("input"))
        #expect(thrownError { try halves(x, startingAt: -1) } == .invalidArgument("start"))
    }

    @Test("Angles kept for several inputs rotate them bit for bit as the embedding does; another count or another embedding's angles are refused")
    func keptAngles() throws {
        var g = SplitMix64(seed: 5)
        for pairing in [RotaryEmbedding.Pairing.adjacent, .halves] {
            let rope = try RotaryEmbedding(headDimension: 8, base: 10_000, pairing: pairing)
            let q = try Tensor<Float>.randomUniform(shape: [1, 3, 5, 8], in: -2...2, using: &g)
            let k = try Tensor<Float>.randomUniform(shape: [1, 1, 5, 8], in: -2...2, using: &g)
            let angles = try rope.angles(positions: 5, startingAt: 700)
            #expect(angles.start == 700 && angles.positions == 5)
            #expect(try rope(q, angles: angles).scalars.map(\.bitPattern) == rope(q, startingAt: 700).scalars.map(\.bitPattern))
            #expect(try rope(k, angles: angles).scalars.map(\.bitPattern) == rope(k, startingAt: 700).scalars.map(\.bitPattern))
            let other = try RotaryEmbedding(headDimension: 8, base: 1_000_000, pairing: pairing)
            #expect(thrownError { try other(q, angles: angles) } == .invalidArgument("angles"))
            #expect(thrownError { try rope(q, angles: rope.angles(positions: 4)) } == .invalidArgument("angles"))
            #expect(thrownError { try rope.angles(positions: -1) } == .invalidArgument("positions"))
            #expect(thrownError { try rope.angles(positions: 2, startingAt: Int.max) } == .invalidArgument("start"))
            #expect(try rope.angles(positions: 0).positions == 0)
        }
    }
}
