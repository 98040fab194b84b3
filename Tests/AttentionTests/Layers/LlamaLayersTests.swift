import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("RMSNorm, SiLU and rotary embeddings")
struct LlamaLayersTests {
    @Test("RMSNorm divides each row by its root mean square (worked out by hand), then scales")
    func rmsNorm() throws {
        let norm = try RMSNorm(weight: Tensor<Double>([1, 2, 0.5, -1]), epsilon: 0)
        // Row [1, 1, 1, 1] has RMS 1; row [2, -2, 2, -2] has RMS 2; row [3, 4, 0, 0] has RMS 2.5.
        let y = try norm(Tensor<Double>([[1, 1, 1, 1], [2, -2, 2, -2], [3, 4, 0, 0]]))
        let expected: [Double] = [1, 2, 0.5, -1, 1, -2, 0.5, 1, 1.2, 3.2, 0, 0]
        #expect(zip(y.scalars, expected).allSatisfy { abs($0 - $1) < 1e-15 })
        let withEpsilon = try RMSNorm(weight: Tensor<Double>([1]), epsilon: 3)(Tensor<Double>([[1]]))
        #expect(withEpsilon.scalars == [0.5])   // 1 / √(1 + 3)
        #expect(thrownError { try norm(Tensor<Double>([[1, 2, 3]])) } == .shapeMismatch("input"))
        #expect(thrownError { try RMSNorm(weight: Tensor<Double>(zeros: [2, 2])) } == .invalidShape("weight"))
        #expect(thrownError { try RMSNorm(weight: Tensor<Double>([1]), epsilon: -1) } == .invalidArgument("epsilon"))
    }

    @Test("SiLU is x·σ(x)")
    func siluValues() throws {
        let y = try silu(Tensor<Double>([0, 1, -1, 20]))
        #expect(y.scalars[0] == 0)
        #expect(abs(y.scalars[1] - 1 / (1 + exp(-1))) < 1e-15)
        #expect(abs(y.scalars[2] + 1 / (1 + exp(1))) < 1e-15)
        #expect(abs(y.scalars[3] - 20) < 1e-6)
    }

    @Test("SiLU in Float (vectorized) is the Double form's value on the same inputs, tails and partial vectors included",
          arguments: supportedSets)
    func siluFloat(instructionSet: String) throws {
        // 1003 values (a partial last vector), from −110 (σ underflows) through 0 to 110 (σ is 1).
        let xs = ((0..<1003).map { Float(-110 + 220 * Double($0) / 1002) } + [-1e-3, 1e-3, -0.0, 0.5, -0.5])
        let exact = try silu(Tensor<Double>(xs.map { Double($0) })).scalars
        let fast = try silu(Tensor<Float>(xs), options: tiled(instructionSet)).scalars
        for (i, (f, e)) in zip(fast, exact).enumerated() {
            // exp's argument −|x|·log2(e) is rounded to Float: for x < 0 (σ ≈ e^x) that is a relative
            // error of about 6e-8·|x|, on top of the polynomial's 1e-7. Below x ≈ −87.7, σ(x) < 2^−126
            // is flushed to 0: outputs under 1e-36 in magnitude may read 0.
            let bound = (3e-7 + 1e-7 * Double(abs(xs[i]))) * abs(e) + 1e-36
            #expect(abs(Double(f) - e) <= bound, "x = \(xs[i]): \(f) against \(e)")
        }
    }

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
}
