import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("Tensor")
struct TensorTests {
    @Test("Nested arrays, element access and shapes")
    func nested() throws {
        let t = try Tensor<Double>([[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]])
        #expect(t.shape == [2, 2, 3])
        #expect(t.strides == [6, 3, 1])
        #expect(t[1, 0, 2] == 9)
        var u = t
        u[0, 1, 1] = -5
        #expect(u[0, 1, 1] == -5 && t[0, 1, 1] == 5)   // value semantics
        #expect(thrownError { try Tensor<Double>([[1, 2], [3]]) } == .invalidShape("matrix"))
    }

    @Test("Views of leading dimensions share storage and read the right elements")
    func views() throws {
        let t = try Tensor<Float>.randomNormal(shape: [2, 3, 4, 5], seed: 1)
        let view = try t.view(1, 2)
        #expect(view.shape == [4, 5])
        #expect(view[3, 4] == t[1, 2, 3, 4])
        #expect(view.offset == (1 * 3 + 2) * 20)
        view.withUnsafeBufferPointer { buffer in
            t.withUnsafeBufferPointer { all in
                #expect(buffer.baseAddress == all.baseAddress.map { $0 + view.offset })   // no copy
            }
        }
        #expect(view.copy().scalars == Array(t.scalars[100..<120]))
    }

    @Test("Random tensors are repeatable by seed and have the requested moments")
    func random() throws {
        let a = try Tensor<Double>.randomNormal(shape: [10_000], mean: 2, standardDeviation: 3, seed: 42)
        let b = try Tensor<Double>.randomNormal(shape: [10_000], mean: 2, standardDeviation: 3, seed: 42)
        let c = try Tensor<Double>.randomNormal(shape: [10_000], mean: 2, standardDeviation: 3, seed: 43)
        #expect(a == b && a != c)
        let mean = a.scalars.reduce(0, +) / 10_000
        let variance = a.scalars.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 10_000
        #expect(abs(mean - 2) < 0.1 && abs(variance.squareRoot() - 3) < 0.1)
        let u = try Tensor<Float>.randomUniform(shape: [1000], in: -1...1, seed: 7)
        #expect(u.scalars.allSatisfy { $0 >= -1 && $0 <= 1 })
    }

    @Test("SplitMix64's first outputs for seed 0 match the published sequence")
    func splitMixKnownAnswer() {
        var g = SplitMix64(seed: 0)
        #expect(g.next() == 0xE220_A839_7B1D_CDAF)
        #expect(g.next() == 0x6E78_9E6A_A1B9_65F4)
    }
}
