import Foundation

/// A reader for GGUF, the file format of llama.cpp's models: a header, typed metadata (the model's
/// configuration, its tokenizer, its chat template), a table of tensors, and their data, aligned.
///
/// ```
/// "GGUF" · version (u32) · tensor count (u64) · metadata count (u64)
/// metadata:  key (u64 length + UTF-8) · value type (u32) · value
/// tensors:   name · dimension count (u32) · dimensions (u64 each, innermost first) · type (u32) · offset (u64)
/// padding to `general.alignment` (32 unless set) · tensor data
/// ```
///
/// Versions 2 and 3 are read (version 1, with 32-bit counts, is long obsolete), little-endian only.
/// The file is memory-mapped and nothing is read until a tensor is asked for. Everything is checked
/// before any tensor is used: every count and length against the bytes that remain (a hostile count
/// allocates nothing), every value type, each tensor's type, dimensions (at most four, the first a
/// whole number of blocks), size (no overflow), offset (a multiple of the alignment) and extent
/// (inside the file, overlapping no other tensor), unique keys and names, valid UTF-8. A truncated or
/// hostile file gets an ``AttentionError/invalidFile(path:reason:)`` that says what is wrong.
///
/// GGUF lists dimensions innermost first (`ne[0]` varies fastest); ``TensorInfo/shape`` and
/// ``tensor(_:)`` give them outermost first, as everywhere else in the library: a weight stored as
/// `[576, 1536]` (576 inputs per row) is a `[1536, 576]` matrix here, as transformers reads it.
public struct GGUF: Sendable {
    /// The types of metadata values, with the format's numbering.
    public enum ValueType: UInt32, Sendable, CaseIterable {
        /// Integers of each width, 32-bit float, bool (one byte), string, array, 64-bit float.
        case uint8 = 0, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64

        /// Bytes of one value of a fixed-size type; nil for strings and arrays.
        var fixedSize: Int? {
            switch self {
            case .uint8, .int8, .bool: 1
            case .uint16, .int16: 2
            case .uint32, .int32, .float32: 4
            case .uint64, .int64, .float64: 8
            case .string, .array: nil
            }
        }
    }

    /// One metadata value.
    public indirect enum Value: Sendable, Equatable {
        /// An unsigned 8-bit integer.
        case uint8(UInt8)
        /// A signed 8-bit integer.
        case int8(Int8)
        /// An unsigned 16-bit integer.
        case uint16(UInt16)
        /// A signed 16-bit integer.
        case int16(Int16)
        /// An unsigned 32-bit integer.
        case uint32(UInt32)
        /// A signed 32-bit integer.
        case int32(Int32)
        /// A 32-bit float.
        case float32(Float)
        /// A boolean (one byte, 0 or 1).
        case bool(Bool)
        /// A UTF-8 string.
        case string(String)
        /// An unsigned 64-bit integer.
        case uint64(UInt64)
        /// A signed 64-bit integer.
        case int64(Int64)
        /// A 64-bit float.
        case float64(Double)
        /// An array of values that all have `elementType` (an array of arrays is allowed).
        case array(elementType: ValueType, [Value])

        /// The value as an `Int`, for any integer type whose value fits; nil otherwise.
        public var integer: Int? {
            switch self {
            case .uint8(let v): Int(v)
            case .int8(let v): Int(v)
            case .uint16(let v): Int(v)
            case .int16(let v): Int(v)
            case .uint32(let v): Int(v)
            case .int32(let v): Int(v)
            case .uint64(let v): Int(exactly: v)
            case .int64(let v): Int(v)
            default: nil
            }
        }

        /// The value as a `Double`, for either float type; nil otherwise.
        public var floatingPoint: Double? {
            switch self {
            case .float32(let v): Double(v)
            case .float64(let v): v
            default: nil
            }
        }

        /// The string; nil for any other type.
        public var string: String? {
            if case .string(let v) = self { v } else { nil }
        }

        /// The boolean; nil for any other type.
        public var bool: Bool? {
            if case .bool(let v) = self { v } else { nil }
        }

        /// The elements of an array; nil for any other type.
        public var elements: [Value]? {
            if case .array(_, let v) = self { v } else { nil }
        }

        /// An array of strings as `[String]`; nil if the value is not one.
        public var strings: [String]? {
            guard case .array(.string, let values) = self else { return nil }
            return values.compactMap(\.string)
        }

        /// An array of integers as `[Int]`; nil if the value is not one, or an element does not fit.
        public var integers: [Int]? {
            guard case .array(_, let values) = self else { return nil }
            let out = values.compactMap(\.integer)
            return out.count == values.count ? out : nil
        }

        /// The value's type.
        public var type: ValueType {
            switch self {
            case .uint8: .uint8
            case .int8: .int8
            case .uint16: .uint16
            case .int16: .int16
            case .uint32: .uint32
            case .int32: .int32
            case .float32: .float32
            case .bool: .bool
            case .string: .string
            case .uint64: .uint64
            case .int64: .int64
            case .float64: .float64
            case .array: .array
            }
        }
    }

    /// The element types of tensors (ggml's types), with the format's numbering. Each is stored in
    /// blocks of ``blockSize`` elements taking ``bytesPerBlock`` bytes; the plain types have blocks
    /// of one. Every type below is read and sized; ``isConvertible`` says which ``tensor(_:)``
    /// converts to Float.
    public enum TensorType: UInt32, Sendable, CaseIterable {
        /// Plain floats and integers.
        case F32 = 0, F16 = 1, BF16 = 30, F64 = 28, I8 = 24, I16 = 25, I32 = 26, I64 = 27
        /// Blocks of 32 with one (`_0`: `d·q`) or two (`_1`: `d·q + m`) half-precision scales.
        case Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9
        /// Super-blocks of 256 ("k-quants").
        case Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15
        /// Lattice and ternary codebooks, and 4-bit floats.
        case IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
             IQ1_M = 29, TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39

        /// Elements per block.
        public var blockSize: Int {
            switch self {
            case .F32, .F16, .BF16, .F64, .I8, .I16, .I32, .I64: 1
            case .Q4_0, .Q4_1, .Q5_0, .Q5_1, .Q8_0, .Q8_1, .IQ4_NL, .MXFP4: 32
            default: 256
            }
        }

        /// Bytes per block.
        public var bytesPerBlock: Int {
            switch self {
            case .F32, .I32: 4
            case .F16, .BF16, .I16: 2
            case .F64, .I64: 8
            case .I8: 1
            case .Q4_0, .IQ4_NL: 18
            case .Q4_1: 20
            case .Q5_0: 22
            case .Q5_1: 24
            case .Q8_0: 34
            case .Q8_1: 40
            case .MXFP4: 17
            case .Q2_K: 84
            case .Q3_K, .IQ3_S: 110
            case .Q4_K: 144
            case .Q5_K: 176
            case .Q6_K: 210
            case .Q8_K: 292
            case .IQ2_XXS, .TQ2_0: 66
            case .IQ2_XS: 74
            case .IQ3_XXS: 98
            case .IQ1_S: 50
            case .IQ2_S: 82
            case .IQ4_XS: 136
            case .IQ1_M: 56
            case .TQ1_0: 54
            }
        }

        /// The type's name as ggml writes it (`Q4_1`).
        public var name: String { "\(self)" }

        /// Whether ``GGUF/tensor(_:)`` converts this type to Float: F32, F16, BF16, F64, the
        /// 32-element blocks Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and IQ4_NL, and the k-quants Q2_K, Q3_K,
        /// Q4_K, Q5_K and Q6_K.
        public var isConvertible: Bool {
            switch self {
            case .F32, .F16, .BF16, .F64, .Q4_0, .Q4_1, .Q5_0, .Q5_1, .Q8_0, .IQ4_NL, .Q2_K, .Q3_K, .Q4_K, .Q5_K, .Q6_K: true
            default: false
            }
        }

        /// Bytes of `count` elements, or nil if `count` is not a whole number of blocks.
        public func byteCount(elements count: Int) -> Int? {
            guard count >= 0, count % blockSize == 0 else { return nil }
            let (bytes, overflow) = (count / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
            return overflow ? nil : bytes
        }
    }

    /// One tensor's entry in the table.
    public struct TensorInfo: Sendable, Equatable {
        /// The tensor's name (`blk.0.attn_q.weight`).
        public let name: String
        /// Extents as the file lists them, innermost (fastest-varying) first.
        public let dimensions: [Int]
        /// The element type.
        public let type: TensorType
        /// Byte range inside the data section.
        public let range: Range<Int>

        /// Extents outermost first, as ``tensor(_:)`` shapes it.
        public var shape: [Int] { dimensions.reversed() }
        /// Number of elements.
        public var elementCount: Int { dimensions.reduce(1, *) }
    }

    /// The alignment of the data section and of every tensor when `general.alignment` is absent.
    public static let defaultAlignment = 32
    /// The most dimensions a tensor may have.
    public static let maximumDimensions = 4
    /// Deepest nesting of arrays inside arrays accepted.
    public static let maximumArrayDepth = 8

    /// The file the tensors were read from, as errors name it (`<data>` for bytes in memory).
    public let path: String
    /// The format version (2 or 3).
    public let version: Int
    /// The alignment of the data section and its tensors, in bytes.
    public let alignment: Int
    /// Every metadata value, by key.
    public let metadata: [String: Value]
    /// The metadata keys in the file's order.
    public let metadataKeys: [String]
    /// Every tensor, in the file's order.
    public let tensors: [TensorInfo]
    private let index: [String: Int]
    private let data: Data
    private let dataStart: Int

    /// Opens and validates a file.
    public init(contentsOf url: URL) throws {
        try self.init(data: mappedContents(of: url), path: url.path)
    }

    /// Parses GGUF bytes; `path` only names the source in errors.
    public init(data: Data, path: String = "<data>") throws {
        let header = try data.withUnsafeBytes { raw in try Self.parse(raw, path: path) }
        self.path = path
        self.version = header.version
        self.alignment = header.alignment
        self.metadata = header.metadata
        self.metadataKeys = header.keys
        self.tensors = header.tensors
        self.index = Dictionary(uniqueKeysWithValues: header.tensors.enumerated().map { ($1.name, $0) })
        self.data = data
        self.dataStart = header.dataStart
    }

    /// The entry of the tensor `name`, if the file has one.
    public func info(_ name: String) -> TensorInfo? {
        index[name].map { tensors[$0] }
    }

    /// Calls `body` with the stored bytes of the tensor `name`, where they lie in the file: the raw
    /// blocks, for kernels that read a quantized type directly.
    public func withUnsafeBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let entry = info(name) else {
            throw AttentionError.invalidFile(path: path, reason: "no tensor named '\(name)'")
        }
        return try data.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[(dataStart + entry.range.lowerBound)..<(dataStart + entry.range.upperBound)]))
        }
    }

    /// The stored bytes of the tensor `name`, sharing the file's mapping (no copy).
    func storedData(of name: String) throws -> Data {
        guard let entry = info(name) else {
            throw AttentionError.invalidFile(path: path, reason: "no tensor named '\(name)'")
        }
        let start = data.startIndex + dataStart
        return data[(start + entry.range.lowerBound)..<(start + entry.range.upperBound)]
    }

    /// The tensor `name` as Float, shaped outermost first (``TensorInfo/shape``), its blocks
    /// dequantized exactly as the format defines them (see ``TensorType/dequantize(_:into:)``).
    public func tensor(_ name: String) throws -> Tensor<Float> {
        guard let entry = info(name) else {
            throw AttentionError.invalidFile(path: path, reason: "no tensor named '\(name)'")
        }
        guard entry.type.isConvertible else {
            throw AttentionError.invalidFile(
                path: path, reason: "tensor '\(name)' is \(entry.type.name), which does not convert to Float (\(GGUF.TensorType.allCases.filter(\.isConvertible).map(\.name).joined(separator: ", ")) do)")
        }
        let count = entry.elementCount
        let values = try withUnsafeBytes(of: name) { bytes in
            try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                try entry.type.dequantize(bytes, into: UnsafeMutableBufferPointer(rebasing: buffer[0..<count]))
                initialized = count
            }
        }
        return Tensor(uncheckedShape: entry.shape, scalars: values)
    }
}

// MARK: - Dequantization

extension GGUF.TensorType {
    /// Converts the stored bytes of `output.count` elements to Float. The block formats, per 32
    /// elements `x[0..<32]` (half-precision scales `d`, `m`; `q` the stored integers):
    /// - `Q8_0`: `d`, 32 signed bytes: `x[i] = d·q[i]`.
    /// - `Q4_0`: `d`, 16 bytes whose low nibbles are `q[0..<16]` and high nibbles `q[16..<32]`: `x = d·(q − 8)`.
    /// - `Q4_1`: `d`, `m`, the same 16 bytes: `x = d·q + m`.
    /// - `Q5_0` / `Q5_1`: as `Q4_0` / `Q4_1` with a fifth bit per element from a 32-bit word
    ///   after the scales (bit `i` for `x[i]`): `x = d·(q − 16)` and `x = d·q + m`.
    /// - `IQ4_NL`: `d` and Q4_0's 16 bytes of nibbles, each naming one of sixteen signed bytes
    ///   (``iq4NonlinearValues``, −127 ... 113, closer together near zero): `x = d·v[q]`.
    ///
    /// The k-quants, per super-block of 256 elements in sub-blocks of 16 or 32, each sub-block with
    /// an integer scale `s` (and minimum `n`) under the super-block's half-precision `d` (and `dmin`):
    /// - `Q2_K` (84 bytes): 16 bytes of (`s` low nibble, `n` high nibble) per 16 elements, 64 bytes
    ///   of 2-bit `q`, `d`, `dmin`: `x = (d·s)·q − dmin·n`.
    /// - `Q3_K` (110 bytes): 32 bytes of high bits, 64 bytes of 2-bit low bits, 12 bytes of 6-bit
    ///   scales, `d`: `x = (d·(s − 32))·(q − 4·(1 − high bit))`.
    /// - `Q4_K` (144 bytes): `d`, `dmin`, 12 bytes of eight 6-bit `s` and `n`, 128 bytes of nibbles:
    ///   `x = (d·s)·q − dmin·n` per 32 elements.
    /// - `Q5_K` (176 bytes): as `Q4_K` with 32 bytes of fifth bits after the scales.
    /// - `Q6_K` (210 bytes): 128 bytes of low nibbles, 64 bytes of 2-bit high parts, 16 signed
    ///   bytes of `s`, `d`: `x = (d·s)·(q − 32)` per 16 elements.
    ///
    /// Where the bits of each element sit is written out at each case below; it is the layout of
    /// ggml's `block_q*_K`.
    /// Each product and sum is rounded to Float as written (no fused multiply-add), as gguf's own
    /// Python reader (and so transformers) computes them.
    ///
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` if the type does not convert
    ///   (``isConvertible``) or `bytes` does not hold exactly `output.count` elements.
    public func dequantize(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Float>) throws {
        guard isConvertible else {
            throw AttentionError.invalidArgument(argument: "type", reason: "\(name) does not convert to Float")
        }
        guard let needed = byteCount(elements: output.count), needed == bytes.count else {
            throw AttentionError.invalidArgument(
                argument: "bytes", reason: "\(bytes.count) bytes do not hold \(output.count) elements of \(name) (blocks of \(blockSize) in \(bytesPerBlock) bytes)")
        }
        func u16(_ at: Int) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
        func half(_ at: Int) -> Float { halfToFloat(u16(at)) }
        let blocks = output.count / blockSize
        /// Elements `at` and `at + 16` from their stored integers: `d·q + m` with a minimum, `d·(q − zero)` without.
        func store(_ at: Int, _ low: Int, _ high: Int, d: Float, m: Float?, zero: Int) {
            if let m {
                output[at] = d * Float(low) + m
                output[at + 16] = d * Float(high) + m
            } else {
                output[at] = d * Float(low - zero)
                output[at + 16] = d * Float(high - zero)
            }
        }
        switch self {
        case .F32:
            for i in 0..<output.count { output[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .F64:
            for i in 0..<output.count { output[i] = Float(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        case .F16:
            for i in 0..<output.count { output[i] = half(2 * i) }
        case .BF16:
            for i in 0..<output.count { output[i] = Float(bitPattern: UInt32(u16(2 * i)) << 16) }
        case .Q8_0:
            for b in 0..<blocks {
                let base = b * 34, d = half(base)
                for i in 0..<32 { output[32 * b + i] = d * Float(Int8(bitPattern: bytes[base + 2 + i])) }
            }
        case .Q4_0, .Q4_1:
            let hasMinimum = self == .Q4_1
            for b in 0..<blocks {
                let base = b * bytesPerBlock, d = half(base), m = hasMinimum ? half(base + 2) : nil
                let quants = base + (hasMinimum ? 4 : 2)
                for i in 0..<16 {
                    let byte = bytes[quants + i]
                    store(32 * b + i, Int(byte & 0x0F), Int(byte >> 4), d: d, m: m, zero: 8)
                }
            }
        case .IQ4_NL:
            for b in 0..<blocks {
                let base = b * 18, d = half(base)
                for i in 0..<16 {
                    let byte = bytes[base + 2 + i]
                    output[32 * b + i] = d * Float(Self.iq4NonlinearValues[Int(byte & 0x0F)])
                    output[32 * b + i + 16] = d * Float(Self.iq4NonlinearValues[Int(byte >> 4)])
                }
            }
        case .Q5_0, .Q5_1:
            let hasMinimum = self == .Q5_1
            for b in 0..<blocks {
                let base = b * bytesPerBlock, d = half(base), m = hasMinimum ? half(base + 2) : nil
                let highBitsAt = base + (hasMinimum ? 4 : 2)
                let highBits = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: highBitsAt, as: UInt32.self))
                for i in 0..<16 {
                    let byte = bytes[highBitsAt + 4 + i]
                    let low = Int(byte & 0x0F) | Int((highBits >> UInt32(i)) & 1) << 4
                    let high = Int(byte >> 4) | Int((highBits >> UInt32(i + 16)) & 1) << 4
                    store(32 * b + i, low, high, d: d, m: m, zero: 16)
                }
            }
        case .Q2_K, .Q3_K, .Q4_K, .Q5_K, .Q6_K:
            for b in 0..<blocks {
                dequantizeSuperBlock(UnsafeRawBufferPointer(rebasing: bytes[(b * bytesPerBlock)..<((b + 1) * bytesPerBlock)]),
                                     into: UnsafeMutableBufferPointer(rebasing: output[(256 * b)..<(256 * b + 256)]))
            }
        default:
            break   // excluded by isConvertible above
        }
    }

    /// The sixteen values an IQ4_NL nibble names (ggml's `kvalues_iq4nl`), before the block's scale.
    public static let iq4NonlinearValues: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// One k-quant super-block of 256 elements (`block` is ``bytesPerBlock`` bytes) into `x[0..<256]`.
    private func dequantizeSuperBlock(_ block: UnsafeRawBufferPointer, into x: UnsafeMutableBufferPointer<Float>) {
        func half(_ at: Int) -> Float { halfToFloat(UInt16(littleEndian: block.loadUnaligned(fromByteOffset: at, as: UInt16.self))) }
        /// Bits `shift ..< shift + width` of byte `at`.
        func bits(_ at: Int, _ shift: Int, _ width: Int) -> Int { Int(block[at] >> UInt8(shift)) & ((1 << width) - 1) }
        switch self {
        case .Q2_K:
            // Element e = 128c + 32s + i (c < 2, s < 4, i < 32): bits 2s of quant byte 32c + i (at 16);
            // sub-block e / 16, whose byte e / 16 holds s (low nibble) and n (high nibble).
            let d = half(80), dmin = half(82)
            for e in 0..<256 {
                let (c, rest) = e.quotientAndRemainder(dividingBy: 128), (s, i) = rest.quotientAndRemainder(dividingBy: 32)
                let q = bits(16 + 32 * c + i, 2 * s, 2), j = e / 16
                x[e] = (d * Float(bits(j, 0, 4))) * Float(q) - dmin * Float(bits(j, 4, 4))
            }
        case .Q3_K:
            // Low 2 bits as Q2_K's (at byte 32 + 32c + i); high bit b = e / 32 of byte e mod 32;
            // scale j (< 16): low 4 bits from byte j mod 8 (nibble j / 8), high 2 from byte
            // 8 + j mod 4 (bits 2·(j / 4)).
            let d = half(108)
            for e in 0..<256 {
                let (c, rest) = e.quotientAndRemainder(dividingBy: 128), (s, i) = rest.quotientAndRemainder(dividingBy: 32)
                let low = bits(32 + 32 * c + i, 2 * s, 2), high = bits(e % 32, e / 32, 1)
                let j = e / 16
                let scale = (bits(96 + j % 8, 4 * (j / 8), 4) | bits(104 + j % 4, 2 * (j / 4), 2) << 4) - 32
                x[e] = (d * Float(scale)) * Float(low - (high == 1 ? 0 : 4))
            }
        case .Q4_K, .Q5_K:
            // Sub-block j = e / 32 = 2c + h: the nibble h of byte 32c + i of the quants; for Q5_K
            // the fifth bit is bit j of byte i of the 32 high-bit bytes.
            let d = half(0), dmin = half(2), quants = self == .Q4_K ? 16 : 48
            let (scales, minimums) = Self.sixBitScales(block, at: 4)
            for e in 0..<256 {
                let j = e / 32, i = e % 32
                var q = bits(quants + 32 * (j / 2) + i, 4 * (j % 2), 4)
                if self == .Q5_K { q |= bits(16 + i, j, 1) << 4 }
                x[e] = (d * Float(scales[j])) * Float(q) - dmin * Float(minimums[j])
            }
        case .Q6_K:
            // Element e = 128c + 64h + t (t < 64): low nibble h of byte 64c + t; high 2 bits
            // 2s of byte 128 + 32c + i where e = 128c + 32s + i; scale e / 16, signed, at 192.
            let d = half(208)
            for e in 0..<256 {
                let (c, rest) = e.quotientAndRemainder(dividingBy: 128)
                let (h, t) = rest.quotientAndRemainder(dividingBy: 64), (s, i) = rest.quotientAndRemainder(dividingBy: 32)
                let q = bits(64 * c + t, 4 * h, 4) | bits(128 + 32 * c + i, 2 * s, 2) << 4
                let scale = Int(Int8(bitPattern: block[192 + e / 16]))
                x[e] = (d * Float(scale)) * Float(q - 32)
            }
        default:
            break
        }
    }

    /// Q4_K's and Q5_K's eight 6-bit scales and minimums from the 12 bytes at `at`: for j < 4 the low
    /// six bits of bytes j and 4 + j; for j ≥ 4 a nibble of byte 4 + j (low: scale, high: minimum)
    /// below the top two bits of bytes j − 4 and j.
    private static func sixBitScales(_ block: UnsafeRawBufferPointer, at base: Int) -> (scales: [Int], minimums: [Int]) {
        let b = (0..<12).map { Int(block[base + $0]) }
        let scales = (0..<8).map { j in j < 4 ? b[j] & 0x3F : (b[4 + j] & 0x0F) | ((b[j - 4] >> 6) << 4) }
        let minimums = (0..<8).map { j in j < 4 ? b[4 + j] & 0x3F : (b[4 + j] >> 4) | ((b[j] >> 6) << 4) }
        return (scales, minimums)
    }
}

// MARK: - Parsing

extension GGUF {
    private struct Header {
        var version: Int
        var alignment: Int
        var metadata: [String: Value]
        var keys: [String]
        var tensors: [TensorInfo]
        var dataStart: Int
    }

    /// Bounds-checked little-endian reads over the file's bytes.
    private struct Cursor {
        let raw: UnsafeRawBufferPointer
        let path: String
        var offset = 0

        var remaining: Int { raw.count - offset }

        func fail(_ reason: String) -> AttentionError { .invalidFile(path: path, reason: reason) }

        mutating func integer<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
            guard remaining >= MemoryLayout<T>.size else {
                throw fail("truncated at byte \(offset) while reading \(what())")
            }
            defer { offset += MemoryLayout<T>.size }
            return T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
        }

        /// A count (u64) of items of at least `minimumSize` bytes each, bounded by what remains.
        mutating func count(_ what: @autoclosure () -> String, minimumSize: Int) throws -> Int {
            let value = try integer(UInt64.self, what())
            guard value <= UInt64(remaining / max(minimumSize, 1)) else {
                throw fail("\(what()) is \(value), more than the \(remaining) remaining bytes can hold (truncated or corrupt file?)")
            }
            return Int(value)
        }

        mutating func string(_ what: @autoclosure () -> String) throws -> String {
            let length = try integer(UInt64.self, "the length of \(what())")
            guard length <= UInt64(remaining) else {
                throw fail("\(what()) claims \(length) bytes but only \(remaining) remain (truncated file?)")
            }
            let bytes = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + Int(length))])
            offset += Int(length)
            let text = String(decoding: bytes, as: UTF8.self)
            guard text.utf8.elementsEqual(bytes) else { throw fail("\(what()) is not valid UTF-8") }
            return text
        }

        mutating func valueType(_ what: @autoclosure () -> String) throws -> ValueType {
            let raw = try integer(UInt32.self, "the type of \(what())")
            guard let type = ValueType(rawValue: raw) else { throw fail("\(what()) has an unknown value type \(raw)") }
            return type
        }

        mutating func value(of type: ValueType, _ what: @autoclosure () -> String, depth: Int = 0) throws -> Value {
            switch type {
            case .uint8: return .uint8(try integer(UInt8.self, what()))
            case .int8: return .int8(try integer(Int8.self, what()))
            case .uint16: return .uint16(try integer(UInt16.self, what()))
            case .int16: return .int16(try integer(Int16.self, what()))
            case .uint32: return .uint32(try integer(UInt32.self, what()))
            case .int32: return .int32(try integer(Int32.self, what()))
            case .uint64: return .uint64(try integer(UInt64.self, what()))
            case .int64: return .int64(try integer(Int64.self, what()))
            case .float32: return .float32(Float(bitPattern: try integer(UInt32.self, what())))
            case .float64: return .float64(Double(bitPattern: try integer(UInt64.self, what())))
            case .bool:
                let byte = try integer(UInt8.self, what())
                guard byte <= 1 else { throw fail("\(what()) is a bool stored as \(byte), not 0 or 1") }
                return .bool(byte == 1)
            case .string: return .string(try string(what()))
            case .array:
                guard depth < GGUF.maximumArrayDepth else {
                    throw fail("\(what()) nests arrays more than \(GGUF.maximumArrayDepth) deep")
                }
                let elementType = try valueType("the elements of \(what())")
                // A string is at least its 8-byte length, an array its 12-byte type and count.
                let minimum = elementType.fixedSize ?? (elementType == .string ? 8 : 12)
                let count = try self.count("the element count of \(what())", minimumSize: minimum)
                var values: [Value] = []
                values.reserveCapacity(count)
                for i in 0..<count {
                    values.append(try value(of: elementType, "element \(i) of \(what())", depth: depth + 1))
                }
                return .array(elementType: elementType, values)
            }
        }
    }

    private static func parse(_ raw: UnsafeRawBufferPointer, path: String) throws -> Header {
        var cursor = Cursor(raw: raw, path: path)
        func fail(_ reason: String) -> AttentionError { cursor.fail(reason) }
        guard raw.count >= 4, Array(raw.prefix(4)) == Array("GGUF".utf8) else {
            let found = raw.prefix(4).map { (0x20..<0x7F).contains($0) ? String(UnicodeScalar($0)) : "?" }.joined()
            throw fail("not a GGUF file: it starts with '\(found)', not 'GGUF'")
        }
        cursor.offset = 4
        let version = try cursor.integer(UInt32.self, "the version")
        if version & 0xFFFF == 0 && version != 0 {
            throw fail("version \(version) reads as byte-swapped: a big-endian GGUF file, which is not supported")
        }
        guard version == 2 || version == 3 else {
            throw fail(version == 1 ? "GGUF version 1 is obsolete and not supported (versions 2 and 3 are)"
                                    : "GGUF version \(version) is not supported (versions 2 and 3 are)")
        }
        // A tensor entry takes at least 24 bytes (empty name, no dimensions), a metadata pair 13.
        let tensorCount = try cursor.count("the tensor count", minimumSize: 24)
        let metadataCount = try cursor.count("the metadata count", minimumSize: 13)

        var metadata: [String: Value] = [:]
        var keys: [String] = []
        keys.reserveCapacity(metadataCount)
        for i in 0..<metadataCount {
            let key = try cursor.string("metadata key \(i)")
            guard metadata[key] == nil else { throw fail("metadata key '\(key)' appears twice") }
            let type = try cursor.valueType("metadata '\(key)'")
            metadata[key] = try cursor.value(of: type, "metadata '\(key)'")
            keys.append(key)
        }
        var alignment = defaultAlignment
        if let value = metadata["general.alignment"] {
            guard case .uint32(let declared) = value else {
                throw fail("general.alignment is \(value.type), not uint32")
            }
            guard declared > 0, declared & (declared - 1) == 0 else {
                throw fail("general.alignment is \(declared), not a power of two")
            }
            alignment = Int(declared)
        }

        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(tensorCount)
        var names = Set<String>()
        for i in 0..<tensorCount {
            let name = try cursor.string("the name of tensor \(i)")
            guard names.insert(name).inserted else { throw fail("tensor '\(name)' appears twice") }
            let rank = try cursor.integer(UInt32.self, "the dimension count of tensor '\(name)'")
            guard rank <= maximumDimensions else {
                throw fail("tensor '\(name)' has \(rank) dimensions; at most \(maximumDimensions) are allowed")
            }
            var dimensions: [Int] = []
            var count = 1
            for d in 0..<Int(rank) {
                let extent = try cursor.integer(UInt64.self, "dimension \(d) of tensor '\(name)'")
                guard let exact = Int(exactly: extent) else { throw fail("tensor '\(name)' has dimension \(d) of \(extent), too large") }
                let (product, overflow) = count.multipliedReportingOverflow(by: exact)
                guard !overflow else { throw fail("tensor '\(name)' has dimensions whose product overflows") }
                dimensions.append(exact)
                count = product
            }
            let typeValue = try cursor.integer(UInt32.self, "the type of tensor '\(name)'")
            guard let type = TensorType(rawValue: typeValue) else {
                throw fail("tensor '\(name)' has an unknown type \(typeValue)")
            }
            guard (dimensions.first ?? 1) % type.blockSize == 0 else {
                throw fail("tensor '\(name)' of type \(type.name) has rows of \(dimensions.first ?? 1) elements, not a multiple of its block of \(type.blockSize)")
            }
            guard let bytes = type.byteCount(elements: count) else {
                throw fail("tensor '\(name)': \(dimensions) of \(type.name) needs more than \(Int.max) bytes")
            }
            let offset = try cursor.integer(UInt64.self, "the offset of tensor '\(name)'")
            guard offset % UInt64(alignment) == 0 else {
                throw fail("tensor '\(name)' starts at offset \(offset), not a multiple of the alignment \(alignment)")
            }
            guard let start = Int(exactly: offset), start <= Int.max - bytes else {
                throw fail("tensor '\(name)' has offset \(offset) beyond any file")
            }
            let end = start + bytes
            tensors.append(TensorInfo(name: name, dimensions: dimensions, type: type, range: start..<end))
        }

        // The data section starts at the next multiple of the alignment.
        let (padded, overflow) = cursor.offset.addingReportingOverflow(alignment - 1)
        let dataStart = overflow ? Int.max : padded / alignment * alignment
        let dataSize = max(0, raw.count - dataStart)
        for entry in tensors where entry.range.upperBound > dataSize {
            throw fail("tensor '\(entry.name)' ends at byte \(entry.range.upperBound) of a data section of \(dataSize) bytes (truncated file?)")
        }
        let sorted = tensors.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.range.lowerBound < a.range.upperBound {
            throw fail("tensors '\(a.name)' and '\(b.name)' overlap")
        }
        return Header(version: Int(version), alignment: alignment, metadata: metadata, keys: keys, tensors: tensors, dataStart: dataStart)
    }
}
