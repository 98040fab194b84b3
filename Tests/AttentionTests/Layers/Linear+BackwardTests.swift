import Attention
import AttentionTestSupport
import Foundation
import Testing

/// The backward pass against central finite differences, in Double.
@Suite("Linear backward")
struct LinearBackwardTests {
    @Test("Linear: dx, dW, db")
    func linear() throws {
        var g = SplitMix64(seed: 1)
        let w = try Tensor<Double>.randomNormal(shape: [5, 3], using: &g), b = try Tensor<Double>.randomNormal(shape: [5], using: &g)
        let x = try Tensor<Double>.randomNormal(shape: [2, 4, 3], using: &g), r = try Tensor<Double>.randomNormal(shape: [2, 4, 5], using: &g)
        let layer = try Linear(weight: w, bias: b)
        let grads = try layer.backward(input: x, outputGradient: r)
        #expect(maxAbsDifference(grads.input.scalars, try centralDifferences(x) { dot(try layer($0), r) }) < 1e-7)
        #expect(maxAbsDifference(grads.weight.scalars, try centralDifferences(w) { dot(try Linear(weight: $0, bias: b)(x), r) }) < 1e-7)
        #expect(maxAbsDifference(try #require(grads.bias).scalars, try centralDifferences(b) { dot(try Linear(weight: w, bias: $0)(x), r) }) < 1e-7)
        #expect(thrownError { try layer.backward(input: x, outputGradient: x) } == .shapeMismatch("outputGradient"))
    }

    @Test("Linear in Float (matrix kernel, on every instruction set this CPU runs, 1 and 2 threads) agrees with Double on awkward shapes",
          arguments: [(1, 1, 1), (37, 45, 70), (3, 7, 33), (130, 64, 9)])
    func linearFloat(rows: Int, inputs: Int, outputs: Int) throws {
        var g = SplitMix64(seed: UInt64(rows * 1000 + inputs))
        let w = try Tensor<Double>.randomNormal(shape: [outputs, inputs], using: &g), b = try Tensor<Double>.randomNormal(shape: [outputs], using: &g)
        let x = try Tensor<Double>.randomNormal(shape: [rows, inputs], using: &g), r = try Tensor<Double>.randomNormal(shape: [rows, outputs], using: &g)
        let expected = try Linear(weight: w, bias: b).backward(input: x, outputGradient: r)
        let f = { (t: Tensor<Double>) in t.map { Float($0) } }
        let tolerance = 1e-5 * Double(rows + outputs)
        for isa in KernelInstructionSet.allCases where isa.isSupported {
            for threads in [1, 2] {
                let options = AttentionOptions(implementation: .tiled(isa), threads: threads)
                let got = try Linear(weight: f(w), bias: f(b)).backward(input: f(x), outputGradient: f(r), options: options)
                #expect(maxAbsDifference(got.input.scalars.map(Double.init), expected.input.scalars) < tolerance, "\(isa)")
                #expect(maxAbsDifference(got.weight.scalars.map(Double.init), expected.weight.scalars) < tolerance, "\(isa)")
                #expect(maxAbsDifference(try #require(got.bias).scalars.map(Double.init), try #require(expected.bias).scalars) < tolerance)
            }
        }
        // The reference, asked for, computes Float in Double.
        let reference = try Linear(weight: f(w), bias: f(b)).backward(input: f(x), outputGradient: f(r), options: AttentionOptions(implementation: .reference))
        #expect(maxAbsDifference(reference.weight.scalars.map(Double.init), expected.weight.scalars) < tolerance)
    }
}
