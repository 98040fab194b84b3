import Attention
import AttentionTestSupport
import Testing

/// Each mask against a matrix written by hand (1 = may attend).
@Suite("Masks")
struct AttentionMaskTests {
    func matrix(_ rows: [[Int]]) -> [[Bool]] { rows.map { $0.map { $0 == 1 } } }

    @Test("Causal, bottom-right, more keys than queries")
    func causalBottomRightWide() throws {
        #expect(try AttentionMask.causal.matrix(queryLength: 2, keyLength: 5) == matrix([
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 1],
        ]))
    }

    @Test("Causal, top-left, more keys than queries")
    func causalTopLeftWide() throws {
        #expect(try AttentionMask.causal(.topLeft).matrix(queryLength: 2, keyLength: 5) == matrix([
            [1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0],
        ]))
    }

    @Test("Causal, bottom-right, more queries than keys: the first rows are dead")
    func causalBottomRightTall() throws {
        #expect(try AttentionMask.causal.matrix(queryLength: 5, keyLength: 2) == matrix([
            [0, 0],
            [0, 0],
            [0, 0],
            [1, 0],
            [1, 1],
        ]))
    }

    @Test("Causal, top-left, more queries than keys")
    func causalTopLeftTall() throws {
        #expect(try AttentionMask.causal(.topLeft).matrix(queryLength: 4, keyLength: 2) == matrix([
            [1, 0],
            [1, 1],
            [1, 1],
            [1, 1],
        ]))
    }

    @Test("The two alignments coincide when Nq == Nk")
    func alignmentsCoincide() throws {
        for n in [1, 3, 8] {
            #expect(try AttentionMask.causal.matrix(queryLength: n, keyLength: n)
                    == AttentionMask.causal(.topLeft).matrix(queryLength: n, keyLength: n))
        }
    }

    @Test("Sliding window (1, 1)")
    func slidingWindow() throws {
        #expect(try AttentionMask.slidingWindow(left: 1, right: 1).matrix(queryLength: 5, keyLength: 5) == matrix([
            [1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0],
            [0, 1, 1, 1, 0],
            [0, 0, 1, 1, 1],
            [0, 0, 0, 1, 1],
        ]))
    }

    @Test("Sliding window (2, 0) with Nq = 3, Nk = 6 sits on the bottom-right diagonal")
    func slidingWindowAligned() throws {
        #expect(try AttentionMask.slidingWindow(left: 2, right: 0).matrix(queryLength: 3, keyLength: 6) == matrix([
            [0, 1, 1, 1, 0, 0],
            [0, 0, 1, 1, 1, 0],
            [0, 0, 0, 1, 1, 1],
        ]))
    }

    @Test("Causal intersected with a window (1, 3): the window's right side is cut by causality")
    func causalWindow() throws {
        let mask = AttentionMask.causal && .slidingWindow(left: 1, right: 3)
        #expect(try mask.matrix(queryLength: 4, keyLength: 4) == matrix([
            [1, 0, 0, 0],
            [1, 1, 0, 0],
            [0, 1, 1, 0],
            [0, 0, 1, 1],
        ]))
    }

    @Test("A diagonal band at negative offsets: a block below the diagonal of a larger causal mask")
    func diagonalBandBelow() throws {
        #expect(try AttentionMask.diagonalBand(lower: nil, upper: -1).matrix(queryLength: 3, keyLength: 4) == matrix([
            [0, 0, 0, 0],
            [1, 0, 0, 0],
            [1, 1, 0, 0],
        ]))
        #expect(try AttentionMask.diagonalBand(lower: 1, upper: 2).matrix(queryLength: 3, keyLength: 4) == matrix([
            [0, 1, 1, 0],
            [0, 0, 1, 1],
            [0, 0, 0, 1],
        ]))
        // lower > upper hides everything: every row is dead.
        #expect(try AttentionMask.diagonalBand(lower: 2, upper: 1).matrix(queryLength: 2, keyLength: 3) == matrix([
            [0, 0, 0], [0, 0, 0],
        ]))
    }

    @Test("The tiled kernel applies a diagonal band as the reference does, on every instruction set",
          arguments: KernelInstructionSet.allCases.filter(\.isSupported))
    func diagonalBandTiled(_ isa: KernelInstructionSet) throws {
        var g = SplitMix64(seed: 31)
        let q = try Tensor<Float>.randomNormal(shape: [2, 3, 45, 24], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [2, 3, 70, 24], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [2, 3, 70, 20], using: &g)
        for (lower, upper) in [(nil, -9), (-30, 5), (20, 60), (nil, -50), (3, nil)] as [(Int?, Int?)] {
            let mask = AttentionMask.diagonalBand(lower: lower, upper: upper)
            let fast = try scaledDotProductAttention(query: q, key: k, value: v, mask: mask, returning: .logSumExp,
                                                     options: AttentionOptions(implementation: .tiled(isa)))
            let (error, naive, reference) = try errorsAgainstReference(fast.output.scalars, query: q, key: k, value: v, mask: mask)
            #expect(error <= max(2 * naive, Double(4 * Float.ulpOfOne)), "band \(String(describing: lower)) \(String(describing: upper)): \(error) vs \(naive)")
            #expect(maxAbsDifference(fast.logSumExp!.scalars, reference.logSumExp!.scalars) <= 1e-5)
        }
    }

    @Test("Key lengths hide the padding of each batch element")
    func keyLengths() throws {
        let mask = AttentionMask.keyLengths([3, 0])
        #expect(try mask.matrix(queryLength: 2, keyLength: 5, batchSize: 2, batch: 0) == matrix([
            [1, 1, 1, 0, 0],
            [1, 1, 1, 0, 0],
        ]))
        #expect(try mask.matrix(queryLength: 2, keyLength: 5, batchSize: 2, batch: 1) == matrix([
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ]))
    }

    @Test("A boolean mask broadcasts over batch and heads")
    func booleanBroadcast() throws {
        let m = try Tensor<Bool>([[true, false, true], [false, true, true]])
        let mask = AttentionMask.boolean(m)
        for b in 0..<2 {
            for h in 0..<3 {
                #expect(try mask.matrix(queryLength: 2, keyLength: 3, batchSize: 2, heads: 3, batch: b, head: h)
                        == matrix([[1, 0, 1], [0, 1, 1]]))
            }
        }
    }

    @Test("A per-head boolean mask [1, H, 1, Nk] differs by head")
    func booleanPerHead() throws {
        let m = try Tensor<Bool>(shape: [1, 2, 1, 3], scalars: [true, true, false, false, true, true])
        let mask = AttentionMask.boolean(m) && .causal
        #expect(try mask.matrix(queryLength: 2, keyLength: 3, heads: 2, head: 0) == matrix([[1, 1, 0], [1, 1, 0]]))
        #expect(try mask.matrix(queryLength: 2, keyLength: 3, heads: 2, head: 1) == matrix([[0, 1, 0], [0, 1, 1]]))
    }

    @Test("Dead rows output exactly 0 with weights 0 and log-sum-exp -inf, never NaN")
    func deadRows() throws {
        var g = SplitMix64(seed: 9)
        let q = try Tensor<Float>.randomNormal(shape: [2, 1, 5, 4], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [2, 1, 2, 4], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [2, 1, 2, 3], using: &g)
        let r = try scaledDotProductAttention(
            query: q, key: k, value: v, mask: .causal && .keyLengths([2, 0]), returning: .all)
        let o = r.output, w = try #require(r.weights), l = try #require(r.logSumExp)
        #expect(!o.scalars.contains { $0.isNaN } && !w.scalars.contains { $0.isNaN } && !l.scalars.contains { $0.isNaN })
        for b in 0..<2 {
            for i in 0..<5 {
                let dead = b == 1 || i < 3   // bottom-right causal with Nq = 5, Nk = 2 hides rows 0...2
                #expect((l[b, 0, i] == -.infinity) == dead)
                if dead {
                    #expect((0..<3).allSatisfy { o[b, 0, i, $0] == 0 })
                    #expect((0..<2).allSatisfy { w[b, 0, i, $0] == 0 })
                } else {
                    #expect(abs(w[b, 0, i, 0] + w[b, 0, i, 1] - 1) < 1e-6)
                }
            }
        }
    }

    @Test("A -inf bias hides a key like a false mask entry")
    func negativeInfinityBias() throws {
        var g = SplitMix64(seed: 10)
        let q = try Tensor<Double>.randomNormal(shape: [3, 4], using: &g)
        let k = try Tensor<Double>.randomNormal(shape: [4, 4], using: &g)
        let v = try Tensor<Double>.randomNormal(shape: [4, 2], using: &g)
        let hidden: [[Bool]] = [[true, false, true, true], [false, false, false, false], [true, true, true, false]]
        let bias = try Tensor<Double>(hidden.map { $0.map { $0 ? 0 : -.infinity } })
        let byBias = try scaledDotProductAttention(query: q, key: k, value: v, bias: bias, returning: .all)
        let byMask = try scaledDotProductAttention(
            query: q, key: k, value: v, mask: .boolean(try Tensor(hidden)), returning: .all)
        #expect(byBias.output == byMask.output)
        #expect(byBias.weights == byMask.weights)
        #expect(byBias.logSumExp == byMask.logSumExp)
    }

    @Test("Masks are validated against the problem")
    func validation() throws {
        #expect(thrownError { try AttentionMask.slidingWindow(left: -1, right: 0).matrix(queryLength: 2, keyLength: 2) } == .invalidArgument("mask"))
        #expect(thrownError { try AttentionMask.keyLengths([1, 2]).matrix(queryLength: 2, keyLength: 2) } == .invalidArgument("keyLengths"))
        #expect(thrownError { try AttentionMask.keyLengths([3]).matrix(queryLength: 2, keyLength: 2) } == .invalidArgument("keyLengths"))
        let wrong = try Tensor<Bool>(repeating: true, shape: [3, 3])
        #expect(thrownError { try AttentionMask.boolean(wrong).matrix(queryLength: 2, keyLength: 3) } == .shapeMismatch("mask"))
    }
}
