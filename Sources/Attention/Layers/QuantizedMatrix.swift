import Foundation
import _AttentionKernels
import _WorkerPool

/// A matrix kept in one of ggml's block formats, as a GGUF file stores it: `[rows, columns]`
/// row-major, each row `columns / ` ``Format/valuesPerBlock`` blocks (32 values, or 256 for the
/// k-quants). The products read the blocks directly (see ``multiply(_:argument:options:)``), so a
/// 4-bit model stays 4-bit in memory and each decoding step reads a sixth of the bytes its Float
/// weights would take.
///
/// When it is made, a matrix of a 32-value format copies its rows interleaved by sixteen (the last
/// `rows mod 16` stay as stored): single-row products (a decoding step) run about 1.5 times faster from that layout,
/// because sixteen rows' integers load as one vector and their sums need no reduction, and products
/// of more rows dequantize sixteen rows per vector. Every product and row lookup reads the copy, and
/// the stored pages it replaces are handed back to the system, so a model from a mapped GGUF file
/// stays about the file's size in memory. A k-quant matrix likewise keeps its rows repacked by
/// sixteen for its integer products (148, 180 and 210 bytes per row and super-block for Q4_K, Q5_K
/// and Q6_K, against the file's 144, 176 and 210); its Float products read the stored blocks.
///
/// The values are those ``GGUF/TensorType/dequantize(_:into:)`` gives (``dequantized()``), bit for
/// bit: the kernels compute each block's values the same way, in registers.
public struct QuantizedMatrix: Sendable {
    /// The block formats the kernels read.
    public enum Format: String, Sendable, CaseIterable {
        /// `x = d·q`: a half-precision scale and 32 signed bytes (34 bytes, 8.5 bits per value).
        case q8_0 = "Q8_0"
        /// `x = d·(q − 8)`: a scale and 32 nibbles (18 bytes, 4.5 bits per value).
        case q4_0 = "Q4_0"
        /// `x = d·q + m`: a scale, a minimum and 32 nibbles (20 bytes, 5 bits per value).
        case q4_1 = "Q4_1"
        /// `x = d·(q − 16)`: a scale, 32 fifth bits and 32 nibbles (22 bytes, 5.5 bits per value).
        case q5_0 = "Q5_0"
        /// `x = d·q + m`: a scale, a minimum, 32 fifth bits and 32 nibbles (24 bytes, 6 bits per value).
        case q5_1 = "Q5_1"
        /// Super-blocks of 256: `x = (d·s)·q − dmin·m` per 32 values, 6-bit `s` and `m`, 4-bit `q`
        /// (144 bytes, 4.5 bits per value).
        case q4_k = "Q4_K"
        /// As Q4_K with a fifth bit per value (176 bytes, 5.5 bits per value).
        case q5_k = "Q5_K"
        /// Super-blocks of 256: `x = (d·s)·(q − 32)` per 16 values, 8-bit `s`, 6-bit `q` (210 bytes,
        /// 6.5625 bits per value).
        case q6_k = "Q6_K"

        /// The GGUF tensor type of this format.
        public var tensorType: GGUF.TensorType {
            // The kernels number their formats as ggml numbers its types (checked for every format
            // by the tests), so this is never nil.
            GGUF.TensorType(rawValue: UInt32(kernelFormat.rawValue))!
        }

        /// The format of a GGUF tensor type, or nil for a type the kernels do not read.
        public init?(_ type: GGUF.TensorType) {
            guard let format = Self.allCases.first(where: { $0.tensorType == type }) else { return nil }
            self = format
        }

        /// Values per block: 32, or 256 for the k-quants.
        public var valuesPerBlock: Int { kernelFormat.valuesPerBlock }

        /// Bytes of one block.
        public var bytesPerBlock: Int { kernelFormat.bytesPerBlock }

        /// Where each block's half-precision scales sit: their byte offsets in the block.
        public var halfPrecisionScaleOffsets: [Int] { kernelFormat.block.halfPrecisionScaleOffsets }

        /// The kernels' format: its row of the table of block traits.
        var kernelFormat: QuantizedBlockFormat {
            switch self {
            case .q8_0: .q8_0
            case .q4_0: .q4_0
            case .q4_1: .q4_1
            case .q5_0: .q5_0
            case .q5_1: .q5_1
            case .q4_k: .q4_k
            case .q5_k: .q5_k
            case .q6_k: .q6_k
            }
        }
    }

    /// How the values are stored.
    public let format: Format
    /// Rows: a linear layer's outputs.
    public let rows: Int
    /// Values per row, a multiple of 32: a linear layer's inputs.
    public let columns: Int
    /// The blocks, row after row (a slice of a mapped file, or bytes of its own).
    private let bytes: Data
    /// The first `16·⌊rows/16⌋` rows again, interleaved by sixteen, which every product reads (see
    /// `InterleavedQuantized.swift` in the kernels); nil below sixteen rows.
    private let interleaved: InterleavedBlocks?
    /// For a k-quant with integer products, its first `16·⌊rows/16⌋` rows again, repacked for them
    /// (see `SuperBlockIntegers.swift` in the kernels), which products under
    /// ``QuantizedPrecision/int8`` read; nil otherwise.
    private var repacked: InterleavedBlocks?

    /// Whether products under ``QuantizedPrecision/int8`` round the input to 8 bits per block and run
    /// on the integer units for this matrix: by default, when its format has integer products
    /// (``Format/hasIntegerProducts``). A model turns it off for a matrix whose input does not
    /// survive the rounding (Gemma 3's value projections), which then multiplies in Float under
    /// either precision; turning it on for a format without integer products changes nothing.
    public var usesIntegerProducts: Bool {
        get { format.hasIntegerProducts && !keepsFloatProducts }
        set {
            keepsFloatProducts = !newValue
            // A k-quant's repacked copy serves the integer products alone.
            repacked = newValue ? repacked ?? Self.repack(format: format, rows: rows, columns: columns, bytes: bytes) : nil
        }
    }
    private var keepsFloatProducts = false

    /// Whether products with integer units (``usesIntegerProducts``, under ``QuantizedPrecision/int8``)
    /// round the input in two passes: to 8 bits per block of 32, then what that rounding left out,
    /// again to 8 bits per block; the integer products run on both and add. Twice the integer work
    /// (still well ahead of Float products), and the input keeps about 15 bits: for a matrix whose
    /// input has outliers that 8 bits per block do not carry (Gemma 3's down projections, after the
    /// gated GELU, and its attention outputs). Off by default; under ``QuantizedPrecision/float32``,
    /// or with integer products off, it changes nothing.
    public var refinesIntegerInput = false

    /// A matrix over stored blocks.
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` if `rows` is not positive,
    ///   `columns` is not a positive multiple of the block's values, or `bytes` does not hold exactly
    ///   that many blocks.
    public init(format: Format, rows: Int, columns: Int, bytes: Data) throws {
        _ = try Self.blockCount(of: format.tensorType, rows: rows, columns: columns, bytes: bytes)
        self.format = format
        self.rows = rows
        self.columns = columns
        self.bytes = bytes
        let groups = rows / quantizedGroupRows
        if let block = format.kernelFormat.interleavedBlock, groups > 0 {
            self.interleaved = bytes.withUnsafeBytes { raw in
                InterleavedBlocks(raw.baseAddress!, format: block, groups: groups, blocks: columns / 32, releasingSource: true)
            }
        } else {
            self.interleaved = nil
        }
        self.repacked = Self.repack(format: format, rows: rows, columns: columns, bytes: bytes)
    }

    /// How many blocks of `type` `[rows, columns]` values take, checked against `bytes`.
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` (`rows/columns`) if `rows` is
    ///   not positive or `columns` not a positive multiple of the type's block, (`bytes`) if `bytes`
    ///   does not hold exactly that many blocks.
    static func blockCount(of type: GGUF.TensorType, rows: Int, columns: Int, bytes: Data) throws -> Int {
        let values = type.blockSize, size = type.bytesPerBlock
        guard rows > 0, columns > 0, columns % values == 0 else {
            throw AttentionError.invalidArgument(
                argument: "rows/columns",
                reason: "need rows > 0 and columns a positive multiple of \(values) (the block size of \(type.name)), got [\(rows), \(columns)]")
        }
        let (count, overflow) = (columns / values).multipliedReportingOverflow(by: rows)
        let (total, overflow2) = count.multipliedReportingOverflow(by: size)
        guard !overflow, !overflow2, total == bytes.count else {
            throw AttentionError.invalidArgument(
                argument: "bytes", reason: "\(bytes.count) bytes do not hold [\(rows), \(columns)] values of \(type.name) (\(size) bytes per \(values))")
        }
        return count
    }

    /// The copy a k-quant's integer products read (nil for other formats and below sixteen rows);
    /// the stored pages it replaces are handed back to the system (a Float product reads them again).
    private static func repack(format: Format, rows: Int, columns: Int, bytes: Data) -> InterleavedBlocks? {
        guard let block = format.kernelFormat.integerSuperBlock, rows >= quantizedGroupRows else { return nil }
        return bytes.withUnsafeBytes { raw in
            InterleavedBlocks(repacking: raw.baseAddress!, format: block, groups: rows / quantizedGroupRows, superBlocks: columns / 256,
                              releasingSource: true)
        }
    }

    /// The 2-D tensor `name` of `file`, read in place (the file stays mapped while the matrix lives),
    /// or for Q3_K and IQ4_NL converted to Q6_K and Q8_0 blocks of its own (see ``Format/init(keeping:)``).
    /// - Throws: ``AttentionError/invalidFile(path:reason:)`` if there is no such tensor, it is not
    ///   2-D, or its type is not one ``Format/init(keeping:)`` keeps.
    public init(gguf file: GGUF, name: String) throws {
        guard let entry = file.info(name) else { throw AttentionError.invalidFile(path: file.path, reason: "no tensor named '\(name)'") }
        guard Format(keeping: entry.type) != nil else {
            throw AttentionError.invalidFile(path: file.path, reason: "tensor '\(name)' is \(entry.type.name); the quantized kernels read \(Self.keptTypeNames)")
        }
        guard entry.shape.count == 2 else {
            throw AttentionError.invalidFile(path: file.path, reason: "tensor '\(name)' is \(entry.shape), not a matrix")
        }
        try self.init(type: entry.type, rows: entry.shape[0], columns: entry.shape[1], bytes: file.storedData(of: name))
    }

    /// The interleaved copy as the kernels take it.
    var interleavedRows: InterleavedRows {
        InterleavedRows(base: interleaved.map { UnsafeRawPointer($0.base) }, groups: interleaved?.groups ?? 0)
    }

    /// The copy the integer products read, as the kernels take it: the interleaved rows, or a
    /// k-quant's repacked rows.
    var integerRows: InterleavedRows {
        guard let copy = interleaved ?? repacked else { return .none }
        return InterleavedRows(base: UnsafeRawPointer(copy.base), groups: copy.groups)
    }

    /// Bytes of the blocks (as stored; the interleaved copy for single-row products takes as many
    /// again for the rows it holds).
    public var byteCount: Int { bytes.count }

    /// Bytes of one row's blocks.
    var rowBytes: Int { columns / format.valuesPerBlock * format.bytesPerBlock }

    /// Every value as Float, `[rows, columns]`.
    public func dequantized() -> Tensor<Float> {
        let c = columns
        return Tensor(uncheckedShape: [rows, c], scalars: [Float](unsafeUninitializedCapacity: rows * c) { buffer, count in
            for row in 0..<rows { dequantizeRow(row, into: UnsafeMutableBufferPointer(rebasing: buffer[(row * c)..<((row + 1) * c)])) }
            count = rows * c
        })
    }

    /// Row `row` (0..<``rows``) as Float into `into[0..<columns]`: from the interleaved copy when it
    /// holds the row (the stored blocks it replaces were handed back to the system and would have to
    /// be read in again), else from the stored blocks.
    func dequantizeRow(_ row: Int, into: UnsafeMutableBufferPointer<Float>) {
        let rowBytes = rowBytes
        if let interleaved, let layout = format.kernelFormat.interleavedBlock, row < quantizedGroupRows * interleaved.groups {
            withUnsafeTemporaryAllocation(byteCount: rowBytes, alignment: 16) { block in
                copyInterleavedRow(interleavedRows, row: row, format: layout, blocks: columns / 32, into: block.baseAddress!)
                // Checked at init: a row of blocks of a convertible type.
                try? format.tensorType.dequantize(UnsafeRawBufferPointer(block), into: into)
            }
            return
        }
        bytes.withUnsafeBytes { raw in
            let start = row * rowBytes
            try? format.tensorType.dequantize(UnsafeRawBufferPointer(rebasing: raw[start..<(start + rowBytes)]), into: into)
        }
    }

    /// Rows `indices` as Float, `[indices.count, columns]`: an embedding lookup in a quantized table.
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for an index outside 0..<``rows``.
    public func rows(_ indices: [Int]) throws -> Tensor<Float> {
        if let bad = indices.first(where: { !(0..<rows).contains($0) }) {
            throw AttentionError.invalidArgument(argument: "indices", reason: "row \(bad) is outside 0..<\(rows)")
        }
        let c = columns
        return Tensor(uncheckedShape: [indices.count, c], scalars: [Float](unsafeUninitializedCapacity: indices.count * c) { buffer, count in
            for (i, row) in indices.enumerated() { dequantizeRow(row, into: UnsafeMutableBufferPointer(rebasing: buffer[(i * c)..<((i + 1) * c)])) }
            count = indices.count * c
        })
    }

    /// `x · Mᵀ` over the last dimension of `x` (which must be ``columns``): `[..., columns]` →
    /// `[..., rows]`, a linear layer whose weight is this matrix. One row of `x` (decoding) reads the
    /// interleaved copy, sixteen outputs per vector; up to eight rows dequantize each block of sixteen
    /// interleaved rows once and multiply every input row with it; more rows dequantize 32 matrix rows
    /// at a time into a panel for the tiled matrix kernel. `options` chooses the instruction set and threads
    /// as for attention; ``AttentionImplementation/reference`` dequantizes the whole matrix and runs
    /// a plain loop in Double.
    ///
    /// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` for another
    ///   last dimension; ``AttentionError/invalidArgument(argument:reason:)`` for options this CPU
    ///   cannot run.
    public func multiply(_ x: Tensor<Float>, argument: String = "input", options: AttentionOptions = AttentionOptions()) throws -> Tensor<Float> {
        let execution = try options.execution(tiledComputes: true, scalar: Float.self)
        guard let last = x.shape.last, last == columns else {
            throw AttentionError.shapeMismatch(
                argument: argument, shape: x.shape, other: "the quantized weight", otherShape: [rows, columns],
                reason: "the last dimension must be the weight's \(columns) columns")
        }
        let m = x.count / columns
        var shape = x.shape
        shape[shape.count - 1] = rows
        let integer = options.quantizedPrecision == .int8 && usesIntegerProducts
        guard let isa = execution.instructionSet else {
            let w = dequantized().scalars
            // The reference rounds the input as the integer products do, then multiplies in Double.
            let input = integer ? int8Rounded(x.scalars, passes: refinesIntegerInput ? 2 : 1) : x.scalars.map(Double.init)
            var y = [Float](repeating: 0, count: m * rows)
            for r in 0..<m {
                for o in 0..<rows {
                    var sum = 0.0
                    for j in 0..<columns { sum += input[r * columns + j] * Double(w[o * columns + j]) }
                    y[r * rows + o] = Float(sum)
                }
            }
            return Tensor(uncheckedShape: shape, scalars: y)
        }
        if integer {
            let y = Self.uninitializedOutput(m * rows) { output in
                x.withUnsafeBufferPointer { xs in
                    bytes.withUnsafeBytes { raw in
                        var (operand, output) = (IntegerOperand(matrix: self, stored: raw.baseAddress!), output)
                        withUnsafePointer(to: &operand) { operand in
                            withUnsafePointer(to: &output) { output in
                                multiplyInteger(xs.baseAddress!, rows: m, UnsafeBufferPointer(start: operand, count: 1),
                                                into: UnsafeBufferPointer(start: output, count: 1),
                                                k: columns, threads: execution.threads, isa: isa, refined: refinesIntegerInput)
                            }
                        }
                    }
                }
            }
            return Tensor(uncheckedShape: shape, scalars: y)
        }
        let y = [Float](unsafeUninitializedCapacity: m * rows) { buffer, count in
            x.withUnsafeBufferPointer { xs in
                bytes.withUnsafeBytes { raw in
                    if m == 1 && interleaved != nil {
                        multiplyInterleaved(xs.baseAddress!, [SingleRowOperand(interleaved: interleaved, stored: raw.baseAddress!, rows: rows, format: format.kernelFormat)],
                                            into: buffer.baseAddress!, k: columns, threads: execution.threads, isa: isa)
                    } else {
                        multiplyQuantized(xs.baseAddress!, rows: m, weight: raw.baseAddress!, interleaved: interleavedRows, format: format.kernelFormat,
                                          into: buffer.baseAddress!, n: rows, k: columns, threads: execution.threads, isa: isa)
                    }
                }
            }
            count = m * rows
        }
        return Tensor(uncheckedShape: shape, scalars: y)
    }
}

extension QuantizedMatrix {
    /// Asks an idle thread of the worker pool to read, while the caller works on its own, the weights
    /// that the next product with `matrices` reads (``multiply(_:by:argument:options:)``, or
    /// ``multiply(_:argument:options:)`` for one matrix): of each, the copy its products read under
    /// ``QuantizedPrecision/int8`` (sixteen rows interleaved, or a k-quant's repacked rows).
    ///
    /// For decoding: a step reads every weight from memory once, and between its products
    /// (attention, norms) one thread works while memory idles. The reader takes the first and the
    /// second half of the product's outputs in turn (on two threads, what each will take), each from
    /// its start, and stops as soon as the caller's next parallel loop starts; what it brought in,
    /// the product then finds in cache. A hint that changes no result. Returns whether a pool thread
    /// was given the request: false when `options` allow one thread, no pool thread is awake and
    /// idle, another request is being read, or no matrix has such a copy (nothing happens then).
    ///
    /// Releasing a matrix waits for a reader of its copy to stop, so the memory read is never freed
    /// under it.
    @discardableResult
    public static func readAhead(_ matrices: [QuantizedMatrix], options: AttentionOptions = AttentionOptions()) -> Bool {
        guard min(options.threads ?? availableProcessors, availableProcessors) > 1 else { return false }
        // Called before every product of a decoding step: no arrays, the ranges on the stack.
        func copy(_ matrix: QuantizedMatrix) -> InterleavedBlocks? {
            guard let copy = matrix.usesIntegerProducts ? (matrix.interleaved ?? matrix.repacked) : matrix.interleaved,
                  copy.groups > 0 else { return nil }
            return copy
        }
        var total = 0
        for matrix in matrices { total += quantizedGroupRows * (copy(matrix)?.groups ?? 0) }
        guard total > 0 else { return false }
        let limit = Int(ATTENTION_READ_AHEAD_RANGES)
        return withUnsafeTemporaryAllocation(of: UnsafeRawPointer?.self, capacity: limit) { bases in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: limit) { bytes in
                // Each half's rows as byte ranges of the copies, in whole groups.
                var count = 0, split = 0
                for half in 0..<2 {
                    if half == 1 { split = count }
                    let rows = half == 0 ? 0..<(total / 2) : (total / 2)..<total
                    var start = 0
                    for matrix in matrices {
                        guard let copy = copy(matrix) else { continue }
                        let copyRows = quantizedGroupRows * copy.groups
                        defer { start += copyRows }
                        let mine = rows.clamped(to: start..<(start + copyRows))
                        guard !mine.isEmpty else { continue }
                        guard count < limit else { return false }
                        let groupBytes = copy.byteCount / copy.groups
                        let first = (mine.lowerBound - start) / quantizedGroupRows
                        let end = (mine.upperBound - start + quantizedGroupRows - 1) / quantizedGroupRows
                        bases[count] = UnsafeRawPointer(copy.base) + first * groupBytes
                        bytes[count] = (end - first) * groupBytes
                        count += 1
                    }
                }
                return attention_pool_read_ahead(bases.baseAddress!, bytes.baseAddress!, Int32(count), Int32(split)) != 0
            }
        }
    }

    /// `x · Mᵢᵀ` for several matrices with the same ``columns`` (a layer's query, key and value
    /// projections, or its gate and up projections): the same values as ``multiply(_:argument:options:)``
    /// on each, bit for bit. For up to eight rows of `x` (decoding) the outputs of all the matrices are
    /// shared among the threads in one loop, so the threads meet once instead of once per matrix.
    ///
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for no matrices or matrices whose
    ///   columns differ; otherwise as ``multiply(_:argument:options:)``.
    public static func multiply(_ x: Tensor<Float>, by matrices: [QuantizedMatrix], argument: String = "input",
                                options: AttentionOptions = AttentionOptions()) throws -> [Tensor<Float>] {
        guard let first = matrices.first else {
            throw AttentionError.invalidArgument(argument: "matrices", reason: "need at least one matrix")
        }
        if let other = matrices.first(where: { $0.columns != first.columns }) {
            throw AttentionError.invalidArgument(
                argument: "matrices", reason: "all need the same columns, got \(first.columns) and \(other.columns)")
        }
        let execution = try options.execution(tiledComputes: true, scalar: Float.self)
        let m = x.count / max(1, first.columns)
        let total = matrices.reduce(0) { $0 + $1.rows }, k = first.columns
        // How each matrix's products run under int8: Float, integer, integer on a refined input.
        // (Decided without building arrays: a decoding step makes this call twice per layer.)
        func kind(_ matrix: QuantizedMatrix) -> Int { !matrix.usesIntegerProducts ? 0 : matrix.refinesIntegerInput ? 2 : 1 }
        if options.quantizedPrecision == .int8, matrices.contains(where: { kind($0) != kind(first) }) {
            let kinds = matrices.map(kind)
            // The matrices of each kind together, each kind in its own way.
            let order = kinds.indices.sorted { (kinds[$0], $0) < (kinds[$1], $1) }
            var products: [Tensor<Float>] = []
            for kind in Set(kinds).sorted() {
                products += try multiply(x, by: order.filter { kinds[$0] == kind }.map { matrices[$0] }, argument: argument, options: options)
            }
            return matrices.indices.map { products[order.firstIndex(of: $0)!] }
        }
        if matrices.count > 1, let isa = execution.instructionSet, x.shape.last == k, options.quantizedPrecision == .int8,
           kind(first) != 0 {
            // The input quantized once for all the matrices, their outputs shared among the threads in
            // one loop and written straight into each matrix's own array.
            let outputs = try withBlockPointers(matrices) { weights in
                Self.makeArrays(matrices.count, size: { m * matrices[$0].rows }) { outputs in
                    x.withUnsafeBufferPointer { xs in
                        withUnsafeTemporaryAllocation(of: IntegerOperand.self, capacity: matrices.count) { operands in
                            for i in matrices.indices { operands[i] = IntegerOperand(matrix: matrices[i], stored: weights[i]) }
                            multiplyInteger(xs.baseAddress!, rows: m, UnsafeBufferPointer(operands), into: outputs, k: k,
                                            threads: execution.threads, isa: isa, refined: first.refinesIntegerInput)
                        }
                    }
                }
            }
            return matrices.indices.map { Tensor(uncheckedShape: Self.shape(of: x, times: matrices[$0]), scalars: outputs[$0]) }
        }
        guard matrices.count > 1, let isa = execution.instructionSet, x.shape.last == k, m <= quantizedFewRows,
              execution.threads > 1, m * total * k >= quantizedParallelWork else {
            return try matrices.map { try $0.multiply(x, argument: argument, options: options) }
        }
        let starts = matrices.reduce(into: [0]) { $0.append($0.last! + $1.rows) }
        // One array: matrix i's [m, rows] outputs from m·starts[i].
        var all = [Float](repeating: 0, count: m * total)
        try withBlockPointers(matrices) { weights in
            x.withUnsafeBufferPointer { xs in
                all.withUnsafeMutableBufferPointer { ys in
                    guard let x = xs.baseAddress, let y = ys.baseAddress else { return }
                    if m == 1 {
                        let operands = matrices.indices.map {
                            SingleRowOperand(interleaved: matrices[$0].interleaved, stored: weights[$0], rows: matrices[$0].rows,
                                             format: matrices[$0].format.kernelFormat)
                        }
                        multiplyInterleaved(x, operands, into: y, k: k, threads: execution.threads, isa: isa)
                    } else {
                        multiplyFewRows(x, rows: m, matrices, weights: weights, outputStarts: starts, into: y, k: k,
                                        threads: execution.threads, isa: isa)
                    }
                }
            }
        }
        return matrices.indices.map { i in
            Tensor(uncheckedShape: Self.shape(of: x, times: matrices[i]), scalars: Array(all[(m * starts[i])..<(m * starts[i + 1])]))
        }
    }

    /// `y = x · Mᵢᵀ` for a few rows `x [m, k]` (2 ... ``quantizedFewRows``) and the matrices, matrix
    /// `i`'s `[m, rows]` outputs at `y + m·outputStarts[i]`: all the matrices' outputs in one
    /// numbering, shared among the threads in contiguous ranges, each range's piece of each matrix by
    /// the few-rows kernel.
    private static func multiplyFewRows(
        _ x: UnsafePointer<Float>, rows m: Int, _ matrices: [QuantizedMatrix], weights: UnsafeBufferPointer<UnsafeRawPointer>, outputStarts starts: [Int],
        into y: UnsafeMutablePointer<Float>, k: Int, threads: Int, isa: KernelInstructionSet
    ) {
        let total = starts[matrices.count], shares = min(threads, total), kernels = isa.kernels
        let shared = UncheckedSendable((x, y, weights))
        parallelFor(shares, threads: shares) { share, _ in
            let (x, y, weights) = shared.value
            let range = (share * total / shares)..<((share + 1) * total / shares)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: quantizedRowsScratch(k: k, rows: m)) { scratch in
                for (i, matrix) in matrices.enumerated() {
                    let piece = range.clamped(to: starts[i]..<starts[i + 1])
                    guard !piece.isEmpty else { continue }
                    let local = (piece.lowerBound - starts[i])..<(piece.upperBound - starts[i])
                    kernels.quantized(matrix.format.kernelFormat).multiplyRows(
                        x, m, weights[i], matrix.interleavedRows, y + m * starts[i], local, matrix.rows, k, scratch.baseAddress!)
                }
            }
        }
    }

    /// The shape of `x · matrixᵀ`: `x`'s with the last extent the matrix's rows.
    private static func shape(of x: Tensor<Float>, times matrix: QuantizedMatrix) -> [Int] {
        var shape = x.shape
        shape[shape.count - 1] = matrix.rows
        return shape
    }

    /// `count` floats left uninitialized for `fill`, which is given their base address and must write
    /// them all. One element at least is allocated, so that the buffer has an address (an empty
    /// product writes nothing); an empty array is returned for 0.
    static func uninitializedOutput(_ count: Int, _ fill: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        var array = [Float](unsafeUninitializedCapacity: max(1, count)) { buffer, initialized in
            fill(buffer.baseAddress!)
            initialized = max(1, count)
        }
        if count == 0 { array.removeAll() }
        return array
    }

    /// `count` arrays, array `i` of `size(i)` elements, left uninitialized for `fill`, which is given
    /// all their base addresses at once and must write every element. Nothing is allocated but the
    /// arrays themselves and the list of them.
    static func makeArrays(_ count: Int, size: (Int) -> Int, _ fill: (UnsafeBufferPointer<UnsafeMutablePointer<Float>>) -> Void) -> [[Float]] {
        var arrays = [[Float]](repeating: [], count: count)
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: count) { pointers in
            // Array i is made inside array i − 1's initializer, so that every buffer is live for `fill`.
            func make(_ i: Int) {
                guard i < count else { return fill(UnsafeBufferPointer(pointers)) }
                let array = uninitializedOutput(size(i)) { output in
                    pointers[i] = output
                    make(i + 1)
                }
                arrays[i] = array
            }
            make(0)
        }
        return arrays
    }

    /// Runs `body` with the base address of every matrix's blocks, `matrices[i]`'s at `body`'s `[i]`.
    private static func withBlockPointers<R>(
        _ matrices: [QuantizedMatrix], _ body: (UnsafeBufferPointer<UnsafeRawPointer>) throws -> R
    ) throws -> R {
        try withUnsafeTemporaryAllocation(of: UnsafeRawPointer.self, capacity: matrices.count) { pointers in
            // Each matrix's bytes stay borrowed while the next ones' are, and `body` runs innermost.
            func borrow(_ i: Int) throws -> R {
                guard i < matrices.count else { return try body(UnsafeBufferPointer(pointers)) }
                return try matrices[i].bytes.withUnsafeBytes { raw in
                    pointers[i] = raw.baseAddress!
                    return try borrow(i + 1)
                }
            }
            return try borrow(0)
        }
    }
}

/// Asks the system to drop the whole pages of `[start, start + byteCount)` from this process's
/// resident memory: the rows the interleaved copy holds are not read again from the stored blocks
/// (products and row lookups read the copy), so a mapped file's pages need not stay resident beside
/// it. `MADV_PAGEOUT` (Linux 5.4+) only reclaims: contents are kept (a file's pages are read back
/// if touched, anonymous memory goes to swap or stays), so it is safe on any memory; elsewhere, and
/// on older kernels, nothing happens.
func releasePages(_ start: UnsafeRawPointer, byteCount: Int) {
    #if os(Linux)
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    guard page > 0 else { return }
    let first = (Int(bitPattern: start) + page - 1) / page * page, end = (Int(bitPattern: start) + byteCount) / page * page
    guard end > first, let address = UnsafeMutableRawPointer(bitPattern: first) else { return }
    _ = madvise(address, end - first, 21)   // MADV_PAGEOUT
    #endif
}

/// A matrix's first `16·groups` rows interleaved by sixteen (see `InterleavedQuantized.swift` in the
/// kernels), in memory of their own, 64-byte aligned.
final class InterleavedBlocks: @unchecked Sendable {
    // Written once, in init; only read after.
    let base: UnsafeMutableRawPointer
    let groups: Int
    /// The copy's size.
    let byteCount: Int

    /// The copy of `source`'s first `16·groups` rows; with `releasingSource`, the source's pages are
    /// handed back to the system (``releasePages(_:byteCount:)``) as each slice of 8 MiB is copied,
    /// so that a large matrix (Gemma 3's 178 MB embedding) is not resident twice while it is copied.
    init(_ source: UnsafeRawPointer, format: any InterleavedQuantizedBlock.Type, groups: Int, blocks: Int, releasingSource: Bool = false) {
        let groupBytes = blocks * interleavedBlockBytes(format.format)
        base = .allocate(byteCount: groups * groupBytes, alignment: 64)
        (self.groups, byteCount) = (groups, groups * groupBytes)
        let slice = max(1, (8 << 20) / max(1, groupBytes))
        for first in stride(from: 0, to: groups, by: slice) {
            let count = min(slice, groups - first)
            interleaveQuantized(source + first * groupBytes, format: format, groups: count, blocks: blocks, into: base + first * groupBytes)
            if releasingSource { releasePages(source + first * groupBytes, byteCount: count * groupBytes) }
        }
        // The pages that straddle two slices.
        if releasingSource { releasePages(source, byteCount: groups * groupBytes) }
    }

    /// The first `16·groups` rows of `source`, `[rows, 256·superBlocks]` super-blocks of `format`,
    /// repacked for the integer products (``repackSuperBlocks(_:format:groups:superBlocks:into:)``),
    /// releasing the source's pages as the other initializer does.
    init(repacking source: UnsafeRawPointer, format: any IntegerSuperBlock.Type, groups: Int, superBlocks: Int, releasingSource: Bool) {
        let groupBytes = superBlocks * format.integerGroupBlockBytes, sourceGroupBytes = quantizedGroupRows * superBlocks * format.bytes
        base = .allocate(byteCount: groups * groupBytes, alignment: 64)
        (self.groups, byteCount) = (groups, groups * groupBytes)
        let slice = max(1, (8 << 20) / max(1, groupBytes))
        for first in stride(from: 0, to: groups, by: slice) {
            let count = min(slice, groups - first)
            repackSuperBlocks(source + first * sourceGroupBytes, format: format, groups: count, superBlocks: superBlocks,
                              into: base + first * groupBytes)
            if releasingSource { releasePages(source + first * sourceGroupBytes, byteCount: count * sourceGroupBytes) }
        }
        if releasingSource { releasePages(source, byteCount: groups * sourceGroupBytes) }
    }

    /// `groups` groups of `blocks` blocks written by `fill` (given the uninitialized memory) in the
    /// interleaved layout: for a matrix made in memory, without the file's layout in between.
    init(format: QuantizedBlockFormat, groups: Int, blocks: Int, fill: (UnsafeMutableRawPointer) -> Void) {
        byteCount = groups * blocks * interleavedBlockBytes(format)
        base = .allocate(byteCount: byteCount, alignment: 64)
        self.groups = groups
        fill(base)
    }

    deinit {
        // A pool thread may be reading these bytes ahead of a product (QuantizedMatrix.readAhead).
        attention_pool_cancel_read_ahead()
        base.deallocate()
    }
}

/// One matrix of a single-row product: its interleaved rows (nil below sixteen rows), its blocks
/// as stored, its rows and its format.
struct SingleRowOperand {
    let interleaved: InterleavedBlocks?
    let stored: UnsafeRawPointer
    let rows: Int
    let format: QuantizedBlockFormat
}

/// `y = x · Wᵢᵀ` for one row `x [k]` and several matrices, their outputs one after another in `y`:
/// the interleaved groups of all of them shared among the threads in one loop, then the rows not
/// interleaved (each matrix's last `rows mod 16`, or all rows of a format that is not interleaved)
/// by the file-layout kernel, each matrix's shared among the threads. Each output is computed the
/// same way whatever the matrices beside it and the threads.
func multiplyInterleaved(
    _ x: UnsafePointer<Float>, _ matrices: [SingleRowOperand], into y: UnsafeMutablePointer<Float>, k: Int, threads: Int, isa: KernelInstructionSet
) {
    let kernels = isa.kernels, blocks = k / 32
    let total = matrices.reduce(0) { $0 + $1.rows }
    // Group starts of each matrix in the shared numbering, and output starts in y.
    var groupStarts = [0], outputStarts = [0]
    for matrix in matrices {
        groupStarts.append(groupStarts.last! + (matrix.interleaved?.groups ?? 0))
        outputStarts.append(outputStarts.last! + matrix.rows)
    }
    let groups = groupStarts.last!
    // The input in each order the formats want (at `k · order.rawValue`), and Σx per block.
    let orders = InterleavedInputOrder.allCases.count
    withUnsafeTemporaryAllocation(of: Float.self, capacity: orders * k + blocks) { input in
        let prepared = input.baseAddress!, sums = prepared + orders * k
        for order in Set(matrices.compactMap { $0.interleaved == nil ? nil : $0.format.interleavedBlock?.interleavedInputOrder }) {
            prepareInterleavedInput(x, k: k, order: order, into: prepared + k * order.rawValue, sums: sums)
        }
        let shares = max(1, min(total * k < quantizedParallelWork ? 1 : threads, total))
        let shared = UncheckedSendable((UnsafePointer(prepared), UnsafePointer(sums), y))
        parallelFor(shares, threads: shares) { share, _ in
            let (prepared, sums, y) = shared.value
            let range = (share * groups / shares)..<((share + 1) * groups / shares)
            for (i, matrix) in matrices.enumerated() {
                let out = y + outputStarts[i]
                let piece = range.clamped(to: groupStarts[i]..<groupStarts[i + 1])
                if let interleaved = matrix.interleaved, let layout = matrix.format.interleavedBlock,
                   let multiplyRow = kernels.quantized(matrix.format).multiplyInterleavedRow, !piece.isEmpty {
                    let local = (piece.lowerBound - groupStarts[i])..<(piece.upperBound - groupStarts[i])
                    multiplyRow(prepared + k * layout.interleavedInputOrder.rawValue, sums, interleaved.base, out, local, blocks)
                }
            }
            for (i, matrix) in matrices.enumerated() {
                let interleavedRows = quantizedGroupRows * (matrix.interleaved?.groups ?? 0), rest = matrix.rows - interleavedRows
                let outputs = (interleavedRows + share * rest / shares)..<(interleavedRows + (share + 1) * rest / shares)
                guard !outputs.isEmpty else { continue }
                withUnsafeTemporaryAllocation(of: Float.self, capacity: quantizedRowsScratch(k: k, rows: 1)) { scratch in
                    kernels.quantized(matrix.format).multiplyRows(x, 1, matrix.stored, .none, y + outputStarts[i], outputs,
                                                                  matrix.rows, k, scratch.baseAddress!)
                }
            }
        }
    }
}

extension QuantizedMatrix.Format {
    /// Whether products with this format run on the integer units under ``QuantizedPrecision/int8``:
    /// every format the kernels read has them.
    public var hasIntegerProducts: Bool { kernelFormat.hasIntegerProducts }
}

/// `x` rounded per block of 32 as ``QuantizedPrecision/int8`` rounds an input, written plainly: the
/// scale `d = max|x| / 127`, each value `round(x / d)·d` (halves away from zero), in Double; a block
/// with a NaN or an infinity all NaN. With two `passes` (``QuantizedMatrix/refinesIntegerInput``)
/// the remainder `x − round(x / d)·d`, computed in Float, is rounded the same way and added. The
/// reference for the integer products.
func int8Rounded(_ x: [Float], passes: Int = 1) -> [Double] {
    var out = [Double](repeating: 0, count: x.count), rest = x
    for _ in 0..<passes {
        for start in stride(from: 0, to: x.count, by: 32) {
            let block = rest[start..<min(x.count, start + 32)]
            guard block.allSatisfy(\.isFinite) else {
                for j in block.indices { (out[j], rest[j]) = (.nan, .nan) }
                continue
            }
            let d = block.map(\.magnitude).max()! / 127
            let inverse: Float = d != 0 ? 1 / d : 0
            for j in block.indices {
                let q = (rest[j] * inverse).rounded(.toNearestOrAwayFromZero)
                out[j] += Double(q) * Double(d)
                rest[j] -= q * d
            }
        }
    }
    return out
}

/// One matrix of an integer product: its interleaved rows, its blocks as stored, its rows and format.
struct IntegerOperand {
    let interleaved: InterleavedRows
    let stored: UnsafeRawPointer
    let rows: Int
    let format: QuantizedBlockFormat

    init(matrix: QuantizedMatrix, stored: UnsafeRawPointer) {
        (interleaved, self.stored, rows, format) = (matrix.integerRows, stored, matrix.rows, matrix.format.kernelFormat)
    }
}

/// `yᵢ = x · Wᵢᵀ` for `x [m, k]` and matrices of formats with integer products, matrix `i`'s `[m, rows]`
/// outputs at `outputs[i]`, under
/// ``QuantizedPrecision/int8``: `x` quantized once, then the outputs of all the matrices, in one
/// numbering, shared among the threads in contiguous ranges. A range takes the interleaved groups
/// whose first output it holds and the stored rows it holds, so each output is computed the same
/// way whatever the threads and the matrices beside it.
///
/// With `refined` (``QuantizedMatrix/refinesIntegerInput``) what the rounding left out, `x −
/// round(x / dx)·dx` in Float, is rounded the same way as `m` more rows of the input, multiplied
/// in the same loop (four rows at a time share each block's loads), and added.
func multiplyInteger(
    _ x: UnsafePointer<Float>, rows m: Int, _ matrices: UnsafeBufferPointer<IntegerOperand>, into outputs: UnsafeBufferPointer<UnsafeMutablePointer<Float>>,
    k: Int, threads: Int, isa: KernelInstructionSet, refined: Bool = false
) {
    guard m > 0 else { return }
    let blocks = k / 32, rows = refined ? 2 * m : m
    // One allocation: the scales, the sums (and first-half sums), then the integers.
    let memory = UnsafeMutableRawPointer.allocate(byteCount: 3 * 4 * rows * blocks + rows * k, alignment: 64)
    defer { memory.deallocate() }
    let scales = memory.bindMemory(to: Float.self, capacity: rows * blocks)
    let sums = (memory + 4 * rows * blocks).bindMemory(to: Int32.self, capacity: 2 * rows * blocks)
    let values = (memory + 3 * 4 * rows * blocks).bindMemory(to: Int8.self, capacity: rows * k)
    let input = QuantizedInput(values: values, scales: scales, sums: sums, firstHalfSums: sums + rows * blocks, k: k)
    // Rows 0 ..< m the input; with `refined`, rows m ..< 2m what its rounding left out. Shared
    // among the threads by rows (a prompt's input is megabytes).
    let rest = refined ? UnsafeMutablePointer<Float>.allocate(capacity: m * k) : nil
    defer { rest?.deallocate() }
    let quantize = isa.kernels.quantizeInput
    let shares = max(1, min(m * k < quantizedParallelWork ? 1 : threads, m))
    let buffers = UncheckedSendable((values, scales, sums, rest))
    parallelFor(shares, threads: shares) { share, _ in
        let (values, scales, sums, rest) = buffers.value
        let first = share * m / shares, count = (share + 1) * m / shares - first
        let (b0, half) = (first * blocks, rows * blocks)
        quantize(x + first * k, count, k, values + first * k, scales + b0, sums + b0, sums + half + b0)
        guard let rest else { return }
        for b in b0..<(b0 + count * blocks) {
            let d = scales[b]
            for e in (32 * b)..<(32 * b + 32) { rest[e] = x[e] - Float(values[e]) * d }
        }
        let r0 = (m + first) * blocks
        quantize(rest + first * k, count, k, values + (m + first) * k, scales + r0, sums + r0, sums + half + r0)
    }
    guard refined else {
        multiplyQuantizedInput(input, rows: m, matrices, into: outputs, threads: threads, isa: isa)
        return
    }
    let products = matrices.map { UnsafeMutablePointer<Float>.allocate(capacity: rows * $0.rows) }
    defer { products.forEach { $0.deallocate() } }
    products.withUnsafeBufferPointer { products in
        multiplyQuantizedInput(input, rows: rows, matrices, into: products, threads: threads, isa: isa)
    }
    for (i, matrix) in matrices.enumerated() {
        let n = m * matrix.rows
        for j in 0..<n { outputs[i][j] = products[i][j] + products[i][n + j] }
    }
}

/// The integer products of ``multiplyInteger(_:rows:_:into:k:threads:isa:refined:)`` with an input
/// already quantized, `rows` rows.
private func multiplyQuantizedInput(
    _ input: QuantizedInput, rows m: Int, _ matrices: UnsafeBufferPointer<IntegerOperand>, into outputs: UnsafeBufferPointer<UnsafeMutablePointer<Float>>,
    threads: Int, isa: KernelInstructionSet
) {
    let kernels = isa.kernels, k = input.k
    let total = matrices.reduce(0) { $0 + $1.rows }
    let shares = max(1, min(m * total * k < quantizedParallelWork ? 1 : threads, total / quantizedGroupRows))
    let shared = UncheckedSendable((matrices, outputs))
    parallelFor(shares, threads: shares) { share, _ in
        let (matrices, outputs) = shared.value
        let range = (share * total / shares)..<((share + 1) * total / shares)
        var start = 0   // matrix i's first output in the shared numbering
        for (i, matrix) in matrices.enumerated() {
            defer { start += matrix.rows }
            let local = (range.lowerBound - start)..<(range.upperBound - start)
            let piece = local.clamped(to: 0..<matrix.rows)
            guard !piece.isEmpty, let multiply = kernels.quantized(matrix.format).multiplyInteger else { continue }
            let lanes = quantizedGroupRows, groups = matrix.interleaved.groups
            let firstGroup = min(groups, (piece.lowerBound + lanes - 1) / lanes), endGroup = min(groups, (piece.upperBound + lanes - 1) / lanes)
            let stored = piece.clamped(to: (lanes * groups)..<matrix.rows)
            multiply(input, m, matrix.stored, matrix.interleaved, firstGroup..<endGroup, stored, outputs[i], matrix.rows)
        }
    }
}

/// Below this many multiply-adds a quantized product runs on one thread (SmolLM2's key and value
/// projections, 110 K, are above it).
let quantizedParallelWork = 1 << 16

/// Up to this many rows, a quantized product multiplies each block from registers for every row;
/// beyond, panels of 32 dequantized weight rows feed the tiled kernel.
let quantizedFewRows = 8

/// `y [m, n] = x [m, k] · Wᵀ` with `W [n, k]` in blocks of `format`, over `threads` threads: each
/// thread one contiguous share of the outputs (few rows) or of the 32-column panels (many rows).
func multiplyQuantized(
    _ x: UnsafePointer<Float>, rows m: Int, weight: UnsafeRawPointer, interleaved: InterleavedRows, format: QuantizedBlockFormat,
    into y: UnsafeMutablePointer<Float>, n: Int, k: Int, threads: Int, isa: KernelInstructionSet
) {
    let kernels = isa.kernels.quantized(format)
    let small = m * n * k < quantizedParallelWork
    let shared = UncheckedSendable((x, weight, y))
    if m <= quantizedFewRows {
        let shares = min(small ? 1 : threads, n)
        parallelFor(shares, threads: shares) { share, _ in
            let (x, weight, y) = shared.value
            let outputs = (share * n / shares)..<((share + 1) * n / shares)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: quantizedRowsScratch(k: k, rows: m)) { scratch in
                kernels.multiplyRows(x, m, weight, interleaved, y, outputs, n, k, scratch.baseAddress!)
            }
        }
        return
    }
    let panels = (n + 31) / 32
    let shares = min(small ? 1 : threads, panels)
    let scratchCount = quantizedPanelScratch(k: k)
    parallelFor(shares, threads: shares) { share, _ in
        let (x, weight, y) = shared.value
        let range = (share * panels / shares)..<((share + 1) * panels / shares)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
        defer { scratch.deallocate() }
        kernels.multiplyPanels(x, m, weight, interleaved, y, range, n, k, scratch)
    }
}
