import Attention
import AttentionTestSupport
import Foundation
import Testing

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
        // Query rows a multiple of 128: the transposed copies of Q and dO get rows one cache line longer.
        cases.append(Case(nq: 256, nk: 200, d: 64, mask: "causal"))
        cases.append(Case(nq: 128, nk: 128, d: 20, dv: 36))
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
          arguments: [[2, 4, 130, 150], [130, 150], [1, 4, 1, 150], [150], [2, 1, 130, 1]], KernelInstructionSet.allCases.filter(\.isSupported))
    func bias(shape: [Int], isa: KernelInstructionSet) throws {
        var g = SplitMix64(seed: UInt64(shape.reduce(1, *)))
        // Large enough (130 × 150 per head) that the backward splits its key blocks over two workers, whose
        // bias-gradient buffers are then summed.
        let q = try Tensor<Float>.randomNormal(shape: [2, 4, 130, 40], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [2, 2, 150, 40], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [2, 2, 150, 24], using: &g)
        let dO = try Tensor<Float>.randomNormal(shape: [2, 4, 130, 24], using: &g)
        let bias = try Tensor<Float>.randomNormal(shape: shape, using: &g)
        let mask = AttentionMask.causal && .keyLengths([150, 110])
        let fast = try scaledDotProductAttentionBackward(query: q, key: k, value: v, outputGradient: dO, mask: mask, bias: bias,
                                                         options: AttentionOptions(implementation: .tiled(isa)))
        #expect(fast.path.implementation == .tiled(isa))
        if ProcessInfo.processInfo.activeProcessorCount > 1 { #expect(fast.path.detail.contains("2 thread(s)"), "\(fast.path.detail)") }
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
