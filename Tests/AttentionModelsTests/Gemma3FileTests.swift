import Attention
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// Gemma 3 270M in Q4_K_M, installed the way a user installs it (`Gemma3Store.fetch`, what
/// `attention model fetch gemma3` runs) if it is not there yet: the file's layers, and every kind
/// of matrix it stores read in place by the quantized kernels. These tests never skip.
@Suite("Gemma 3 GGUF file", .serialized)
struct Gemma3FileTests {
    static let file: Result<GGUF, Error> = Result {
        let directory = Gemma3Store.defaultDirectory()
        try Gemma3Store.fetch(into: directory) { print($0) }
        return try GGUF(contentsOf: Gemma3Store.file(in: directory))
    }

    @Test("The metadata says what the model is: Gemma 3, 18 layers of width 640, 4 query heads over 1 key/value head of 256, a window of 512")
    func metadata() throws {
        let file = try Self.file.get()
        let m = file.metadata
        #expect(m["general.architecture"]?.string == "gemma3")
        #expect(m["gemma3.block_count"]?.integer == 18 && m["gemma3.embedding_length"]?.integer == 640)
        #expect(m["gemma3.feed_forward_length"]?.integer == 2048 && m["gemma3.context_length"]?.integer == 32768)
        #expect(m["gemma3.attention.head_count"]?.integer == 4 && m["gemma3.attention.head_count_kv"]?.integer == 1)
        #expect(m["gemma3.attention.key_length"]?.integer == 256 && m["gemma3.attention.sliding_window"]?.integer == 512)
        #expect(m["gemma3.rope.freq_base"]?.floatingPoint == 1_000_000)
        #expect(m["tokenizer.ggml.model"]?.string == "llama" && m["tokenizer.ggml.tokens"]?.strings?.count == 262_144)
        #expect(Set(file.tensors.map(\.type)) == [.F32, .Q8_0, .Q5_0, .Q4_K, .Q6_K])
        #expect(file.tensors.count == 236)
    }

    @Test("Every kind of matrix the file stores (Q4_K, Q6_K, Q5_0, Q8_0) is read in place, and its products agree with the reference reader's values on every instruction set")
    func matricesReadInPlace() throws {
        let file = try Self.file.get()
        var g = SplitMix64(seed: 0x6E3)
        // The first layer's matrices and one later layer's: every stored type and shape of the layers.
        let names = file.tensors.filter { $0.dimensions.count == 2 && ($0.name.hasPrefix("blk.0.") || $0.name.hasPrefix("blk.5.")) }.map(\.name)
        var types: Set<GGUF.TensorType> = []
        for name in names {
            let entry = try #require(file.info(name))
            let matrix = try QuantizedMatrix(gguf: file, name: name)
            types.insert(entry.type)
            let reference = try file.tensor(name)
            #expect(matrix.dequantized().scalars.map(\.bitPattern) == reference.scalars.map(\.bitPattern), "\(name)")
            let (rows, columns) = (matrix.rows, matrix.columns)
            for m in [1, 3, 20] {
                let x = try Tensor<Float>.randomUniform(shape: [m, columns], in: -1...1, using: &g)
                var exact = [Double](repeating: 0, count: m * rows), magnitude = exact
                for r in 0..<m {
                    for o in 0..<rows {
                        for j in 0..<columns {
                            let p = Double(x.scalars[r * columns + j]) * Double(reference.scalars[o * columns + j])
                            exact[r * rows + o] += p
                            magnitude[r * rows + o] += abs(p)
                        }
                    }
                }
                let u = Double(Float.ulpOfOne) / 2
                for isa in KernelInstructionSet.allCases where isa.isSupported {
                    let y = try matrix.multiply(x, options: AttentionOptions(implementation: .tiled(isa), threads: 2, quantizedPrecision: .float32))
                    let worst = zip(y.scalars.indices, y.scalars).map { i, v in abs(Double(v) - exact[i]) / (2 * Double(columns + 2) * u * magnitude[i] + 1e-30) }.max() ?? 0
                    #expect(worst <= 1, "\(name) (\(entry.type)) \(m) rows \(isa): error \(worst) of the bound")
                }
            }
        }
        #expect(types == [.Q8_0, .Q5_0, .Q4_K, .Q6_K])
        // The token embedding (Q8_0, 262,144 rows): rows looked up as the reader gives them.
        let embedding = try QuantizedMatrix(gguf: file, name: "token_embd.weight")
        #expect(embedding.rows == 262_144 && embedding.columns == 640)
        let picked = try embedding.rows([2, 262_143, 10_000])
        try file.withUnsafeBytes(of: "token_embd.weight") { raw in
            for (i, row) in [2, 262_143, 10_000].enumerated() {
                var want = [Float](repeating: 0, count: 640)
                let bytes = UnsafeRawBufferPointer(rebasing: raw[(row * 20 * 34)..<((row + 1) * 20 * 34)])
                try want.withUnsafeMutableBufferPointer { try GGUF.TensorType.Q8_0.dequantize(bytes, into: $0) }
                #expect(Array(picked.scalars[(640 * i)..<(640 * (i + 1))]) == want, "row \(row)")
            }
        }
    }
}
