import Attention
import AttentionTestSupport
import Foundation
import Testing

/// Every integer argument of the `Attention` library at `Int.min, -1, 0, 1, Int.max`: a typed error
/// or a correct result, never a trap (a trap stops this test process) and never a hang (the time
/// limit). Where an extreme has a meaning (a window wider than the sequence is no limit), the result
/// is checked against the mask it means.
@Suite("Integer boundaries of the Attention library", .timeLimit(.minutes(2)))
struct BoundaryMatrixTests {
    /// Three queries over four keys, D = 2, Float: small enough for every extreme, long enough that a
    /// window or band cuts something.
    static let (q, k, v) = (
        try! Tensor<Float>(shape: [3, 2], scalars: [0.1, 0.9, -0.4, 0.3, 0.7, -0.2]),
        try! Tensor<Float>(shape: [4, 2], scalars: [0.5, -0.1, 0.2, 0.8, -0.6, 0.4, 0.3, 0.3]),
        try! Tensor<Float>(shape: [4, 2], scalars: [1, 2, 3, 4, 5, 6, 7, 8]))

    /// The output under `mask` on the reference and on the tiled kernel of each instruction set this
    /// CPU runs; they must agree with each other and, where given, with the output under `meaning`.
    static func attend(_ mask: AttentionMask, means meaning: AttentionMask? = nil) throws {
        var outputs: [[Float]] = []
        for implementation in [AttentionImplementation.reference] + KernelInstructionSet.allCases.filter(\.isSupported).map({ .tiled($0) }) {
            let options = AttentionOptions(implementation: implementation, threads: 1)
            outputs.append(try scaledDotProductAttention(query: q, key: k, value: v, mask: mask, options: options).output.scalars)
            if let meaning {
                let expected = try scaledDotProductAttention(query: q, key: k, value: v, mask: meaning, options: options).output.scalars
                #expect(outputs.last == expected, "\(implementation)")
            }
        }
        for other in outputs.dropFirst() {
            #expect(zip(other, outputs[0]).allSatisfy { abs($0 - $1) <= 1e-5 })
        }
    }

    static let masks: [IntegerInput] = [
        IntegerInput("AttentionMask.slidingWindow left") { n in
            try attend(.slidingWindow(left: n, right: 0), means: n == .max ? .causal : nil)
        },
        IntegerInput("AttentionMask.slidingWindow right") { n in
            try attend(.slidingWindow(left: 0, right: n), means: n == .max ? .slidingWindow(left: 0, right: 4) : nil)
        },
        IntegerInput("AttentionMask.slidingWindow both") { n in
            try attend(.slidingWindow(left: n, right: n), means: n == .max ? AttentionMask.none : nil)
        },
        IntegerInput("AttentionMask.slidingWindow left, top-left") { n in
            try attend(.slidingWindow(left: n, right: 1, alignment: .topLeft) && .causal)
        },
        IntegerInput("AttentionMask.diagonalBand lower") { n in
            try attend(.diagonalBand(lower: n, upper: nil), means: n == .min ? AttentionMask.none : nil)
        },
        IntegerInput("AttentionMask.diagonalBand upper") { n in
            try attend(.diagonalBand(lower: nil, upper: n), means: n == .max ? AttentionMask.none : nil)
        },
        IntegerInput("AttentionMask.diagonalBand both") { n in
            try attend(.diagonalBand(lower: n, upper: n))
            try attend(.diagonalBand(lower: n == .min ? .max : -n, upper: n))
        },
        IntegerInput("AttentionMask.keyLengths") { n in try attend(.keyLengths([n])) },
        IntegerInput("AttentionMask.matrix queryLength") { n in _ = try AttentionMask.causal.matrix(queryLength: n, keyLength: 3) },
        IntegerInput("AttentionMask.matrix keyLength") { n in _ = try AttentionMask.causal.matrix(queryLength: 3, keyLength: n) },
        IntegerInput("AttentionMask.matrix batchSize") { n in _ = try AttentionMask.keyLengths([2]).matrix(queryLength: 2, keyLength: 3, batchSize: n) },
        IntegerInput("AttentionMask.matrix heads") { n in _ = try AttentionMask.causal.matrix(queryLength: 2, keyLength: 3, heads: n) },
        IntegerInput("AttentionMask.matrix batch") { n in _ = try AttentionMask.causal.matrix(queryLength: 2, keyLength: 3, batch: n) },
        IntegerInput("AttentionMask.matrix head") { n in _ = try AttentionMask.causal.matrix(queryLength: 2, keyLength: 3, head: n) },
        IntegerInput("AttentionOptions threads") { n in
            _ = try scaledDotProductAttention(query: q, key: k, value: v, options: AttentionOptions(threads: n))
            _ = try scaledDotProductAttentionBackward(query: q, key: k, value: v, outputGradient: q, options: AttentionOptions(threads: n))
        },
    ]

    static let tensors: [IntegerInput] = [
        IntegerInput("Tensor(shape:scalars:)") { n in _ = try Tensor<Float>(shape: [n, 2], scalars: []) },
        IntegerInput("Tensor(repeating:shape:)") { n in _ = try Tensor<Float>(repeating: 1, shape: [n]) },
        IntegerInput("Tensor(repeating:shape:) two extents") { n in _ = try Tensor<Float>(repeating: 1, shape: [n, n]) },
        IntegerInput("Tensor(zeros:)") { n in _ = try Tensor<Double>(zeros: [2, n]) },
        IntegerInput("Tensor.reshaped") { n in _ = try q.reshaped([n, 6]) },
        IntegerInput("Tensor.view") { n in _ = try q.view(n) },
        IntegerInput("Tensor.view(at:)") { n in _ = try q.view(at: [0, n]) },
        IntegerInput("Tensor.randomNormal shape") { n in _ = try Tensor<Float>.randomNormal(shape: [n, 1], seed: 1) },
        IntegerInput("Tensor.randomUniform shape") { n in
            var g = SplitMix64(seed: 1)
            _ = try Tensor<Float>.randomUniform(shape: [1, n], using: &g)
        },
        IntegerInput("checkedElementCount extents") { n in _ = try checkedElementCount([n, 3], argument: "x") },
        IntegerInput("checkedElementCount atMost") { n in _ = try checkedElementCount([2, 3], argument: "x", atMost: n) },
        IntegerInput("NPY.header shape") { n in
            let header = NPY.header(shape: [n], descriptor: "<f4")
            #expect(String(decoding: header, as: UTF8.self).contains("(\(n),)"))
        },
        IntegerInput("GGUF.TensorType.byteCount elements") { n in
            for type in GGUF.TensorType.allCases { _ = type.byteCount(elements: n) }
        },
    ]

    static func cache(batchSize: Int = 1, heads: Int = 1, dimension: Int = 2, valueDimension: Int? = nil, capacity: Int = 8, window: Int? = nil) throws -> KVCache {
        try KVCache(batchSize: batchSize, keyValueHeads: heads, headDimension: dimension, valueHeadDimension: valueDimension,
                    capacity: capacity, slidingWindow: window)
    }

    static let caches: [IntegerInput] = [
        IntegerInput("KVCache batchSize") { n in _ = try cache(batchSize: n) },
        IntegerInput("KVCache keyValueHeads") { n in _ = try cache(heads: n) },
        IntegerInput("KVCache headDimension") { n in _ = try cache(dimension: n) },
        IntegerInput("KVCache valueHeadDimension") { n in _ = try cache(valueDimension: n) },
        IntegerInput("KVCache capacity") { n in _ = try cache(capacity: n) },
        IntegerInput("KVCache slidingWindow") { n in _ = try cache(window: n) },
        IntegerInput("KVCache capacity with a window") { n in _ = try cache(capacity: n, window: 1) },
        IntegerInput("KVCache.append validLengths") { n in
            var c = try cache()
            try c.append(key: k, value: v, validLengths: [n])
        },
        IntegerInput("KVCache.truncate(to:)") { n in
            var c = try cache(capacity: 8, window: 4)
            try c.append(key: k, value: v)
            try c.append(key: k, value: v)
            try c.truncate(to: n)
            _ = try scaledDotProductAttention(query: q, cache: c, mask: .causal)
        },
        IntegerInput("KVCache.truncate(to: [lengths])") { n in
            var c = try cache()
            try c.append(key: k, value: v)
            try c.truncate(to: [n])
        },
        IntegerInput("KVCache attention, sliding window mask") { n in
            var c = try cache()
            try c.append(key: k, value: v)
            let windowed = try scaledDotProductAttention(query: q, cache: c, mask: .causal && .slidingWindow(left: n, right: 0))
            if n == .max {
                #expect(windowed.output == (try scaledDotProductAttention(query: q, cache: c, mask: .causal)).output)
            }
        },
    ]

    static let layers: [IntegerInput] = [
        IntegerInput("Linear inputDimension") { n in
            var g = SplitMix64(seed: 1)
            _ = try Linear<Float>(inputDimension: n, outputDimension: 2, using: &g)
        },
        IntegerInput("Linear outputDimension") { n in
            var g = SplitMix64(seed: 1)
            _ = try Linear<Float>(inputDimension: 2, outputDimension: n, using: &g)
        },
        IntegerInput("Linear.largestOutputs count") { n in
            var g = SplitMix64(seed: 1)
            let layer = try Linear<Float>(inputDimension: 2, outputDimension: 5, using: &g)
            let ranked = try layer.largestOutputs(n, of: try q.view(0).copy().reshaped([1, 2]))
            #expect(ranked.indices.count == min(n, 5))
        },
        IntegerInput("MultiHeadAttention embedDimension") { n in _ = try MultiHeadAttention<Float>(embedDimension: n, numHeads: 1) },
        IntegerInput("MultiHeadAttention numHeads") { n in _ = try MultiHeadAttention<Float>(embedDimension: 4, numHeads: n) },
        IntegerInput("MultiHeadAttention numKeyValueHeads") { n in _ = try MultiHeadAttention<Float>(embedDimension: 4, numHeads: 2, numKeyValueHeads: n) },
        IntegerInput("MultiHeadAttention headDimension") { n in _ = try MultiHeadAttention<Float>(embedDimension: 4, numHeads: 2, headDimension: n) },
        IntegerInput("MultiHeadAttention keyInputDimension") { n in _ = try MultiHeadAttention<Float>(embedDimension: 4, numHeads: 2, keyInputDimension: n) },
        IntegerInput("MultiHeadAttention valueInputDimension") { n in _ = try MultiHeadAttention<Float>(embedDimension: 4, numHeads: 2, valueInputDimension: n) },
        IntegerInput("LayerNorm features") { n in _ = try LayerNorm<Float>(features: n) },
        IntegerInput("Embedding vocabulary") { n in _ = try Embedding<Float>(vocabulary: n, dimension: 2, seed: 1) },
        IntegerInput("Embedding dimension") { n in _ = try Embedding<Float>(vocabulary: 2, dimension: n, seed: 1) },
        IntegerInput("Embedding ids") { n in
            let table = try Embedding<Float>(vocabulary: 3, dimension: 2, seed: 1)
            _ = try table([n])
            _ = try table.backward(ids: [n], outputGradient: try Tensor(zeros: [1, 2]))
        },
        IntegerInput("crossEntropy targets") { n in _ = try crossEntropy(logits: q, targets: [0, 1, n]) },
        IntegerInput("RotaryEmbedding headDimension") { n in _ = try RotaryEmbedding(headDimension: n) },
        IntegerInput("RotaryEmbedding startingAt") { n in _ = try RotaryEmbedding(headDimension: 2)(q, startingAt: n) },
        IntegerInput("QuantizedMatrix rows") { n in _ = try QuantizedMatrix(format: .q8_0, rows: n, columns: 32, bytes: Data(count: 34)) },
        IntegerInput("QuantizedMatrix columns") { n in _ = try QuantizedMatrix(format: .q4_0, rows: 1, columns: n, bytes: Data(count: 18)) },
        IntegerInput("QuantizedMatrix(type: .Q3_K) rows") { n in _ = try QuantizedMatrix(type: .Q3_K, rows: n, columns: 256, bytes: Data(count: 110)) },
        IntegerInput("QuantizedMatrix(type: .Q3_K) columns") { n in _ = try QuantizedMatrix(type: .Q3_K, rows: 1, columns: n, bytes: Data(count: 110)) },
        IntegerInput("QuantizedMatrix.rows(indices)") { n in
            let matrix = try QuantizedMatrix(format: .q8_0, rows: 1, columns: 32, bytes: Data(count: 34))
            _ = try matrix.rows([n])
        },
        IntegerInput("measureReadBandwidth threads and bytes", values: [Int.min, -1, 0, 1]) { n in
            #expect(measureReadBandwidth(threads: n, bytes: n) > 0)
            #expect(measureReadBandwidth(threads: 1, bytes: n) > 0)
        },
    ]

    @Test("Masks, options", arguments: masks) func maskInputs(_ input: IntegerInput) { input.check() }
    @Test("Tensors and files", arguments: tensors) func tensorInputs(_ input: IntegerInput) { input.check() }
    @Test("The KV cache", arguments: caches) func cacheInputs(_ input: IntegerInput) { input.check() }
    @Test("Layers", arguments: layers) func layerInputs(_ input: IntegerInput) { input.check() }

    @Test("The probes bring a thread count of Int.max into range instead of starting Int.max threads")
    func probeThreads() {
        #expect(measureMultiplyAddPeak(threads: .max, seconds: 0.001) > 0)
        #expect(measureMultiplyAddPeak(threads: .min, seconds: 0.001) > 0)
        #expect(measureReadBandwidth(threads: .max, bytes: 1 << 20) > 0)
    }

    @Test("The reported traps: a window of Int.max is no limit, through the library and the reference")
    func reportedWindow() throws {
        let one = try Tensor<Double>(shape: [1, 1], scalars: [1])
        let wide = try scaledDotProductAttention(query: one, key: one, value: one, mask: .slidingWindow(left: 0, right: .max))
        #expect(wide.output.scalars == [1])
        let reference = try scaledDotProductAttention(query: one, key: one, value: one, mask: .slidingWindow(left: .max, right: .max),
                                                      options: AttentionOptions(implementation: .reference))
        #expect(reference.output.scalars == [1])
    }
}
