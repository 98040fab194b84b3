import Attention
import AttentionTestSupport
import Foundation
import Testing

/// `Linear.largestOutputs` against ranking the whole product: the same indices, the same bits.
@Suite("Linear's largest outputs")
struct LinearLargestOutputsTests {
    /// The `count` largest of `values` by sorting everything: largest first, equal values in
    /// increasing index, NaN last.
    func ranked(_ values: [Float], _ count: Int) -> [Int] {
        Array(values.indices.sorted { a, b in
            let (x, y) = (values[a], values[b])
            if x.isNaN || y.isNaN { return !x.isNaN && y.isNaN || (x.isNaN && y.isNaN && a < b) }
            return x > y || (x == y && a < b)
        }.prefix(count))
    }

    /// Checks `largestOutputs` on `layer` for `x` against the whole product, on every instruction set
    /// and at 1 and 2 threads; returns the fewest outputs a call computed.
    @discardableResult
    func check(_ layer: Linear<Float>, _ x: Tensor<Float>, count: Int, _ label: String) throws -> Int {
        var fewest = Int.max
        for isa in KernelInstructionSet.allCases where isa.isSupported {
            for threads in [1, 2] {
                let options = AttentionOptions(implementation: .tiled(isa), threads: threads)
                let whole = try layer(x, options: options).scalars
                let expected = ranked(whole, count)
                let result = try layer.largestOutputs(count, of: x, options: options)
                #expect(result.indices == expected, "\(label) \(isa) \(threads) threads")
                #expect(result.values.map(\.bitPattern) == expected.map { whole[$0].bitPattern }, "\(label) \(isa) \(threads) threads")
                fewest = min(fewest, result.outputsComputed)
            }
        }
        return fewest
    }

    @Test("The largest outputs and their values equal ranking the whole product, with the screen computing a fraction of them",
          arguments: [(1003, 70, true), (557, 64, false), (4099, 96, true), (50, 33, true), (2048, 768, false)])
    func agreesWithWholeProduct(shape: (outputs: Int, inputs: Int, bias: Bool)) throws {
        var g = SplitMix64(seed: UInt64(shape.outputs * 7 + shape.inputs))
        let weight = try Tensor<Float>.randomNormal(shape: [shape.outputs, shape.inputs], using: &g).map { $0 * 0.05 }
        let bias = shape.bias ? try Tensor<Float>.randomNormal(shape: [shape.outputs], using: &g).map { $0 * 0.1 } : nil
        let layer = try Linear(weight: weight, bias: bias)
        for (n, scale) in [Float(1), 30, 1e-3].enumerated() {
            let x = try Tensor<Float>.randomNormal(shape: [1, shape.inputs], using: &g).map { $0 * scale }
            for count in [1, 3, 12] where 4 * count <= shape.outputs {
                let fewest = try check(layer, x, count: count, "\(shape) input \(n) count \(count)")
                // The screen ran and ruled most outputs out (50 outputs are too few to be sure it pays).
                if shape.outputs > 50 { #expect(fewest < shape.outputs / 4, "\(shape) input \(n) count \(count): \(fewest) computed") }
            }
        }
    }

    @Test("Rows that differ below the 8-bit blocks' resolution, or not at all, rank as the whole product ranks them")
    func nearTies() throws {
        var g = SplitMix64(seed: 99)
        let (outputs, inputs) = (640, 96)
        let base = try Tensor<Float>.randomNormal(shape: [outputs / 4, inputs], using: &g).map { $0 * 0.05 }
        let nudges = try Tensor<Float>.randomNormal(shape: [outputs, inputs], using: &g)
        // Four rows per base row: itself, two nudged by 10⁻⁵ of a block's step, one an exact copy.
        var rows: [Float] = []
        for r in 0..<(outputs / 4) {
            let row = Array(base.scalars[(r * inputs)..<((r + 1) * inputs)])
            for copy in 0..<4 {
                rows += row.enumerated().map { j, v in
                    copy == 1 || copy == 2 ? v + 2e-7 * nudges.scalars[(4 * r + copy) * inputs + j] : v
                }
            }
        }
        let layer = try Linear(weight: try Tensor(shape: [outputs, inputs], scalars: rows), bias: nil)
        for n in 0..<12 {
            let x = try Tensor<Float>.randomNormal(shape: [1, inputs], using: &g)
            for count in [1, 4, 9] {
                let fewest = try check(layer, x, count: count, "input \(n) count \(count)")
                #expect(fewest < outputs / 4)
            }
        }
    }

    @Test("Inputs and weights the screen cannot bound, and counts it would not pay for, rank the whole product")
    func wholeProduct() throws {
        var g = SplitMix64(seed: 4)
        let (outputs, inputs) = (300, 40)
        var weight = try Tensor<Float>.randomNormal(shape: [outputs, inputs], using: &g)
        let layer = try Linear(weight: weight, bias: nil)
        let x = try Tensor<Float>.randomNormal(shape: [inputs], using: &g)
        // More than a quarter of the outputs, or all of them and more.
        #expect(try check(layer, x, count: 76, "count 76") == outputs)
        #expect(try layer.largestOutputs(outputs + 5, of: x).indices == ranked(try layer(x).scalars, outputs))
        // A NaN input: every output NaN, ranked in index order.
        var poisoned = x
        poisoned[3] = .nan
        let nan = try layer.largestOutputs(3, of: poisoned)
        #expect(nan.indices == [0, 1, 2] && nan.outputsComputed == outputs)
        // An infinite input.
        var huge = x
        huge[0] = .infinity
        #expect(try check(layer, huge, count: 2, "infinite input") == outputs)
        // A weight too large for half-precision scales, or infinite: no screen, the same answer.
        weight[7, 2] = 1e8
        #expect(try check(try Linear(weight: weight, bias: nil), x, count: 2, "large weight") == outputs)
        weight[7, 2] = .infinity
        #expect(try check(try Linear(weight: weight, bias: nil), x, count: 2, "infinite weight") == outputs)
        // Input-major weights and the Double loop: the whole product.
        let inputMajor = try Linear(weight: try layer.weight.transposed(), bias: nil, layout: .inputMajor)
        #expect(try check(inputMajor, x, count: 1, "input-major") == outputs)
        let reference = try layer.largestOutputs(2, of: x, options: AttentionOptions(implementation: .reference))
        #expect(reference.indices == ranked(try layer(x, options: AttentionOptions(implementation: .reference)).scalars, 2))
    }

    @Test("A count below 1 or an input that is not one row of the layer's width is a typed error")
    func badArguments() throws {
        var g = SplitMix64(seed: 5)
        let layer = try Linear(weight: try Tensor<Float>.randomNormal(shape: [64, 32], using: &g), bias: nil)
        let x = try Tensor<Float>.randomNormal(shape: [1, 32], using: &g)
        for count in [0, -1, Int.min] {
            #expect(throws: AttentionError.self) { try layer.largestOutputs(count, of: x) }
        }
        #expect(try layer.largestOutputs(Int.max, of: x).indices.count == 64)
        for shape in [[2, 32], [1, 31], [33]] {
            let bad = try Tensor<Float>.randomNormal(shape: shape, using: &g)
            #expect(throws: AttentionError.self) { try layer.largestOutputs(1, of: bad) }
        }
    }
}
