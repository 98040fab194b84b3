import Attention
import AttentionTestSupport
import Foundation
import Testing

/// The tiled Float kernel against the Double reference, on awkward shapes, for every instruction set
/// this machine runs. Tolerance rule: the kernel's max error is at most twice the naive Float
/// computation's max error on the same inputs.
@Suite("Tiled kernel accuracy")
struct KernelAccuracyTests {
    struct Case: CustomStringConvertible, Sendable {
        var B = 1
        var Hq = 2
        var Hkv = 2
        var Nq: Int
        var Nk: Int
        var D: Int
        var Dv: Int? = nil
        var mask = "none"          // none, causal, topLeft, window, keyLengths, boolean, bias, everything
        var threads = 2
        var weights = false

        var description: String {
            "B\(B) Hq\(Hq) Hkv\(Hkv) Nq\(Nq) Nk\(Nk) D\(D) Dv\(Dv ?? D) \(mask) t\(threads)\(weights ? " +weights" : "")"
        }
    }

    static let dimensions = [1, 3, 59, 64, 80, 128, 256]

    static let cases: [Case] = {
        var cases: [Case] = []
        // Every head dimension at short lengths, with and without causality.
        for d in dimensions {
            for n in [1, 17, 97] {
                cases.append(Case(Nq: n, Nk: n, D: d))
                cases.append(Case(Nq: n, Nk: n, D: d, mask: "causal"))
            }
        }
        // Long sequences (several key blocks and row blocks, partial last blocks).
        for n in [777, 1025] {
            for d in [1, 3, 64] {
                cases.append(Case(Nq: n, Nk: n, D: d))
                cases.append(Case(Nq: n, Nk: n, D: d, mask: "causal"))
            }
        }
        cases.append(Case(Hq: 1, Hkv: 1, Nq: 97, Nk: 777, D: 256))
        cases.append(Case(Hq: 1, Hkv: 1, Nq: 777, Nk: 97, D: 128, mask: "causal"))
        // Nq != Nk both ways, bottom-right and top-left, dead rows included.
        for (nq, nk) in [(1, 1025), (17, 777), (97, 17), (777, 1), (130, 300)] {
            cases.append(Case(Nq: nq, Nk: nk, D: 64, mask: "causal"))
            cases.append(Case(Nq: nq, Nk: nk, D: 59, mask: "topLeft"))
        }
        // Every mask kind, Dv != D.
        for mask in ["window", "keyLengths", "boolean", "bias", "everything"] {
            cases.append(Case(B: 2, Nq: 97, Nk: 130, D: 80, Dv: 48, mask: mask))
            cases.append(Case(B: 2, Nq: 130, Nk: 97, D: 64, mask: mask, weights: true))
        }
        // Grouped-query ratios 1, 2, 4, 8; decoding shapes split the keys across threads.
        for hkv in [8, 4, 2, 1] {
            cases.append(Case(Hq: 8, Hkv: hkv, Nq: 97, Nk: 200, D: 64, mask: "causal"))
            cases.append(Case(Hq: 8, Hkv: hkv, Nq: 1, Nk: 1025, D: 128))
            cases.append(Case(Hq: 8, Hkv: hkv, Nq: 3, Nk: 777, D: 64, mask: "everything", threads: 3))
        }
        cases.append(Case(Nq: 1, Nk: 1025, D: 64, mask: "keyLengths", threads: 4))
        cases.append(Case(Nq: 200, Nk: 300, D: 64, mask: "causal", threads: 1, weights: true))
        return cases
    }()

    static var instructionSets: [KernelInstructionSet] { KernelInstructionSet.allCases.filter(\.isSupported) }

    struct Inputs {
        let q: Tensor<Float>, k: Tensor<Float>, v: Tensor<Float>, bias: Tensor<Float>?, mask: AttentionMask
    }

    static func inputs(_ c: Case) throws -> Inputs {
        var g = SplitMix64(seed: UInt64(c.Nq * 7919 + c.Nk * 31 + c.D))
        let q = try Tensor<Float>.randomNormal(shape: [c.B, c.Hq, c.Nq, c.D], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [c.B, c.Hkv, c.Nk, c.D], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [c.B, c.Hkv, c.Nk, c.Dv ?? c.D], using: &g)
        let lengths = (0..<c.B).map { b in b == 0 ? max(1, c.Nk / 2) : (b == 1 ? 0 : c.Nk) }
        let boolean = try Tensor<Float>.randomUniform(shape: [c.B, 1, c.Nq, c.Nk], using: &g).map { $0 < 0.8 }
        var biasTensor = try Tensor<Float>.randomNormal(shape: [c.Hq, c.Nq, c.Nk], standardDeviation: 2, using: &g)
        biasTensor.withUnsafeMutableBufferPointer { b in for n in stride(from: 0, to: b.count, by: 5) { b[n] = -.infinity } }
        switch c.mask {
        case "causal": return Inputs(q: q, k: k, v: v, bias: nil, mask: .causal)
        case "topLeft": return Inputs(q: q, k: k, v: v, bias: nil, mask: .causal(.topLeft))
        case "window": return Inputs(q: q, k: k, v: v, bias: nil, mask: .slidingWindow(left: 13, right: 40))
        case "keyLengths": return Inputs(q: q, k: k, v: v, bias: nil, mask: .keyLengths(lengths))
        case "boolean": return Inputs(q: q, k: k, v: v, bias: nil, mask: .boolean(boolean))
        case "bias": return Inputs(q: q, k: k, v: v, bias: biasTensor, mask: .none)
        case "everything":
            return Inputs(q: q, k: k, v: v, bias: biasTensor,
                          mask: .causal && .slidingWindow(left: 50, right: 0) && .keyLengths(lengths) && .boolean(boolean))
        default: return Inputs(q: q, k: k, v: v, bias: nil, mask: .none)
        }
    }

    @Test("Tiled output and log-sum-exp within 2x the naive Float error of the Double reference",
          arguments: cases, instructionSets)
    func accuracy(_ c: Case, isa: KernelInstructionSet) throws {
        let x = try Self.inputs(c)
        let reference = try referenceScaledDotProductAttention(query: x.q, key: x.k, value: x.v, mask: x.mask, bias: x.bias)
        let naive = try naiveFloatAttention(query: x.q, key: x.k, value: x.v, mask: x.mask, bias: x.bias, scale: nil)
        let fast = try scaledDotProductAttention(
            query: x.q, key: x.k, value: x.v, mask: x.mask, bias: x.bias,
            returning: c.weights ? .all : .logSumExp, options: AttentionOptions(implementation: .tiled(isa), threads: c.threads))
        #expect(fast.path.implementation == .tiled(isa))

        let floor = Double(4 * Float.ulpOfOne)   // both errors can be ~0 on trivial rows
        let naiveOutputError = maxAbsDifference(naive.output, reference.output.scalars)
        let fastOutputError = maxAbsDifference(fast.output.scalars, reference.output.scalars)
        #expect(fastOutputError <= max(2 * naiveOutputError, floor),
                "output error \(fastOutputError) vs naive \(naiveOutputError)")

        let referenceLSE = try #require(reference.logSumExp).scalars
        let fastLSE = try #require(fast.logSumExp).scalars
        // Dead rows: exactly -inf in both, and exactly zero output.
        #expect(zip(fastLSE, referenceLSE).allSatisfy { ($0 == -.infinity) == ($1 == -.infinity) })
        let naiveLSEError = maxAbsDifference(naive.logSumExp, referenceLSE)
        let fastLSEError = maxAbsDifference(fastLSE, referenceLSE)
        #expect(fastLSEError <= max(2 * naiveLSEError, floor), "log-sum-exp error \(fastLSEError) vs naive \(naiveLSEError)")
        #expect(!fast.output.scalars.contains { $0.isNaN })

        if c.weights {
            let fastWeights = try #require(fast.weights).scalars
            let referenceWeights = try #require(reference.weights).scalars
            #expect(maxAbsDifference(fastWeights, referenceWeights) <= max(2 * naiveOutputError, 1e-6))
        }
    }

    @Test("Weights across the whole exponent range, and a NaN key reaching exactly the rows that see it",
          arguments: instructionSets)
    func exponentRangeAndNaN(isa: KernelInstructionSet) throws {
        // Base-2 scores from 0 down to about -200, across the edge of Float's exponents (-126).
        let Nk = 200
        let q = try Tensor<Float>(shape: [1, 1, 4, 1], scalars: [1, 1, 1, 1])
        let k = try Tensor<Float>(shape: [1, 1, Nk, 1], scalars: (0..<Nk).map { -0.7 * Float($0) })
        let v = try Tensor<Float>.randomNormal(shape: [1, 1, Nk, 3], seed: 4)
        let options = AttentionOptions(implementation: .tiled(isa))
        let fast = try scaledDotProductAttention(query: q, key: k, value: v, returning: .all, options: options)
        let reference = try referenceScaledDotProductAttention(query: q, key: k, value: v)
        let weights = try #require(fast.weights).scalars, referenceWeights = try #require(reference.weights)
        // Relative error: a base-2 score of -200 rounded in Float is off by about 2e-5, so its weight
        // by 1.4e-5; below the smallest normal Float, any weight down to 0 is as good.
        for j in 0..<Nk {
            let want = Float(referenceWeights[0, 0, 0, j])
            #expect(abs(weights[j] - want) <= 1e-4 * want + Float.leastNormalMagnitude, "key \(j) on \(isa)")
        }
        // A NaN in key 2: query rows 0 and 1 (causal, top-left) do not see it, rows 2 and 3 do.
        var keys = k.scalars
        keys[2] = .nan
        let poisoned = try Tensor<Float>(shape: k.shape, scalars: keys)
        let out = try scaledDotProductAttention(query: q, key: poisoned, value: v, mask: .causal(.topLeft), options: options).output
        for i in 0..<4 {
            let row = (0..<3).map { out[0, 0, i, $0] }
            #expect(i < 2 ? !row.contains { $0.isNaN } : row.allSatisfy(\.isNaN), "row \(i) on \(isa): \(row)")
        }
    }

    @Test("The grid covers every instruction set this CPU runs, read independently from the CPU's flags")
    func everySupportedInstructionSetIsTested() throws {
        #if os(Linux) && arch(x86_64)
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try #require(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") })
        let flags = Set(line.split(separator: ":", maxSplits: 1)[1].split(separator: " ").map(String.init))
        var expected: Set<KernelInstructionSet> = [.portable]
        if flags.isSuperset(of: ["avx512f", "avx512vl", "avx512bw", "avx512dq", "fma"]) { expected.insert(.avx512) }
        if flags.isSuperset(of: ["avx2", "fma", "f16c", "bmi1", "bmi2", "popcnt", "movbe"]) { expected.insert(.avx2) }
        #else
        let expected: Set<KernelInstructionSet> = [.portable]
        #endif
        #expect(Set(Self.instructionSets) == expected, "the CPU runs \(expected), the grid tests \(Self.instructionSets)")
        #expect(KernelInstructionSet.best == KernelInstructionSet.allCases.first { expected.contains($0) })
    }

    @Test("The fast path is the default for Float and reports itself; Double runs on the reference")
    func paths() throws {
        let q = try Tensor<Float>.randomNormal(shape: [4, 8], seed: 1)
        let fast = try scaledDotProductAttention(query: q, key: q, value: q)
        #expect(fast.path.implementation == .tiled(.best))
        let double = try scaledDotProductAttention(query: q.map(Double.init), key: q.map(Double.init), value: q.map(Double.init))
        #expect(double.path.implementation == .reference)
        #expect(double.path.detail.contains("Double"))
        #expect(thrownError {
            try scaledDotProductAttention(query: q.map(Double.init), key: q.map(Double.init), value: q.map(Double.init),
                                          options: AttentionOptions(implementation: .tiled(.portable)))
        } == .invalidArgument("implementation"))
        #expect(thrownError {
            try scaledDotProductAttention(query: q, key: q, value: q, options: AttentionOptions(threads: 0))
        } == .invalidArgument("threads"))
    }

    @Test("Merging attention over disjoint key sets equals attention over all keys", arguments: [1, 2, 3, 5])
    func merge(pieces: Int) throws {
        var g = SplitMix64(seed: UInt64(pieces))
        let q = try Tensor<Float>.randomNormal(shape: [2, 4, 5, 16], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [2, 2, 40, 16], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [2, 2, 40, 8], using: &g)
        let hidden = try Tensor<Float>.randomUniform(shape: [2, 1, 5, 40], using: &g).map { $0 < 0.6 }
        let whole = try scaledDotProductAttention(query: q, key: k, value: v, mask: .boolean(hidden), returning: .logSumExp)
        // Cut the keys into `pieces` ranges (a key range of width 0 is skipped).
        let cuts = (0...pieces).map { $0 * 40 / pieces }
        var parts: [PartialAttention<Float>] = []
        for (start, end) in zip(cuts, cuts.dropFirst()) where end > start {
            func keys(_ t: Tensor<Float>) throws -> Tensor<Float> {
                let (b, h, n, d) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
                var out: [Float] = []
                for bi in 0..<b { for hi in 0..<h { for j in start..<end { for c in 0..<d { out.append(t[bi, hi, j, c]) } } } }
                _ = n
                return try Tensor(shape: [b, h, end - start, d], scalars: out)
            }
            var maskPart: [Bool] = []
            for bi in 0..<2 { for i in 0..<5 { for j in start..<end { maskPart.append(hidden[bi, 0, i, j]) } } }
            let piece = try scaledDotProductAttention(
                query: q, key: keys(k), value: keys(v),
                mask: .boolean(Tensor(shape: [2, 1, 5, end - start], scalars: maskPart)), returning: .logSumExp)
            parts.append(try PartialAttention(piece))
        }
        let merged = try mergePartialAttention(parts)
        #expect(maxAbsDifference(merged.output.scalars, whole.output.scalars) < 1e-5)
        #expect(maxAbsDifference(merged.logSumExp.scalars, try #require(whole.logSumExp).scalars) < 1e-5)
        #expect(thrownError { try mergePartialAttention([PartialAttention<Float>]()) } == .invalidArgument("parts"))
    }
}
