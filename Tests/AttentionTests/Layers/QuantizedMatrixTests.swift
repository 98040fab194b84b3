import Attention
import AttentionTestSupport
import Foundation
import Testing

@Suite("Block-quantized matrices")
struct QuantizedMatrixTests {
    /// Random blocks of `format` for `[rows, columns]`: scales of either sign and several magnitudes
    /// (half precision), minimums for Q4_1, and every integer value.
    static func randomMatrix(_ format: QuantizedMatrix.Format, rows: Int, columns: Int, using g: inout SplitMix64) throws -> QuantizedMatrix {
        let blocks = rows * columns / format.valuesPerBlock
        return try QuantizedMatrix(format: format, rows: rows, columns: columns, bytes: Data(randomBlocks(format, count: blocks, using: &g)))
    }

    /// `count` random blocks of `format`, written byte by byte as the format is documented: scales
    /// first for the 32-value formats; for the k-quants random bytes (every packed scale and
    /// integer) with ordinary half-precision scales at their places.
    static func randomBlocks(_ format: QuantizedMatrix.Format, count: Int, using g: inout SplitMix64) -> [UInt8] {
        var bytes = [UInt8]()
        func half(_ x: Float) { let bits = Float16(x).bitPattern; bytes += [UInt8(bits & 0xFF), UInt8(bits >> 8)] }
        func scale() -> Float { Float(1e-3 + 0.1 * g.nextUnit()) * (g.next() & 1 == 0 ? 1 : -1) }
        let superBlock: (bytes: Int, halves: [Int])? = switch format {
        case .q4_k: (144, [0, 2])
        case .q5_k: (176, [0, 2])
        case .q6_k: (210, [208])
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1: nil
        }
        if let superBlock {
            for _ in 0..<count {
                var block = (0..<superBlock.bytes).map { _ in UInt8(truncatingIfNeeded: g.next()) }
                for at in superBlock.halves {
                    let bits = Float16(scale()).bitPattern
                    block[at] = UInt8(bits & 0xFF)
                    block[at + 1] = UInt8(bits >> 8)
                }
                bytes += block
            }
            return bytes
        }
        for _ in 0..<count {
            half(scale())
            if format == .q4_1 || format == .q5_1 { half(scale()) }
            // Q8_0: 32 signed bytes; Q5_*: a word of fifth bits and 16 bytes of nibbles; Q4_*: the nibbles.
            let quantBytes = switch format { case .q8_0: 32; case .q5_0, .q5_1: 20; default: 16 }
            for _ in 0..<quantBytes { bytes.append(UInt8(truncatingIfNeeded: g.next())) }
        }
        return bytes
    }

    /// Projections of mixed formats over 256 inputs, 521 outputs, so that the threads' shares of a
    /// product cut across the matrices: interleaved copies, one of nine rows (too few to interleave:
    /// index 4), and two k-quants (repacked, not interleaved).
    static func mixedProjections(using g: inout SplitMix64) throws -> [QuantizedMatrix] {
        [try randomMatrix(.q4_1, rows: 256, columns: 256, using: &g),
         try randomMatrix(.q8_0, rows: 64, columns: 256, using: &g),
         try randomMatrix(.q6_k, rows: 40, columns: 256, using: &g),
         try randomMatrix(.q4_0, rows: 128, columns: 256, using: &g),
         try randomMatrix(.q5_0, rows: 9, columns: 256, using: &g),
         try randomMatrix(.q4_k, rows: 24, columns: 256, using: &g)]
    }

    @Test("Float32 products read from the blocks equal the Double product of the dequantized matrix on awkward shapes, for every format, instruction set and thread count",
          arguments: QuantizedMatrix.Format.allCases)
    func productsMatchTheDequantizedReference(format: QuantizedMatrix.Format) throws {
        var g = SplitMix64(seed: 0x9A17)
        // Inputs of 1, 2, 3, 4, 5, 7 and 48 blocks: one step reads four blocks at a time, then pairs, then one.
        // Outputs: rows interleaved by sixteen and remainder rows; 50 puts one interleaved group and
        // two remainder rows in the same 32-output panel.
        // Super-blocks: inputs of 1, 2, 3 and 6 super-blocks.
        let shapes = format.valuesPerBlock == 32
            ? [(outputs: 1, inputs: 32), (outputs: 7, inputs: 96), (outputs: 33, inputs: 160), (outputs: 70, inputs: 64),
               (outputs: 9, inputs: 224), (outputs: 50, inputs: 128), (outputs: 100, inputs: 1536)]
            : [(outputs: 1, inputs: 256), (outputs: 7, inputs: 512), (outputs: 33, inputs: 768), (outputs: 50, inputs: 256),
               (outputs: 100, inputs: 1536)]
        for shape in shapes {
            let matrix = try Self.randomMatrix(format, rows: shape.outputs, columns: shape.inputs, using: &g)
            let w = matrix.dequantized()
            #expect(w.shape == [shape.outputs, shape.inputs])
            // 1 row (a decoding step), the few-rows kernel (2...8), and panels with partial 8-row blocks.
            for rows in [1, 2, 5, 8, 9, 17, 40] where rows * shape.outputs * shape.inputs < 3_000_000 {
                let x = try Tensor<Float>.randomUniform(shape: [rows, shape.inputs], in: -2...2, using: &g)
                var exact = [Double](repeating: 0, count: rows * shape.outputs), magnitude = exact
                for r in 0..<rows {
                    for o in 0..<shape.outputs {
                        for j in 0..<shape.inputs {
                            let p = Double(x.scalars[r * shape.inputs + j]) * Double(w.scalars[o * shape.inputs + j])
                            exact[r * shape.outputs + o] += p
                            magnitude[r * shape.outputs + o] += abs(p)
                        }
                    }
                }
                // A Float sum of k products in any order errs by at most about k·u·Σ|x·w|; twice that.
                let u = Double(Float.ulpOfOne) / 2
                let bound = magnitude.map { 2 * Double(shape.inputs + 2) * u * $0 + 1e-30 }
                for isa in KernelInstructionSet.allCases where isa.isSupported {
                    for threads in [1, 2] {
                        let y = try matrix.multiply(x, options: AttentionOptions(implementation: .tiled(isa), threads: threads, quantizedPrecision: .float32))
                        #expect(y.shape == [rows, shape.outputs])
                        let worst = zip(zip(y.scalars, exact), bound).map { abs(Double($0.0) - $0.1) / $1 }.max() ?? 0
                        #expect(worst <= 1, "\(format) \(shape) rows \(rows) \(isa) \(threads) threads: error \(worst) of the bound")
                    }
                }
                let plain = try matrix.multiply(x, options: AttentionOptions(implementation: .reference, quantizedPrecision: .float32))
                #expect(zip(zip(plain.scalars, exact), bound).allSatisfy { abs(Double($0.0) - $0.1) <= $1 }, "\(format) \(shape) reference")
            }
        }
    }

    /// `x` rounded per block of 32 as the int8 products round it, written here from the rule: `d =
    /// max|x| / 127`, each value `round(x / d)·d` with halves away from zero (`x / d` computed as
    /// `x · (1 / d)`, in Float, as llama.cpp does).
    /// With `refined`, what that rounding leaves out (`x − round(x / d)·d` in Float) is rounded the
    /// same way and added.
    static func int8Rounded(_ x: [Float], refined: Bool = false) -> [Double] {
        stride(from: 0, to: x.count, by: 32).flatMap { start -> [Double] in
            let block = Array(x[start..<(start + 32)])
            let d = block.map(abs).max()! / 127
            let inverse: Float = d == 0 ? 0 : 1 / d
            let q = block.map { ($0 * inverse).rounded(.toNearestOrAwayFromZero) }
            let first = q.map { Double($0) * Double(d) }
            guard refined else { return first }
            let rest = zip(block, q).map { $0 - $1 * d }
            return zip(first, int8Rounded(rest)).map { $0 + $1 }
        }
    }

    @Test("Int8 products (the input rounded to 8 bits per block, integer dot products) equal the Double product of the dequantized matrix with the rounded input, on awkward shapes, for every format that has them, instruction set and thread count",
          arguments: QuantizedMatrix.Format.allCases.filter(\.hasIntegerProducts))
    func int8ProductsMatchTheRoundedReference(format: QuantizedMatrix.Format) throws {
        var g = SplitMix64(seed: 0x1B7E)
        // Outputs: 1, 7 and 9 rows stored only (too few to interleave), 33 and 50 with remainders,
        // 64 interleaved only; inputs of 1 to 48 blocks (1 to 6 super-blocks for the k-quants, whose
        // copies are repacked). Input rows: one (a decoding step), fewer than four, four, eight (a
        // batched decoding step: one pass of eight rows on AVX-512), and passes of eight and four
        // rows with one to seven left.
        let shapes = format.valuesPerBlock == 32
            ? [(outputs: 1, inputs: 32), (outputs: 7, inputs: 96), (outputs: 33, inputs: 160), (outputs: 64, inputs: 64),
               (outputs: 9, inputs: 224), (outputs: 50, inputs: 128), (outputs: 100, inputs: 1536)]
            : [(outputs: 1, inputs: 256), (outputs: 7, inputs: 512), (outputs: 33, inputs: 768), (outputs: 64, inputs: 256),
               (outputs: 50, inputs: 512), (outputs: 100, inputs: 1536)]
        // Every other shape with the input refined (two passes of rounding).
        for (index, shape) in shapes.enumerated() {
            var matrix = try Self.randomMatrix(format, rows: shape.outputs, columns: shape.inputs, using: &g)
            let refined = index % 2 == 1
            matrix.refinesIntegerInput = refined
            let w = matrix.dequantized()
            for rows in [1, 2, 4, 5, 7, 8, 9, 13, 40] where rows * shape.outputs * shape.inputs < 3_000_000 {
                let x = try Tensor<Float>.randomUniform(shape: [rows, shape.inputs], in: -2...2, using: &g)
                let rounded = Self.int8Rounded(x.scalars, refined: refined)
                var exact = [Double](repeating: 0, count: rows * shape.outputs), magnitude = exact, unrounded = exact
                for r in 0..<rows {
                    for o in 0..<shape.outputs {
                        for j in 0..<shape.inputs {
                            let p = rounded[r * shape.inputs + j] * Double(w.scalars[o * shape.inputs + j])
                            exact[r * shape.outputs + o] += p
                            magnitude[r * shape.outputs + o] += abs(p)
                            unrounded[r * shape.outputs + o] += Double(x.scalars[r * shape.inputs + j]) * Double(w.scalars[o * shape.inputs + j])
                        }
                    }
                }
                // Per block a few Float roundings of the scales and the sums, then a Float sum over blocks.
                let u = Double(Float.ulpOfOne) / 2
                let bound = magnitude.map { 2 * Double(shape.inputs / 32 + 8) * u * $0 + 1e-30 }
                var first: [Float]?
                for isa in KernelInstructionSet.allCases where isa.isSupported {
                    for threads in [1, 2] {
                        let y = try matrix.multiply(x, options: AttentionOptions(implementation: .tiled(isa), threads: threads))
                        #expect(y.shape == [rows, shape.outputs])
                        let worst = zip(zip(y.scalars, exact), bound).map { abs(Double($0.0) - $0.1) / $1 }.max() ?? 0
                        #expect(worst <= 1, "\(format) \(shape) rows \(rows) \(isa) \(threads) threads: error \(worst) of the bound")
                        // Threads share the outputs, never a sum: the same values whatever their number.
                        if threads == 1 { first = y.scalars } else { #expect(y.scalars == first, "\(format) \(shape) rows \(rows) \(isa)") }
                    }
                }
                let plain = try matrix.multiply(x, options: AttentionOptions(implementation: .reference))
                #expect(zip(zip(plain.scalars, exact), bound).allSatisfy { abs(Double($0.0) - $0.1) <= $1 }, "\(format) \(shape) reference")
                if refined {
                    // Two passes keep about 15 bits: within 1/2000 of the unrounded product's magnitude. The
                    // second pass is real: one pass's product is further away than the bound.
                    let error = zip(exact, unrounded).map { abs($0 - $1) }.max() ?? 0, size = magnitude.max() ?? 0
                    #expect(error < size / 2000, "\(format) \(shape) rows \(rows): \(error) of \(size)")
                    let once = Self.int8Rounded(x.scalars)
                    let onePass = (0..<(rows * shape.outputs)).map { i in
                        let (r, o) = i.quotientAndRemainder(dividingBy: shape.outputs)
                        return (0..<shape.inputs).reduce(0.0) { $0 + once[r * shape.inputs + $1] * Double(w.scalars[o * shape.inputs + $1]) }
                    }
                    #expect(zip(zip(exact, onePass), bound).contains { abs($0.0 - $0.1) > $1 }, "\(format) \(shape) rows \(rows)")
                } else {
                    // The rounding is real: the result is the rounded input's product, not the input's, which
                    // is further away than the bound (a kernel that skipped the rounding would fail above).
                    #expect(zip(zip(exact, unrounded), bound).contains { abs($0.0 - $0.1) > $1 }, "\(format) \(shape) rows \(rows)")
                }
            }
        }
    }

    @Test("Int8 products: a block of zeros gives zeros, a NaN or an infinity in an input row makes that row's outputs NaN and no other's, and the integer instructions are the best this CPU has")
    func int8EdgeInputs() throws {
        var g = SplitMix64(seed: 0xED6E)
        // Every format has integer products.
        #expect(QuantizedMatrix.Format.allCases.filter(\.hasIntegerProducts) == QuantizedMatrix.Format.allCases)
        for format in QuantizedMatrix.Format.allCases where format.hasIntegerProducts {
            // Three blocks of 32, or three super-blocks.
            let c = 3 * format.valuesPerBlock, last = c - 1
            let matrix = try Self.randomMatrix(format, rows: 37, columns: c, using: &g)
            var x = try Tensor<Float>.randomUniform(shape: [6, c], in: -1...1, using: &g).scalars
            for j in 32..<64 { x[j] = 0 }   // row 0, block 1: zeros
            x[c + 40] = .nan                // row 1
            x[2 * c + last] = .infinity     // row 2
            x[3 * c + 3] = -.infinity       // row 3
            for isa in KernelInstructionSet.allCases where isa.isSupported {
                for rows in [1, 6] {
                    let input = try Tensor<Float>(shape: [rows, c], scalars: Array(x[..<(rows * c)]))
                    let y = try matrix.multiply(input, options: AttentionOptions(implementation: .tiled(isa)))
                    let plain = try matrix.multiply(input, options: AttentionOptions(implementation: .reference))
                    for r in 0..<rows {
                        let row = y.scalars[(r * 37)..<((r + 1) * 37)], want = plain.scalars[(r * 37)..<((r + 1) * 37)]
                        if (1...3).contains(r) {
                            #expect(row.allSatisfy(\.isNaN) && want.allSatisfy(\.isNaN), "\(format) \(isa) row \(r)")
                        } else {
                            // A few Float roundings of outputs up to a few hundred (the k-quants' scales reach 63·15·0.1).
                            let size = Double(max(1, want.map(\.magnitude).max() ?? 0))
                            #expect(row.allSatisfy(\.isFinite) && maxAbsDifference(Array(row), Array(want)) < 1e-5 * size,
                                    "\(format) \(isa) row \(r): \(maxAbsDifference(Array(row), Array(want))) of \(size)")
                        }
                    }
                }
            }
            // Integer products turned off: the Float products under either precision, bit for bit.
            var floats = matrix
            floats.usesIntegerProducts = false
            let float32 = AttentionOptions(quantizedPrecision: .float32)
            for rows in [1, 3, 9] {
                let input = try Tensor<Float>(shape: [rows, c], scalars: (0..<(rows * c)).map { Float($0 % 13) - 6 })
                #expect(try floats.multiply(input).scalars == matrix.multiply(input, options: float32).scalars, "\(format) \(rows) rows")
                #expect(try floats.multiply(input).scalars != matrix.multiply(input).scalars, "\(format) \(rows) rows")
                let pair = try QuantizedMatrix.multiply(input, by: [floats, matrix])
                #expect(try pair[0].scalars == floats.multiply(input).scalars && pair[1].scalars == matrix.multiply(input).scalars)
                // A matrix whose input is refined beside the others: each its own products, in order.
                var refined = matrix
                refined.refinesIntegerInput = true
                let three = try QuantizedMatrix.multiply(input, by: [refined, floats, matrix, refined])
                #expect(try three[0].scalars == refined.multiply(input).scalars && three[1].scalars == floats.multiply(input).scalars
                        && three[2].scalars == matrix.multiply(input).scalars && three[3].scalars == three[0].scalars, "\(format) \(rows) rows")
                #expect(try refined.multiply(input).scalars != matrix.multiply(input).scalars, "\(format) \(rows) rows")
            }
            // On again: the integer products as before (a k-quant's copy, dropped when they went off, made anew).
            var again = floats
            again.usesIntegerProducts = true
            let input = try Tensor<Float>(shape: [5, c], scalars: (0..<(5 * c)).map { Float($0 % 11) - 5 })
            #expect(try again.multiply(input).scalars == matrix.multiply(input).scalars, "\(format)")
            let zeros = try matrix.multiply(Tensor<Float>(zeros: [5, c]))
            #expect(zeros.scalars.allSatisfy { $0 == 0 })
            // No rows at all: empty outputs of the right shape, alone and beside another matrix, for both precisions.
            for precision in QuantizedPrecision.allCases {
                let options = AttentionOptions(quantizedPrecision: precision)
                let empty = try matrix.multiply(Tensor<Float>(zeros: [0, c]), options: options)
                #expect(empty.shape == [0, 37] && empty.scalars.isEmpty)
                let both = try QuantizedMatrix.multiply(Tensor<Float>(zeros: [2, 0, c]), by: [matrix, matrix], options: options)
                #expect(both.map(\.shape) == [[2, 0, 37], [2, 0, 37]])
            }
        }
        // The largest products the byte formats meet: every weight −128 or 127 against inputs of ±127
        // (the 16-bit pair sums of `vpmaddubsw` reach 2·128·127). Q8_0 with d = 1: 3 blocks, 20 rows.
        var extreme = [UInt8]()
        for row in 0..<20 {
            for block in 0..<3 {
                extreme += [0x00, 0x3C]   // 1.0 in half precision
                extreme += (0..<32).map { e in (row + block + e) % 3 == 0 ? 0x7F : 0x80 }
            }
        }
        let bytes = try QuantizedMatrix(format: .q8_0, rows: 20, columns: 96, bytes: Data(extreme))
        let signs = try Tensor<Float>(shape: [5, 96], scalars: (0..<480).map { ($0 / 7) % 2 == 0 ? 1 : -1 })
        let want = try bytes.multiply(signs, options: AttentionOptions(implementation: .reference))
        for isa in KernelInstructionSet.allCases where isa.isSupported {
            for rows in [1, 5] {
                let input = try Tensor<Float>(shape: [rows, 96], scalars: Array(signs.scalars[..<(rows * 96)]))
                let y = try bytes.multiply(input, options: AttentionOptions(implementation: .tiled(isa)))
                // Outputs of up to 3·32·128 = 12,288: a few Float roundings, where an overflow would be thousands off.
                #expect(maxAbsDifference(y.scalars, Array(want.scalars[..<(rows * 20)])) < 0.01, "\(isa) \(rows) rows")
            }
        }
        // A CPU with AVX-512 VNNI runs `vpdpbusd`; AVX-512 or AVX2 without it `vpmaddubsw`; else vectors.
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if KernelInstructionSet.avx512.isSupported {
            #expect(KernelInstructionSet.avx512.integerDotUnit == (flags.contains("avx512_vnni") ? "avx512-vnni" : "maddubs"))
        }
        if KernelInstructionSet.avx2.isSupported { #expect(KernelInstructionSet.avx2.integerDotUnit == "maddubs") }
        #expect(KernelInstructionSet.portable.integerDotUnit == "vector")
    }

    @Test("Each format is one row of the kernels' table of block traits: its GGUF type, its bytes per block and its interleaved layout agree with the file's reference reader",
          arguments: QuantizedMatrix.Format.allCases)
    func formatTraitsAgreeWithTheReferenceReader(format: QuantizedMatrix.Format) throws {
        var g = SplitMix64(seed: 0x7AB1E)
        #expect(QuantizedMatrix.Format(format.tensorType) == format)
        #expect(format.tensorType.name == format.rawValue && format.tensorType.blockSize == format.valuesPerBlock)
        #expect(format.bytesPerBlock == format.tensorType.bytesPerBlock)
        let halves: [QuantizedMatrix.Format: [Int]] = [.q8_0: [0], .q4_0: [0], .q4_1: [0, 2], .q5_0: [0], .q5_1: [0, 2], .q4_k: [0, 2], .q5_k: [0, 2], .q6_k: [208]]
        #expect(format.halfPrecisionScaleOffsets == halves[format])
        // 37 rows: for the 32-value formats two groups of sixteen interleaved (the layout the table
        // describes) and five as stored.
        let (rows, columns) = (37, format.valuesPerBlock == 32 ? 96 : 512)
        let bytes = Self.randomBlocks(format, count: rows * columns / format.valuesPerBlock, using: &g)
        #expect(bytes.count == rows * columns / format.valuesPerBlock * format.tensorType.bytesPerBlock)
        let matrix = try QuantizedMatrix(format: format, rows: rows, columns: columns, bytes: Data(bytes))
        // The blocks as given, through the reference reader, against every row read back from the
        // interleaved copy (whose stored pages were released) and from the stored remainder.
        var want = [Float](repeating: .nan, count: rows * columns)
        try bytes.withUnsafeBytes { raw in try want.withUnsafeMutableBufferPointer { try format.tensorType.dequantize(raw, into: $0) } }
        #expect(matrix.dequantized().scalars.map(\.bitPattern) == want.map(\.bitPattern))
        let picked = try matrix.rows([36, 0, 17, 31, 32])
        for (i, row) in [36, 0, 17, 31, 32].enumerated() {
            #expect(Array(picked.scalars[(i * columns)..<((i + 1) * columns)]) == Array(want[(row * columns)..<((row + 1) * columns)]), "row \(row)")
        }
    }

    @Test("A matrix read in place from a GGUF file dequantizes, bit for bit, to what gguf's Python reader wrote")
    func ggufFixture() throws {
        let file = try GGUF(contentsOf: Fixtures.root.appendingPathComponent("gguf/types.gguf"))
        for (name, format) in [("q8_0", QuantizedMatrix.Format.q8_0), ("q4_0", .q4_0), ("q5_1", .q5_1), ("q3_k", .q6_k), ("iq4_nl", .q8_0)] {
            let matrix = try QuantizedMatrix(gguf: file, name: name)
            #expect(matrix.format == format, "\(name)")
            guard case .float32(let want) = try NPY.read(contentsOf: Fixtures.root.appendingPathComponent("gguf/\(name).npy")) else {
                Issue.record("\(name).npy is not float32"); continue
            }
            let got = matrix.dequantized()
            #expect(got.shape == want.shape && got.shape == [matrix.rows, matrix.columns])
            #expect(zip(got.scalars, want.scalars).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(name)")
            // An embedding lookup returns the same rows.
            let picked = try matrix.rows([matrix.rows - 1, 0, matrix.rows - 1])
            let c = matrix.columns
            #expect(Array(picked.scalars[0..<c]) == Array(want.scalars[((matrix.rows - 1) * c)...]))
            #expect(Array(picked.scalars[c..<(2 * c)]) == Array(want.scalars[0..<c]))
            #expect(thrownError { try matrix.rows([matrix.rows]) } == .invalidArgument("indices"))
        }
        #expect(QuantizedMatrix.Format(.Q4_1) == .q4_1 && QuantizedMatrix.Format(.Q5_0) == .q5_0 && QuantizedMatrix.Format(.Q5_1) == .q5_1 && QuantizedMatrix.Format(.Q8_1) == nil)
        #expect(QuantizedMatrix.Format(.Q3_K) == nil && QuantizedMatrix.Format(keeping: .Q3_K) == .q6_k)
        #expect(QuantizedMatrix.Format(keeping: .Q4_1) == .q4_1 && QuantizedMatrix.Format(keeping: .Q2_K) == nil && QuantizedMatrix.Format(keeping: .F16) == nil)
        #expect(thrownError { try QuantizedMatrix(gguf: file, name: "q4_1") } == .invalidFile("types.gguf"))   // 3-D
        #expect(thrownError { try QuantizedMatrix(gguf: file, name: "f16") } == .invalidFile("types.gguf"))    // not a block format
        #expect(thrownError { try QuantizedMatrix(gguf: file, name: "missing") } == .invalidFile("types.gguf"))
    }

    /// A GGUF type kept in another format, with where its blocks hold their half-precision scale
    /// and its two extreme blocks (every value the least, then the greatest, the type can hold).
    struct KeptType: Sendable, CustomTestStringConvertible {
        let type: GGUF.TensorType, format: QuantizedMatrix.Format, columns: Int, scaleAt: Int
        /// Each extreme's bytes before the scale is written over them, and the integer its every value is `d` times.
        let least: (bytes: UInt8, times: Float), greatest: (bytes: UInt8, times: Float)
        var testDescription: String { "\(type.name) as \(format.rawValue)" }
    }

    static let keptTypes = [
        // Q3_K: high bits, low bits and scales all clear: (d·(0 − 32))·(0 − 4); all set: (d·31)·3.
        KeptType(type: .Q3_K, format: .q6_k, columns: 512, scaleAt: 108, least: (0, 128), greatest: (0xFF, 93)),
        // IQ4_NL: every nibble 0 names −127, every nibble 15 names 113.
        KeptType(type: .IQ4_NL, format: .q8_0, columns: 96, scaleAt: 0, least: (0, -127), greatest: (0xFF, 113)),
    ]

    @Test("Q3_K and IQ4_NL blocks are kept as Q6_K and Q8_0 blocks of exactly the same values: every row bit for bit, the extremes of every field, int8 and Float products on every instruction set, and bad sizes refused",
          arguments: keptTypes)
    func keptAsAnotherFormat(_ kept: KeptType) throws {
        var g = SplitMix64(seed: 0x036B)
        // 37 rows: two groups of sixteen interleaved or repacked for the products, five as stored.
        let (rows, columns, size) = (37, kept.columns, kept.type.bytesPerBlock)
        let count = rows * columns / kept.type.blockSize
        var bytes = [UInt8]()
        for b in 0..<count {
            let fill: UInt8? = b == 0 ? kept.least.bytes : b == 1 ? kept.greatest.bytes : nil
            var block = (0..<size).map { _ in fill ?? UInt8(truncatingIfNeeded: g.next()) }
            let d = Float16(Float(1e-3 + 0.1 * g.nextUnit()) * (g.next() & 1 == 0 ? 1 : -1)).bitPattern
            (block[kept.scaleAt], block[kept.scaleAt + 1]) = (UInt8(d & 0xFF), UInt8(d >> 8))
            bytes += block
        }
        let matrix = try QuantizedMatrix(type: kept.type, rows: rows, columns: columns, bytes: Data(bytes))
        #expect(matrix.format == kept.format && QuantizedMatrix.Format(keeping: kept.type) == kept.format)
        #expect(matrix.rows == rows && matrix.columns == columns)
        #expect(matrix.byteCount == count * kept.type.blockSize / kept.format.valuesPerBlock * kept.format.bytesPerBlock)
        var want = [Float](repeating: .nan, count: rows * columns)
        try bytes.withUnsafeBytes { raw in try want.withUnsafeMutableBufferPointer { try kept.type.dequantize(raw, into: $0) } }
        func scale(_ block: Int) -> Float {
            Float(Float16(bitPattern: UInt16(bytes[block * size + kept.scaleAt]) | UInt16(bytes[block * size + kept.scaleAt + 1]) << 8))
        }
        let values = kept.type.blockSize
        #expect(want[0..<values].allSatisfy { $0 == scale(0) * kept.least.times })
        #expect(want[values..<(2 * values)].allSatisfy { $0 == scale(1) * kept.greatest.times })
        let w = matrix.dequantized()
        #expect(w.scalars.map(\.bitPattern) == want.map(\.bitPattern))
        let picked = try matrix.rows([36, 0, 17])
        for (i, row) in [36, 0, 17].enumerated() {
            #expect(Array(picked.scalars[(i * columns)..<((i + 1) * columns)]) == Array(want[(row * columns)..<((row + 1) * columns)]), "row \(row)")
        }
        // Products of the kept matrix against the Double product of the Q3_K values (with the input
        // rounded as int8 rounds it, for int8), one row and eight.
        for inputRows in [1, 8] {
            let x = try Tensor<Float>.randomUniform(shape: [inputRows, columns], in: -2...2, using: &g)
            for (precision, input) in [(QuantizedPrecision.int8, Self.int8Rounded(x.scalars)), (.float32, x.scalars.map(Double.init))] {
                var exact = [Double](repeating: 0, count: inputRows * rows), magnitude = exact
                for r in 0..<inputRows {
                    for o in 0..<rows {
                        for j in 0..<columns {
                            let p = input[r * columns + j] * Double(want[o * columns + j])
                            exact[r * rows + o] += p
                            magnitude[r * rows + o] += abs(p)
                        }
                    }
                }
                let bound = magnitude.map { 2 * Double(columns + 8) * Double(Float.ulpOfOne) / 2 * $0 + 1e-30 }
                for isa in KernelInstructionSet.allCases where isa.isSupported {
                    let y = try matrix.multiply(x, options: AttentionOptions(implementation: .tiled(isa), threads: 2, quantizedPrecision: precision))
                    let worst = zip(zip(y.scalars, exact), bound).map { abs(Double($0.0) - $0.1) / $1 }.max() ?? 0
                    #expect(worst <= 1, "\(precision) \(isa) rows \(inputRows): error \(worst) of the bound")
                }
            }
        }
        #expect(thrownError { try QuantizedMatrix(type: kept.type, rows: 2, columns: columns, bytes: Data(count: 2 * columns / values * size - 1)) }
                == .invalidArgument("bytes"))
        #expect(thrownError { try QuantizedMatrix(type: kept.type, rows: 2, columns: values + 16, bytes: Data(count: 4 * size)) } == .invalidArgument("rows/columns"))
        #expect(thrownError { try QuantizedMatrix(type: .Q2_K, rows: 1, columns: 256, bytes: Data(count: 84)) } == .invalidArgument("type"))
        #expect(thrownError { try QuantizedMatrix(type: .Q4_1, rows: 1, columns: 32, bytes: Data(count: 19)) } == .invalidArgument("bytes"))
    }

    @Test("Bad blocks and inputs are typed errors naming the argument; a quantized Linear computes the matrix's product plus its bias")
    func errorsAndLinear() throws {
        var g = SplitMix64(seed: 7)
        #expect(thrownError { try QuantizedMatrix(format: .q4_1, rows: 2, columns: 48, bytes: Data(count: 60)) } == .invalidArgument("rows/columns"))
        #expect(thrownError { try QuantizedMatrix(format: .q4_1, rows: 0, columns: 32, bytes: Data()) } == .invalidArgument("rows/columns"))
        #expect(thrownError { try QuantizedMatrix(format: .q4_1, rows: 2, columns: 32, bytes: Data(count: 39)) } == .invalidArgument("bytes"))
        #expect(thrownError { try QuantizedMatrix(format: .q8_0, rows: Int.max, columns: 64, bytes: Data(count: 68)) } == .invalidArgument("bytes"))
        let matrix = try Self.randomMatrix(.q4_1, rows: 40, columns: 64, using: &g)
        #expect(matrix.byteCount == 40 * 2 * 20)
        #expect(thrownError { try matrix.multiply(Tensor<Float>(zeros: [3, 32])) } == .shapeMismatch("input"))
        #expect(thrownError { try matrix.multiply(Tensor<Float>(zeros: [3, 64]), options: AttentionOptions(threads: 0)) } == .invalidArgument("threads"))

        let bias = try Tensor<Float>.randomUniform(shape: [40], in: -1...1, using: &g)
        let layer = try Linear(quantizedWeight: matrix, bias: bias)
        #expect(layer.quantizedWeight != nil && layer.inputDimension == 64 && layer.outputDimension == 40)
        #expect(layer.storedWeight == matrix.dequantized())
        #expect(thrownError { try Linear(quantizedWeight: matrix, bias: Tensor<Float>(zeros: [64])) } == .shapeMismatch("bias"))
        for rows in [1, 12] {
            let x = try Tensor<Float>.randomUniform(shape: [2, rows, 64], in: -1...1, using: &g)
            let product = try matrix.multiply(x)
            let y = try layer(x)
            #expect(y.shape == [2, rows, 40])
            #expect(y.scalars == product.scalars.enumerated().map { $1 + bias.scalars[$0 % 40] }, "\(rows) rows")
            // The plain loop on the dequantized weight agrees.
            let plain = try layer(x, options: AttentionOptions(implementation: .reference))
            #expect(maxAbsDifference(plain.scalars, y.scalars) < 1e-4, "\(rows) rows, reference")
        }
    }

    @Test("Int8 products give each input row what it gets alone, bit for bit, whatever the rows beside it (passes of eight, four and one rows)",
          arguments: [QuantizedMatrix.Format.q4_0, .q4_1, .q5_0, .q8_0])
    func int8RowsDoNotDependOnTheirNeighbours(format: QuantizedMatrix.Format) throws {
        var g = SplitMix64(seed: 0x8E1)
        // 48 interleaved outputs and 5 stored ones, over 320 inputs (ten blocks).
        let matrix = try Self.randomMatrix(format, rows: 53, columns: 320, using: &g)
        let x = try Tensor<Float>.randomUniform(shape: [19, 320], in: -3...3, using: &g)
        for isa in KernelInstructionSet.allCases where isa.isSupported {
            let options = AttentionOptions(implementation: .tiled(isa), threads: 2, quantizedPrecision: .int8)
            let single = try (0..<19).map { r in
                try matrix.multiply(Tensor(shape: [1, 320], scalars: Array(x.scalars[(r * 320)..<((r + 1) * 320)])), options: options).scalars
            }
            for rows in [2, 4, 7, 8, 9, 12, 13, 15, 16, 19] {
                let y = try matrix.multiply(Tensor(shape: [rows, 320], scalars: Array(x.scalars[..<(rows * 320)])), options: options)
                for r in 0..<rows {
                    #expect(Array(y.scalars[(r * 53)..<((r + 1) * 53)]) == single[r], "\(format) \(isa): row \(r) of \(rows)")
                }
            }
        }
    }

    @Test("Several matrices in one product give each matrix's own product bit for bit, whatever the rows, formats and threads; mismatched columns are refused")
    func severalMatricesAtOnce() throws {
        var g = SplitMix64(seed: 11)
        let matrices = try Self.mixedProjections(using: &g)
        for rows in [1, 3, 8, 9] {
            let x = try Tensor<Float>.randomUniform(shape: [rows, 256], in: -2...2, using: &g)
            for isa in KernelInstructionSet.allCases where isa.isSupported {
                for (threads, precision) in [(1, QuantizedPrecision.int8), (2, .int8), (3, .int8), (2, .float32), (3, .float32)] {
                    let options = AttentionOptions(implementation: .tiled(isa), threads: threads, quantizedPrecision: precision)
                    let together = try QuantizedMatrix.multiply(x, by: matrices, options: options)
                    #expect(together.count == matrices.count)
                    for (matrix, y) in zip(matrices, together) {
                        let alone = try matrix.multiply(x, options: options)
                        #expect(y.shape == [rows, matrix.rows] && y.scalars == alone.scalars, "\(rows) rows \(isa) \(threads) threads \(precision)")
                    }
                }
            }
        }
        let narrow = try Self.randomMatrix(.q4_1, rows: 8, columns: 64, using: &g)
        #expect(thrownError { try QuantizedMatrix.multiply(Tensor<Float>(zeros: [1, 256]), by: [matrices[0], narrow]) } == .invalidArgument("matrices"))
        #expect(thrownError { try QuantizedMatrix.multiply(Tensor<Float>(zeros: [1, 256]), by: []) } == .invalidArgument("matrices"))
        #expect(thrownError { try QuantizedMatrix.multiply(Tensor<Float>(zeros: [1, 128]), by: matrices) } == .shapeMismatch("input"))
    }

    @Test("Reading a product's weights ahead (a pool thread reading them while the caller works) changes no product, runs on no second thread when one thread is asked for, and a matrix released while its weights are being read waits for the reader")
    func readAhead() throws {
        var g = SplitMix64(seed: 12)
        let matrices = try Self.mixedProjections(using: &g)
        let x = try Tensor<Float>.randomUniform(shape: [1, 256], in: -2...2, using: &g)
        let two = AttentionOptions(threads: 2)
        let expected = try QuantizedMatrix.multiply(x, by: matrices, options: two).map(\.scalars)
        for _ in 0..<50 {
            QuantizedMatrix.readAhead(matrices, options: two)
            #expect(try QuantizedMatrix.multiply(x, by: matrices, options: two).map(\.scalars) == expected)
        }
        #expect(!QuantizedMatrix.readAhead(matrices, options: AttentionOptions(threads: 1)))
        #expect(!QuantizedMatrix.readAhead([matrices[4]], options: two))   // nine rows: no copy
        #expect(!QuantizedMatrix.readAhead([], options: two))

        // A matrix released while the reader is still to reach it. The reader takes a product's two
        // halves in turn, so with a large matrix first and the released one last, it reaches the
        // released one's rows only after some 150 MB of the other's. The released copy (49 MB) is
        // larger than glibc's largest threshold for memory of its own (32 MiB), so freeing it
        // unmaps its pages: the release must stop the reader, which would otherwise fault on them.
        // (Nothing large is allocated meanwhile, which could map the same addresses again.)
        func zeros(rows: Int) throws -> QuantizedMatrix {
            try QuantizedMatrix(format: .q8_0, rows: rows, columns: 5632, bytes: Data(count: rows * 5632 / 32 * 34))
        }
        let kept = try zeros(rows: 32768)
        var taken = 0
        for _ in 0..<2 {
            var released: QuantizedMatrix? = try zeros(rows: 8192)
            // Tests beside this one use the pool too: a few tries until its thread is free.
            for _ in 0..<2000 {
                _ = try matrices[0].multiply(x, options: two)   // the pool's thread is awake after it
                if QuantizedMatrix.readAhead([kept, released!], options: two) { taken += 1; break }
            }
            released = nil
            let start = DispatchTime.now().uptimeNanoseconds
            while DispatchTime.now().uptimeNanoseconds - start < 30_000_000 {}   // a reader left running faults now
            _ = released
        }
        if ProcessInfo.processInfo.activeProcessorCount > 1 { #expect(taken > 0, "no read-ahead was taken: the test checked nothing") }
    }
}
