import Attention
import AttentionTestSupport
import Foundation
import Testing

/// Every instruction set this CPU runs, as options (the elementwise kernels run on the one asked for).
let supportedSets = KernelInstructionSet.allCases.filter(\.isSupported).map(\.rawValue)

func tiled(_ name: String) throws -> AttentionOptions {
    AttentionOptions(implementation: .tiled(try #require(KernelInstructionSet(rawValue: name))))
}

@Suite("GELU")
struct GELUTests {
    @Test("Float GELU, tanh form (vectorized), and its backward stay within a few ulps of the Double form", arguments: supportedSets)
    func geluTanh(instructionSet: String) throws {
        let options = try tiled(instructionSet)
        let x = Tensor<Double>((-3000...3000).map { Double($0) / 200 })   // -15 ... 15, 6001 values (a tail too)
        let exact: Tensor<Double> = try Attention.geluTanh(x)
        let fast: Tensor<Float> = try Attention.geluTanh(x.map { Float($0) }, options: options)
        for (f, (e, v)) in zip(fast.scalars, zip(exact.scalars, x.scalars)) {
            #expect(abs(Double(f) - e) <= 4e-7 * max(1, abs(v)), "x = \(v)")
        }
        // 0.5 · 1 · (1 + tanh(√(2/π) · 1.044715)), by hand.
        #expect(abs(try Attention.geluTanh(Tensor<Double>([1.0])).scalars[0] - 0.841_191_990_608_276_8) < 1e-12)
        let dy = try Tensor<Double>.randomNormal(shape: [6001], seed: 5)
        let backward: Tensor<Double> = try geluTanhBackward(input: x, outputGradient: dy)
        let fastBackward: Tensor<Float> = try geluTanhBackward(input: x.map { Float($0) }, outputGradient: dy.map { Float($0) }, options: options)
        for i in 0..<6001 {
            #expect(abs(Double(fastBackward.scalars[i]) - backward.scalars[i]) <= 2e-6 * max(1, abs(dy.scalars[i]) * max(1, abs(x.scalars[i]))))
            // Against central differences of the Double form.
            let v = x.scalars[i], h = 1e-6
            let difference = (try Attention.geluTanh(Tensor<Double>([v + h])).scalars[0] - Attention.geluTanh(Tensor<Double>([v - h])).scalars[0]) / (2 * h)
            #expect(abs(backward.scalars[i] - dy.scalars[i] * difference) <= 1e-7 * max(1, abs(dy.scalars[i])))
        }
        #expect(thrownError { try geluTanhBackward(input: x, outputGradient: Tensor<Double>([1.0])) } == .shapeMismatch("outputGradient"))
    }

    @Test("Float GELU (vectorized erf) stays within 5e-7 of the Double erf form", arguments: supportedSets)
    func gelu(instructionSet: String) throws {
        let x = Tensor<Double>((-2000...2000).map { Double($0) / 200 })   // -10 ... 10, 4001 values (a tail too)
        let exact: Tensor<Double> = try Attention.gelu(x)
        let fast: Tensor<Float> = try Attention.gelu(x.map { Float($0) }, options: tiled(instructionSet))
        #expect(maxAbsDifference(fast.scalars, exact.scalars) <= 5e-7 * 10)
        #expect(abs(try Attention.gelu(Tensor<Double>([1.0])).scalars[0] - 0.841_344_746_068_542_9) < 1e-12)   // Φ(1)
    }

    @Test("A gated activation is the activation of the gate times the up projection, bit for bit, on every set and the reference; shapes must match",
          arguments: supportedSets)
    func gated(instructionSet: String) throws {
        var g = SplitMix64(seed: 0x6A7E)
        // 1,537 values: the vector kernels' whole vectors and a tail.
        let gate = try Tensor<Float>.randomUniform(shape: [1, 1537], in: -8...8, using: &g)
        let up = try Tensor<Float>.randomUniform(shape: [1, 1537], in: -2...2, using: &g)
        for options in [try tiled(instructionSet), AttentionOptions(implementation: .reference)] {
            for activation in Activation.allCases {
                let want = zip(try activation(gate, options: options).scalars, up.scalars).map { $0 * $1 }
                #expect(try activation.gated(gate, by: up, options: options).scalars == want, "\(activation) \(options.implementation)")
            }
        }
        #expect(thrownError { try Activation.silu.gated(gate, by: Tensor<Float>(zeros: [1537])) } == .shapeMismatch("up"))
    }

    @Test("The reference runs in Double for Float too; a set this CPU lacks, or the tiled kernels for Double, are refused by name")
    func choice() throws {
        let x = Tensor<Float>([-3, -0.5, 0, 0.25, 2, 9])
        let reference = AttentionOptions(implementation: .reference)
        let inDouble = x.map { Double($0) }
        for activation in Activation.allCases {
            let expected: Tensor<Double> = try activation(inDouble)
            #expect(try activation(x, options: reference).scalars == expected.scalars.map { Float($0) }, "\(activation)")
        }
        let dy = Tensor<Float>([1, -2, 0.5, 3, -1, 0.25])
        let backward: Tensor<Double> = try geluTanhBackward(input: inDouble, outputGradient: dy.map { Double($0) })
        #expect(try geluTanhBackward(input: x, outputGradient: dy, options: reference).scalars == backward.scalars.map { Float($0) })
        for missing in KernelInstructionSet.allCases where !missing.isSupported {
            #expect(thrownError { try silu(x, options: AttentionOptions(implementation: .tiled(missing))) } == .invalidArgument("implementation"))
        }
        #expect(thrownError { try Attention.gelu(inDouble, options: AttentionOptions(implementation: .tiled(.portable))) } == .invalidArgument("implementation"))
        #expect(thrownError { try Attention.geluTanh(x, options: AttentionOptions(threads: 0)) } == .invalidArgument("threads"))
    }
}
