import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("Linear")
struct LinearTests {
    /// A folder for this test's files, removed when the test ends.
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory("linear") }

    @Test("Float Linear equals the Double loop on awkward shapes, in both weight layouts: up to 16 rows from the weight as stored, more on the tiled kernel",
          arguments: [(1, 1, 1), (13, 45, 37), (8, 32, 64), (9, 33, 17), (64, 384, 384), (70, 100, 3),
                      (2, 45, 37), (3, 33, 17), (4, 1000, 130), (1, 2305, 768), (5, 70, 9),
                      (16, 41, 23), (17, 41, 23), (1, 7, 5), (3, 9, 1030), (2, 2, 2),
                      (33, 56, 300), (66, 90, 520)])
    func linear(shape: (rows: Int, outputs: Int, inputs: Int)) throws {
        var g = SplitMix64(seed: UInt64(shape.rows * 1000 + shape.outputs))
        let weight = try Tensor<Double>.randomNormal(shape: [shape.outputs, shape.inputs], using: &g)
        let bias = try Tensor<Double>.randomNormal(shape: [shape.outputs], using: &g)
        let x = try Tensor<Double>.randomNormal(shape: [shape.rows, shape.inputs], using: &g)
        let exact: Tensor<Double> = try Linear<Double>(weight: weight, bias: bias)(x)
        let floatWeight: Tensor<Float> = weight.map { Float($0) }
        let floatBias: Tensor<Float> = bias.map { Float($0) }
        let floatX: Tensor<Float> = x.map { Float($0) }
        let transposedWeight = try floatWeight.transposed()
        let layers = [try Linear<Float>(weight: floatWeight, bias: floatBias),
                      try Linear<Float>(weight: transposedWeight, bias: floatBias, layout: .inputMajor)]
        // Float accumulation over k terms of size ~1: error grows like √k · ulp.
        let tolerance = 1e-5 * Double(shape.inputs).squareRoot() * 4
        // Every instruction set this CPU runs (AVX-512 only where the CPU has it: not listed otherwise).
        for layer in layers {
            for isa in KernelInstructionSet.allCases where isa.isSupported {
                for threads in [1, 2, 3] {
                    let fast = try layer(floatX, options: AttentionOptions(implementation: .tiled(isa), threads: threads))
                    #expect(fast.shape == [shape.rows, shape.outputs])
                    #expect(maxAbsDifference(fast.scalars, exact.scalars) <= tolerance, "\(layer.layout) \(isa) \(threads) threads")
                }
            }
            let plain = try layer(floatX, options: AttentionOptions(implementation: .reference))
            #expect(maxAbsDifference(plain.scalars, exact.scalars) <= tolerance, "\(layer.layout) reference")
            let noBias = try Linear<Float>(weight: layer.storedWeight, bias: nil, layout: layer.layout)(floatX)
            let shifted: [Double] = noBias.scalars.indices.map { Double(noBias.scalars[$0]) + bias.scalars[$0 % shape.outputs] }
            #expect(maxAbsDifference(shifted, exact.scalars) <= tolerance, "\(layer.layout) without bias")
        }
        // The Double loop reads the input-major layout as well.
        let columns = (0..<(shape.inputs * shape.outputs)).map { i in weight.scalars[(i % shape.outputs) * shape.inputs + i / shape.outputs] }
        let doubleInputMajor = try Linear<Double>(weight: Tensor(shape: [shape.inputs, shape.outputs], scalars: columns),
                                                  bias: bias, layout: .inputMajor)(x)
        #expect(maxAbsDifference(doubleInputMajor.scalars, exact.scalars) <= 1e-5 * tolerance)
    }

    @Test("An activation applied by the layer equals the activation of the Double layer's output, on every path: the weight as stored, few rows, blocks of the tiled kernel",
          arguments: [1, 3, 17, 130])
    func activation(rows: Int) throws {
        var g = SplitMix64(seed: UInt64(rows))
        let (outputs, inputs) = (70, 45)
        let weight = try Tensor<Double>.randomNormal(shape: [outputs, inputs], using: &g)
        let bias = try Tensor<Double>.randomNormal(shape: [outputs], using: &g)
        let x = try Tensor<Double>.randomNormal(shape: [rows, inputs], using: &g)
        let exact: Tensor<Double> = try Linear<Double>(weight: weight, bias: bias)(x)
        let layer = try Linear<Float>(weight: weight.map { Float($0) }, bias: bias.map { Float($0) })
        let tolerance = 1e-5 * Double(inputs).squareRoot() * 4
        for activation in Activation.allCases {
            let expected = try activation(exact)
            // The Double layer applies it too, after its loop.
            let double = try Linear<Double>(weight: weight, bias: bias)(x, activation: activation)
            #expect(maxAbsDifference(double.scalars, expected.scalars) <= 1e-12, "\(activation) Double")
            for isa in KernelInstructionSet.allCases where isa.isSupported {
                for threads in [1, 2] {
                    let y = try layer(x.map { Float($0) }, activation: activation,
                                      options: AttentionOptions(implementation: .tiled(isa), threads: threads))
                    #expect(y.shape == [rows, outputs])
                    #expect(maxAbsDifference(y.scalars, expected.scalars) <= tolerance, "\(activation) \(isa) \(threads) threads")
                }
            }
            let plain = try layer(x.map { Float($0) }, activation: activation, options: AttentionOptions(implementation: .reference))
            #expect(maxAbsDifference(plain.scalars, expected.scalars) <= tolerance, "\(activation) reference")
        }
    }

    @Test("Layers called from many tasks at once (the worker pool, or Dispatch while it is busy) give the same bits as one at a time")
    func concurrentCalls() async throws {
        var g = SplitMix64(seed: 23)
        let layer = try Linear(weight: try Tensor<Float>.randomNormal(shape: [3000, 200], using: &g), bias: nil)
        let inputs = try (0..<8).map { i in try Tensor<Float>.randomNormal(shape: [i % 2 == 0 ? 1 : 40, 200], using: &g) }
        let expected = try inputs.map { try layer($0) }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for (i, x) in inputs.enumerated() {
                group.addTask { try (0..<25).allSatisfy { _ in try layer(x) == expected[i] } }
            }
            for try await same in group { #expect(same) }
        }
    }

    @Test("A Linear keeps its weight as given and converts between layouts on request")
    func linearLayouts() throws {
        var g = SplitMix64(seed: 5)
        let w = try Tensor<Float>.randomNormal(shape: [3, 5], using: &g)
        let outputMajor = try Linear(weight: w, bias: nil)
        let inputMajor = try Linear(weight: outputMajor.inputMajorWeight, bias: nil, layout: .inputMajor)
        #expect(outputMajor.inputMajorWeight.shape == [5, 3])
        #expect(outputMajor.inputMajorWeight.scalars[1 * 3 + 2] == w.scalars[2 * 5 + 1])
        #expect(inputMajor.weight == w && inputMajor.storedWeight.shape == [5, 3])
        #expect((inputMajor.inputDimension, inputMajor.outputDimension) == (5, 3))
        #expect(thrownError { try Linear(weight: w, bias: Tensor<Float>(zeros: [3]), layout: .inputMajor) } == .shapeMismatch("bias"))
        #expect(thrownError { try inputMajor(Tensor<Float>(zeros: [2, 3])) } == .shapeMismatch("input"))
        for isa in KernelInstructionSet.allCases where !isa.isSupported {
            #expect(thrownError { try inputMajor(Tensor<Float>(zeros: [2, 5]), options: AttentionOptions(implementation: .tiled(isa))) } == .invalidArgument("implementation"))
        }
        #expect(thrownError { try inputMajor(Tensor<Float>(zeros: [2, 5]), options: AttentionOptions(threads: 0)) } == .invalidArgument("threads"))
        #expect(thrownError {
            try Linear<Double>(weight: Tensor(zeros: [3, 5]), bias: nil)(Tensor(zeros: [2, 5]), options: AttentionOptions(implementation: .tiled(.portable)))
        } == .invalidArgument("implementation"))
    }

    @Test("A Linear read in place from a safetensors file computes what the same weight in memory computes, in both layouts")
    func linearFromFile() throws {
        var g = SplitMix64(seed: 17)
        let (inputs, outputs) = (37, 29)
        let w = try Tensor<Float>.randomNormal(shape: [outputs, inputs], using: &g)
        let bias = try Tensor<Float>.randomNormal(shape: [outputs], using: &g)
        let inMemory = try Linear(weight: w, bias: bias)
        let url = scratch.file("linear.safetensors")
        try SafeTensors.write([("w", w), ("wt", inMemory.inputMajorWeight)], to: url)
        let file = try SafeTensors(contentsOf: url)
        let mapped = try Linear(weights: file, name: "w", shape: [outputs, inputs], bias: bias)
        let mappedInputMajor = try Linear(weights: file, name: "wt", shape: [inputs, outputs], bias: bias, layout: .inputMajor)
        #expect(mapped.storedWeight == w && mappedInputMajor.weight == w)
        for rows in [1, 3, 16, 40] {
            let x = try Tensor<Float>.randomNormal(shape: [rows, inputs], using: &g)
            let expected = try inMemory(x)
            #expect(try mapped(x) == expected, "\(rows) rows")
            #expect(maxAbsDifference(try mappedInputMajor(x).scalars, expected.scalars) < 1e-4, "\(rows) rows, input-major")
        }
        #expect(thrownError { try Linear(weights: file, name: "w", shape: [inputs, outputs], bias: nil) } == .invalidFile(url.lastPathComponent))
        #expect(thrownError { try Linear(weights: file, name: "missing", shape: [outputs, inputs], bias: nil) } == .invalidFile(url.lastPathComponent))
        #expect(thrownError { try Linear(weights: file, name: "w", shape: [outputs, inputs], bias: Tensor<Float>(zeros: [inputs])) } == .shapeMismatch("bias"))
    }

    @Test("Up to 16 rows, a row's output does not depend on the other rows of the call (decoding one token equals a chunk)",
          arguments: [WeightLayout.outputMajor, .inputMajor])
    func linearRowsIndependent(layout: WeightLayout) throws {
        var g = SplitMix64(seed: 11)
        let (inputs, outputs, rows) = (77, 131, 11)
        let w = try Tensor<Float>.randomNormal(shape: layout == .outputMajor ? [outputs, inputs] : [inputs, outputs], using: &g)
        let layer = try Linear(weight: w, bias: try Tensor<Float>.randomNormal(shape: [outputs], using: &g), layout: layout)
        let x = try Tensor<Float>.randomNormal(shape: [rows, inputs], using: &g)
        let together = try layer(x)
        for r in 0..<rows {
            let alone = try layer(Tensor(shape: [1, inputs], scalars: Array(x.scalars[(r * inputs)..<((r + 1) * inputs)])))
            #expect(alone.scalars == Array(together.scalars[(r * outputs)..<((r + 1) * outputs)]), "row \(r)")
        }
    }
}
