import Attention
import AttentionTestSupport
import Foundation
import Testing

/// The backward pass against central finite differences, in Double, for every mask kind and GQA.
@Suite("Gradients")
struct GradientTests {
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var hq = 2, hkv = 2, nq = 4, nk = 5
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "none"), Case(name: "causal", nq: 5, nk: 3), Case(name: "topLeft"), Case(name: "window"),
        Case(name: "keyLengths"), Case(name: "boolean"), Case(name: "bias"), Case(name: "gqa", hq: 4, hkv: 2),
        Case(name: "mqa", hq: 3, hkv: 1),
    ]

    func mask(_ c: Case, _ g: inout SplitMix64) throws -> AttentionMask {
        switch c.name {
        case "causal": return .causal
        case "topLeft": return .causal(.topLeft)
        case "window": return .slidingWindow(left: 1, right: 1)
        case "keyLengths": return .keyLengths([3, 0])
        case "boolean": return .boolean(try Tensor<Double>.randomUniform(shape: [2, 1, c.nq, c.nk], using: &g).map { $0 < 0.6 })
        default: return .none
        }
    }

    @Test("Analytic gradients equal central differences", arguments: cases)
    func finiteDifferences(_ c: Case) throws {
        var g = SplitMix64(seed: UInt64(c.name.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
        let q = try Tensor<Double>.randomNormal(shape: [2, c.hq, c.nq, 3], using: &g)
        let k = try Tensor<Double>.randomNormal(shape: [2, c.hkv, c.nk, 3], using: &g)
        let v = try Tensor<Double>.randomNormal(shape: [2, c.hkv, c.nk, 2], using: &g)
        let bias: Tensor<Double>? = c.name == "bias" ? try .randomNormal(shape: [1, c.hq, c.nq, c.nk], using: &g) : nil
        let m = try mask(c, &g)
        let r = try Tensor<Double>.randomNormal(shape: [2, c.hq, c.nq, 2], using: &g)   // L = Σ O ⊙ R, so dO = R
        func loss(_ q: Tensor<Double>, _ k: Tensor<Double>, _ v: Tensor<Double>, _ b: Tensor<Double>?) throws -> Double {
            let o = try scaledDotProductAttention(query: q, key: k, value: v, mask: m, bias: b, scale: 0.7).output
            return zip(o.scalars, r.scalars).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let grads = try scaledDotProductAttentionBackward(query: q, key: k, value: v, outputGradient: r, mask: m, bias: bias, scale: 0.7)
        func numeric(_ t: Tensor<Double>, _ rebuild: (Tensor<Double>) throws -> Double) throws -> [Double] {
            var out: [Double] = []
            let h = 1e-6
            for n in 0..<t.count {
                var plus = t, minus = t
                plus.withUnsafeMutableBufferPointer { $0[n] += h }
                minus.withUnsafeMutableBufferPointer { $0[n] -= h }
                out.append((try rebuild(plus) - rebuild(minus)) / (2 * h))
            }
            return out
        }
        #expect(maxAbsDifference(grads.query.scalars, try numeric(q) { try loss($0, k, v, bias) }) < 1e-7)
        #expect(maxAbsDifference(grads.key.scalars, try numeric(k) { try loss(q, $0, v, bias) }) < 1e-7)
        #expect(maxAbsDifference(grads.value.scalars, try numeric(v) { try loss(q, k, $0, bias) }) < 1e-7)
        if let bias {
            let dBias = try #require(grads.bias)
            #expect(maxAbsDifference(dBias.scalars, try numeric(bias) { try loss(q, k, v, $0) }) < 1e-7)
        }
        if c.name == "keyLengths" {
            // Batch element 1 sees no key: every row is dead, every gradient of it is zero.
            #expect((try grads.query.view(1)).copy().scalars.allSatisfy { $0 == 0 })
            #expect((try grads.value.view(1)).copy().scalars.allSatisfy { $0 == 0 })
        }
    }

    @Test("A bias broadcast over batch and heads gets the summed gradient, in its own shape")
    func broadcastBias() throws {
        var g = SplitMix64(seed: 3)
        let q = try Tensor<Double>.randomNormal(shape: [2, 3, 4, 5], using: &g)
        let kv = try Tensor<Double>.randomNormal(shape: [2, 3, 6, 5], using: &g)
        let dO = try Tensor<Double>.randomNormal(shape: [2, 3, 4, 5], using: &g)
        let shared = try Tensor<Double>.randomNormal(shape: [4, 6], using: &g)
        var full: [Double] = []
        for _ in 0..<6 { full += shared.scalars }
        let expanded = try Tensor<Double>(shape: [2, 3, 4, 6], scalars: full)
        let a = try scaledDotProductAttentionBackward(query: q, key: kv, value: kv, outputGradient: dO, bias: shared)
        let b = try scaledDotProductAttentionBackward(query: q, key: kv, value: kv, outputGradient: dO, bias: expanded)
        let summed = (0..<24).map { n in (0..<6).reduce(0.0) { $0 + b.bias!.scalars[$1 * 24 + n] } }
        #expect(a.bias?.shape == [4, 6])
        #expect(maxAbsDifference(a.bias!.scalars, summed) < 1e-12)
        #expect(thrownError {
            try scaledDotProductAttentionBackward(query: q, key: kv, value: kv, outputGradient: Tensor(zeros: [2, 3, 4]))
        } == .shapeMismatch("outputGradient"))
    }
}

/// The tiled Float backward against the Double reference backward, on awkward shapes.
@Suite("Tiled backward")
struct TiledBackwardTests {
    struct Case: CustomStringConvertible, Sendable {
        var hq = 2
        var hkv = 2
        var nq: Int
        var nk: Int
        var d: Int
        var dv: Int? = nil
        var mask = "none"
        var description: String { "Hq\(hq) Hkv\(hkv) Nq\(nq) Nk\(nk) D\(d) Dv\(dv ?? d) \(mask)" }
    }

    static let cases: [Case] = {
        var cases: [Case] = []
        for d in [1, 3, 59, 64, 80, 128] { cases.append(Case(nq: 97, nk: 97, d: d, mask: "causal")) }
        for (nq, nk) in [(1, 17), (17, 1), (1, 300), (300, 97), (97, 300)] {
            cases.append(Case(nq: nq, nk: nk, d: 64))
            cases.append(Case(nq: nq, nk: nk, d: 48, dv: 24, mask: "causal"))
        }
        for mask in ["window", "keyLengths", "boolean", "topLeft"] { cases.append(Case(nq: 130, nk: 150, d: 32, mask: mask)) }
        for hkv in [4, 2, 1] { cases.append(Case(hq: 8, hkv: hkv, nq: 65, nk: 200, d: 64, mask: "causal")) }
        return cases
    }()

    @Test("dQ, dK, dV agree with the reference to 1e-4 relative", arguments: cases,
          KernelInstructionSet.allCases.filter(\.isSupported))
    func agreement(_ c: Case, isa: KernelInstructionSet) throws {
        var g = SplitMix64(seed: UInt64(c.nq * 131 + c.nk * 7 + c.d))
        let q = try Tensor<Float>.randomNormal(shape: [2, c.hq, c.nq, c.d], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [2, c.hkv, c.nk, c.d], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [2, c.hkv, c.nk, c.dv ?? c.d], using: &g)
        let dO = try Tensor<Float>.randomNormal(shape: [2, c.hq, c.nq, c.dv ?? c.d], using: &g)
        let mask: AttentionMask
        switch c.mask {
        case "causal": mask = .causal
        case "topLeft": mask = .causal(.topLeft)
        case "window": mask = .slidingWindow(left: 9, right: 20)
        case "keyLengths": mask = .keyLengths([60, 0])
        case "boolean": mask = .boolean(try Tensor<Float>.randomUniform(shape: [2, 1, c.nq, c.nk], using: &g).map { $0 < 0.7 })
        default: mask = .none
        }
        let fast = try scaledDotProductAttentionBackward(query: q, key: k, value: v, outputGradient: dO, mask: mask,
                                                         options: AttentionOptions(implementation: .tiled(isa)))
        #expect(fast.path.implementation == .tiled(isa))
        let exact = try scaledDotProductAttentionBackward(query: q.map(Double.init), key: k.map(Double.init), value: v.map(Double.init),
                                                          outputGradient: dO.map(Double.init), mask: mask)
        for (name, ours, theirs) in [("dQ", fast.query.scalars, exact.query.scalars), ("dK", fast.key.scalars, exact.key.scalars),
                                     ("dV", fast.value.scalars, exact.value.scalars)] {
            let scale = max(1, theirs.map(abs).max() ?? 0)
            #expect(maxAbsDifference(ours, theirs) <= 1e-4 * scale, "\(name): \(maxAbsDifference(ours, theirs))")
            #expect(!ours.contains { $0.isNaN })
        }
    }

    @Test("With a bias of every broadcast shape, dQ, dK, dV and the bias gradient agree with the reference",
          arguments: [[2, 4, 33, 70], [33, 70], [1, 4, 1, 70], [70], [2, 1, 33, 1]], KernelInstructionSet.allCases.filter(\.isSupported))
    func bias(shape: [Int], isa: KernelInstructionSet) throws {
        var g = SplitMix64(seed: UInt64(shape.reduce(1, *)))
        let q = try Tensor<Float>.randomNormal(shape: [2, 4, 33, 40], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [2, 2, 70, 40], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [2, 2, 70, 24], using: &g)
        let dO = try Tensor<Float>.randomNormal(shape: [2, 4, 33, 24], using: &g)
        let bias = try Tensor<Float>.randomNormal(shape: shape, using: &g)
        let mask = AttentionMask.causal && .keyLengths([70, 50])
        let fast = try scaledDotProductAttentionBackward(query: q, key: k, value: v, outputGradient: dO, mask: mask, bias: bias,
                                                         options: AttentionOptions(implementation: .tiled(isa)))
        #expect(fast.path.implementation == .tiled(isa))
        let d = { (t: Tensor<Float>) in t.map(Double.init) }
        let exact = try scaledDotProductAttentionBackward(query: d(q), key: d(k), value: d(v), outputGradient: d(dO), mask: mask, bias: d(bias))
        let ours = try #require(fast.bias), theirs = try #require(exact.bias)
        #expect(ours.shape == shape)
        for (name, a, b) in [("dQ", fast.query.scalars, exact.query.scalars), ("dK", fast.key.scalars, exact.key.scalars),
                             ("dV", fast.value.scalars, exact.value.scalars), ("dBias", ours.scalars, theirs.scalars)] {
            let scale = max(1, b.map(abs).max() ?? 0)
            #expect(maxAbsDifference(a, b) <= 1e-4 * scale, "\(name): \(maxAbsDifference(a, b))")
        }
        if shape.last == 1 {
            // A bias constant along the keys shifts every score of a row alike: softmax ignores it.
            #expect(ours.scalars.allSatisfy { abs($0) < 1e-4 })
        } else {
            #expect(theirs.scalars.contains { abs($0) > 1e-3 })
        }
    }

    @Test("A saved forward gives the same gradients as a recomputed one; a forward without its log-sum-exp is refused")
    func savedForward() throws {
        var g = SplitMix64(seed: 77)
        let q = try Tensor<Float>.randomNormal(shape: [1, 4, 45, 32], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [1, 2, 60, 32], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [1, 2, 60, 16], using: &g)
        let dO = try Tensor<Float>.randomNormal(shape: [1, 4, 45, 16], using: &g)
        let forward = try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal, returning: .logSumExp)
        let saved = try scaledDotProductAttentionBackward(query: q, key: k, value: v, outputGradient: dO, mask: .causal, forward: forward)
        let recomputed = try scaledDotProductAttentionBackward(query: q, key: k, value: v, outputGradient: dO, mask: .causal)
        #expect(saved.path.detail.hasPrefix("saved forward") && recomputed.path.detail.hasPrefix("forward recomputed"))
        #expect(saved.query.scalars == recomputed.query.scalars)
        #expect(saved.key.scalars == recomputed.key.scalars)
        #expect(saved.value.scalars == recomputed.value.scalars)
        let withoutLSE = try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal)
        #expect(thrownError {
            try scaledDotProductAttentionBackward(query: q, key: k, value: v, outputGradient: dO, mask: .causal, forward: withoutLSE)
        } == .invalidArgument("forward.logSumExp"))
        let other = try scaledDotProductAttention(query: q, key: k, value: k, mask: .causal, returning: .logSumExp)
        #expect(thrownError {
            try scaledDotProductAttentionBackward(query: q, key: k, value: v, outputGradient: dO, mask: .causal, forward: other)
        } == .shapeMismatch("forward.output"))
    }
}
