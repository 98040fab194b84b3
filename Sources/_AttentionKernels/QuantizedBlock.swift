import _KernelIntrinsics

/// The block formats the kernels read, as one table of traits: each format is a type conforming to
/// ``QuantizedBlock`` that states its size and its arithmetic, and ``QuantizedBlockFormat/apply(_:)``
/// is the one place that maps a format to its type. The kernel table compiles one row of products
/// per format (``QuantizedFormatKernels``) from what the type is:
/// - an ``InterleavedQuantizedBlock`` (ggml's 32-value formats, scales first) is read from
///   registers four blocks at a time, and interleaved by sixteen rows for decoding
///   (`InterleavedQuantized.swift`);
/// - a ``SuperQuantizedBlock`` (the k-quants' super-blocks of 256) is read from registers a block
///   at a time for one row, and dequantized a weight row at a time into L1 for more.
/// A new format is a case, a conforming type and a line in `apply`.
///
/// A block's values are computed exactly as the format (and gguf's reader) defines them: `d·q + m`,
/// `d·(q − 8)` or `d·q`, each product and sum rounded to Float, unfused. So the weights the kernels
/// multiply are bit for bit the dequantized tensor; only the order of the sums differs from a Float
/// product on that tensor.

/// The block formats the kernels read, with ggml's numbering of the types.
public enum QuantizedBlockFormat: Int, Sendable, CaseIterable {
    /// A half-precision scale `d` and 32 signed bytes: `x = d·q` (34 bytes).
    case q8_0 = 8
    /// `d` and 16 bytes of two nibbles (low nibbles elements 0..<16, high 16..<32): `x = d·(q − 8)` (18 bytes).
    case q4_0 = 2
    /// `d`, a half-precision minimum `m` and the same 16 bytes: `x = d·q + m` (20 bytes).
    case q4_1 = 3
    /// `d`, a 32-bit word of fifth bits (bit `i` for element `i`) and the same 16 bytes of nibbles:
    /// `x = d·(q − 16)` (22 bytes).
    case q5_0 = 6
    /// `d`, `m`, Q5_0's word of fifth bits and 16 bytes of nibbles: `x = d·q + m` (24 bytes).
    case q5_1 = 7
    /// Super-blocks of 256: `d`, `dmin`, eight 6-bit scales and minimums, 128 bytes of nibbles:
    /// `x = (d·s)·q − dmin·m` per 32 values (144 bytes).
    case q4_k = 12
    /// As Q4_K with a fifth bit per value (176 bytes).
    case q5_k = 13
    /// Super-blocks of 256: 6-bit integers, sixteen signed 8-bit scales, `d`: `x = (d·s)·(q − 32)`
    /// per 16 values (210 bytes).
    case q6_k = 14

    /// The table: `visitor` called with this format's block type. The one `switch` over formats;
    /// everything else about a format is asked of its type.
    @inlinable @inline(__always)
    public func apply<V: QuantizedBlockVisitor>(_ visitor: V) -> V.Result {
        switch self {
        case .q8_0: visitor(Q8_0Block.self)
        case .q4_0: visitor(Q4_0Block.self)
        case .q4_1: visitor(Q4_1Block.self)
        case .q5_0: visitor(Q5_0Block.self)
        case .q5_1: visitor(Q5_1Block.self)
        case .q4_k: visitor(Q4_KBlock.self)
        case .q5_k: visitor(Q5_KBlock.self)
        case .q6_k: visitor(Q6_KBlock.self)
        }
    }

    /// This format's block type, for its facts (not for kernels: a call through an existential type
    /// is not specialized; kernels go through ``apply(_:)``).
    @inlinable public var block: any QuantizedBlock.Type { apply(BlockTypeOf()) }

    /// Values per block: 32, or 256 for a super-block.
    @inlinable public var valuesPerBlock: Int { block.values }

    /// Bytes per block.
    @inlinable public var bytesPerBlock: Int { block.bytes }

    /// The block type if matrices of this format are interleaved by sixteen rows for decoding.
    @inlinable public var interleavedBlock: (any InterleavedQuantizedBlock.Type)? { block as? any InterleavedQuantizedBlock.Type }
}

/// A computation over one block type, for ``QuantizedBlockFormat/apply(_:)``: Swift closures cannot
/// be generic, so the per-format code is a method generic over the block type.
public protocol QuantizedBlockVisitor {
    associatedtype Result
    func callAsFunction<B: QuantizedBlock>(_ block: B.Type) -> Result
}

/// The visitor that returns the block type itself.
@usableFromInline
struct BlockTypeOf: QuantizedBlockVisitor {
    @inlinable init() {}
    @inlinable func callAsFunction<B: QuantizedBlock>(_ block: B.Type) -> any QuantizedBlock.Type { block }
}

/// How a single-row product over interleaved blocks wants its 32 inputs per block (see
/// ``prepareInterleavedInput(_:k:order:into:sums:)``).
public enum InterleavedInputOrder: Int, Sendable, CaseIterable {
    /// In element order, as given.
    case elements
    /// In the order of the nibbles of the interleaved words, each pre-scaled by the power of sixteen
    /// its nibble's mask leaves in the integer.
    case nibbleWords
}

/// One block format's traits and arithmetic: ``values`` values in ``bytes`` bytes, their exact
/// Float values, and the row of products the kernel table compiles for it.
public protocol QuantizedBlock: SendableMetatype {
    /// The format this arithmetic is for.
    static var format: QuantizedBlockFormat { get }
    /// Values per block.
    static var values: Int { get }
    /// Bytes of one block.
    static var bytes: Int { get }
    /// Byte offsets of the block's half-precision scales (`d`, and `m` or `dmin` where it has one).
    static var halfPrecisionScaleOffsets: [Int] { get }
    /// The block's values into `out[0..<values]`, bit for bit what the reference reader gives.
    static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, _: M.Type)
    /// This format's products, compiled for `M` in the calling module: given by the kind of block
    /// (``InterleavedQuantizedBlock``, ``SuperQuantizedBlock``).
    static func kernels<M: MultiplyAdd>(_: M.Type) -> QuantizedFormatKernels
}

/// A 32-value format with its half-precision scales first (ggml's `_0` and `_1` formats): its values
/// as four vectors of eight, its dot product with 32 floats, and the same on sixteen rows
/// interleaved (see `InterleavedQuantized.swift`).
public protocol InterleavedQuantizedBlock: QuantizedBlock {
    /// Bytes of half-precision scales at the start of a block: `d`, or `d` and `m`.
    static var scaleBytes: Int { get }
    static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, _: M.Type) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)
    /// `Σ q·x` over the block's 32 integers `q` (before the scale), in lanes.
    static func integerDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float>
    /// The bits of a block's first four bytes that hold half-precision scales: `d` alone (low half),
    /// or `d` and `m`.
    static var scaleBits: UInt32 { get }
    /// What multiplies each block's input sum `Σ x` in the even (`d`) and odd (`m`) lanes of
    /// ``fourScales(_:_:)``: `(0, 1)` for `m·Σx`, `(−8, 0)` for Q4_0's `−8d·Σx`, `(0, 0)` for none.
    static var minimumWeights: (even: Float, odd: Float) { get }

    /// In the interleaved layout, the bytes of one row's integers kept together: a row's integers
    /// after the scales are pieces of this many bytes, piece `e` of lane `r` at
    /// `16·scaleBytes + bytes·(16e + r)`.
    static var interleavedPieceBytes: Int { get }
    /// The input order ``accumulateInterleaved(_:_:xSum:_:_:)`` reads.
    static var interleavedInputOrder: InterleavedInputOrder { get }
    /// Adds one interleaved block's products to the accumulator of its sixteen rows (one per lane):
    /// `p` the group's block, `x` its 32 inputs in ``interleavedInputOrder``, `xSum` their sum.
    static func accumulateInterleaved<M: MultiplyAdd>(_ p: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSum: Float,
                                                      _ sum: inout SIMD16<Float>, _: M.Type)
    /// One interleaved block of sixteen rows at `p` dequantized: element `e` of row `r` to
    /// `out[stride·e + r]`, bit for bit what ``dequantize(_:_:)`` gives. `scales` is scratch for 32
    /// floats.
    static func dequantizeInterleaved<M: MultiplyAdd>(_ p: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, stride: Int,
                                                      scales: UnsafeMutablePointer<Float>, _: M.Type)
}

extension InterleavedQuantizedBlock {
    @inlinable public static var values: Int { 32 }
    @inlinable public static var halfPrecisionScaleOffsets: [Int] { Array(stride(from: 0, to: scaleBytes, by: 2)) }
    @inlinable @inline(__always)
    public static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, _: M.Type) {
        let (w0, w1, w2, w3) = dequantize(block, M.self)
        store8(w0, out); store8(w1, out + 8); store8(w2, out + 16); store8(w3, out + 24)
    }
    @inlinable @inline(__always)
    public static func kernels<M: MultiplyAdd>(_: M.Type) -> QuantizedFormatKernels { QuantizedFormatKernels(interleaved: Self.self, M.self) }
}

extension InterleavedQuantizedBlock {
    /// Adds the block's dot product with `x[0..<32]` (whose sum is `xSum`) to `sum`, in lanes, and its
    /// minimum's share to `minimumSum`: `d·Σ q·x + (even·d + odd·m)·Σ x` with ``minimumWeights``
    /// (`m·Σx` for Q4_1, Q4_0's `−8d·Σx`, Q5_0's `−16d·Σx`), so that the scales multiply once per
    /// block rather than once per value.
    @inlinable @inline(__always)
    static func accumulateDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSum: Float,
                                              _ sum: inout SIMD8<Float>, _ minimumSum: inout Float, _: M.Type) {
        let d = blockScale(block, M.self), (even, odd) = minimumWeights
        sum = M.multiplyAdd(SIMD8(repeating: d), integerDot(block, x, M.self), sum)
        if even != 0 { minimumSum = minimumSum.addingProduct(even * d, xSum) }
        if odd != 0 { minimumSum = minimumSum.addingProduct(odd * blockScale(block + 2, M.self), xSum) }
    }

    /// The scales of four consecutive blocks as `[d0, m0, d1, m1, d2, m2, d3, m3]` (`m` lanes zero for
    /// formats without one): one conversion of eight halves instead of one per scale.
    @inlinable @inline(__always)
    static func fourScales<M: MultiplyAdd>(_ block: UnsafeRawPointer, _: M.Type) -> SIMD8<Float> {
        let words = SIMD4<UInt32>(
            block.loadUnaligned(as: UInt32.self), block.loadUnaligned(fromByteOffset: bytes, as: UInt32.self),
            block.loadUnaligned(fromByteOffset: 2 * bytes, as: UInt32.self), block.loadUnaligned(fromByteOffset: 3 * bytes, as: UInt32.self))
        // Little-endian words (as the file stores them): each word's low half is `d`, its high half `m`.
        let halves = unsafeBitCast(words & scaleBits, to: SIMD8<UInt16>.self)
        #if !(os(macOS) && arch(x86_64))
        if M.convertsHalfPrecision { return SIMD8<Float>(unsafeBitCast(halves, to: SIMD8<Float16>.self)) }
        #endif
        return HalfBits.widen(halves)
    }

    /// The sixteen interleaved rows' `d` (and then `m`) at the start of a group's block, widened.
    @inlinable @inline(__always)
    static func interleavedScales<M: MultiplyAdd>(_ p: UnsafeRawPointer, _ which: Int, _: M.Type) -> SIMD16<Float> {
        HalfBits.load16((p + 2 * quantizedGroupRows * which).assumingMemoryBound(to: HalfBits.self), M.self)
    }

    /// Where the integers of an interleaved block start, after its sixteen rows' scales.
    @inlinable static var interleavedIntegers: Int { quantizedGroupRows * scaleBytes }
}

// MARK: - The formats

/// `d`, then 32 signed bytes.
public enum Q8_0Block: IntegerInterleavedBlock {
    @inlinable public static var format: QuantizedBlockFormat { .q8_0 }
    @inlinable public static var bytes: Int { 34 }
    @inlinable public static var scaleBytes: Int { 2 }
    @inlinable @inline(__always)
    public static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, _: M.Type) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let d = SIMD8<Float>(repeating: blockScale(block, M.self))
        // Eight signed bytes at a time (a 32-byte vector of bytes is handled lane by lane).
        @inline(__always) func values(_ at: Int) -> SIMD8<Float> {
            d * exactFloats(block.loadUnaligned(fromByteOffset: at, as: SIMD8<Int8>.self))
        }
        return (values(2), values(10), values(18), values(26))
    }
    @inlinable @inline(__always)
    public static func integerDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float> {
        @inline(__always) func q(_ at: Int) -> SIMD8<Float> { exactFloats(block.loadUnaligned(fromByteOffset: at, as: SIMD8<Int8>.self)) }
        return blockDot((q(2), q(10), q(18), q(26)), x, M.self)
    }
    @inlinable public static var scaleBits: UInt32 { 0xFFFF }
    @inlinable public static var minimumWeights: (even: Float, odd: Float) { (0, 0) }

    /// Interleaved: eight chunks of sixteen 32-bit words, word `r` of chunk `c` holding elements
    /// `4c ..< 4c + 4` of row `r` (the shape of the integer units' four-byte products).
    @inlinable public static var interleavedPieceBytes: Int { 4 }
    @inlinable public static var interleavedInputOrder: InterleavedInputOrder { .elements }
    @inlinable @inline(__always)
    public static func accumulateInterleaved<M: MultiplyAdd>(_ p: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSum: Float,
                                                             _ sum: inout SIMD16<Float>, _: M.Type) {
        sum = M.multiplyAdd(interleavedScales(p, 0, M.self), attention_byte_block_dot(p + interleavedIntegers, x), sum)
    }
    @inlinable @inline(__always)
    public static func dequantizeInterleaved<M: MultiplyAdd>(_ p: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, stride: Int,
                                                             scales: UnsafeMutablePointer<Float>, _: M.Type) {
        store(interleavedScales(p, 0, M.self), scales)
        attention_byte_block_values(p + interleavedIntegers, scales, out, stride)
    }

    @inlinable public static var integerLayout: InterleavedIntegerLayout { .signedBytes }
    @inlinable @inline(__always)
    public static func integers(_ block: UnsafeRawPointer) -> (SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>) {
        @inline(__always) func q(_ at: Int) -> SIMD8<Int32> {
            let b = block.loadUnaligned(fromByteOffset: at, as: SIMD8<Int8>.self)
            return SIMD8<Int32>(Int32(b[0]), Int32(b[1]), Int32(b[2]), Int32(b[3]), Int32(b[4]), Int32(b[5]), Int32(b[6]), Int32(b[7]))
        }
        return (q(2), q(10), q(18), q(26))
    }
}

/// `d`, then 16 bytes of nibbles: `d·(q − 8)`.
public enum Q4_0Block: IntegerInterleavedBlock {
    @inlinable public static var format: QuantizedBlockFormat { .q4_0 }
    @inlinable public static var bytes: Int { 18 }
    @inlinable public static var scaleBytes: Int { 2 }
    @inlinable @inline(__always)
    public static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, _: M.Type) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let d = SIMD8<Float>(repeating: blockScale(block, M.self))
        let (q0, q1, q2, q3) = nibbles(block + 2)
        @inline(__always) func values(_ q: SIMD8<Int32>) -> SIMD8<Float> { d * (exactFloats(q) - 8) }
        return (values(q0), values(q1), values(q2), values(q3))
    }
    @inlinable @inline(__always)
    public static func integerDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float> {
        nibbleDot(block + 2, x, M.self)
    }
    @inlinable public static var scaleBits: UInt32 { 0xFFFF }
    @inlinable public static var minimumWeights: (even: Float, odd: Float) { (-8, 0) }

    /// Interleaved: four chunks of sixteen 32-bit words, word `r` of chunk `c` holding bytes
    /// `4c ..< 4c + 4` of row `r`'s sixteen bytes of nibbles.
    @inlinable public static var interleavedPieceBytes: Int { 4 }
    @inlinable public static var interleavedInputOrder: InterleavedInputOrder { .nibbleWords }
    @inlinable @inline(__always)
    public static func accumulateInterleaved<M: MultiplyAdd>(_ p: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSum: Float,
                                                             _ sum: inout SIMD16<Float>, _: M.Type) {
        // d·(q − 8) summed is d·(Σq·x − 8·Σx).
        let t = attention_nibble_block_dot(p + interleavedIntegers, x)
        sum = M.multiplyAdd(interleavedScales(p, 0, M.self), t - SIMD16(repeating: 8 * xSum), sum)
    }
    @inlinable @inline(__always)
    public static func dequantizeInterleaved<M: MultiplyAdd>(_ p: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, stride: Int,
                                                             scales: UnsafeMutablePointer<Float>, _: M.Type) {
        store(interleavedScales(p, 0, M.self), scales)
        attention_nibble_block_values(p + interleavedIntegers, scales, nil, out, stride)
    }

    @inlinable public static var integerLayout: InterleavedIntegerLayout { .nibbles }
    @inlinable @inline(__always)
    public static func integers(_ block: UnsafeRawPointer) -> (SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>) {
        nibbles(block + scaleBytes)
    }
}

/// `d`, `m`, then 16 bytes of nibbles: `d·q + m`.
public enum Q4_1Block: IntegerInterleavedBlock {
    @inlinable public static var format: QuantizedBlockFormat { .q4_1 }
    @inlinable public static var bytes: Int { 20 }
    @inlinable public static var scaleBytes: Int { 4 }
    @inlinable @inline(__always)
    public static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, _: M.Type) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let d = SIMD8<Float>(repeating: blockScale(block, M.self))
        let m = SIMD8<Float>(repeating: blockScale(block + 2, M.self))
        let (q0, q1, q2, q3) = nibbles(block + 4)
        @inline(__always) func values(_ q: SIMD8<Int32>) -> SIMD8<Float> { d * exactFloats(q) + m }
        return (values(q0), values(q1), values(q2), values(q3))
    }
    @inlinable @inline(__always)
    public static func integerDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float> {
        nibbleDot(block + 4, x, M.self)
    }
    @inlinable public static var scaleBits: UInt32 { 0xFFFF_FFFF }
    @inlinable public static var minimumWeights: (even: Float, odd: Float) { (0, 1) }

    /// Interleaved: as Q4_0, after the sixteen `d` and the sixteen `m`.
    @inlinable public static var interleavedPieceBytes: Int { 4 }
    @inlinable public static var interleavedInputOrder: InterleavedInputOrder { .nibbleWords }
    @inlinable @inline(__always)
    public static func accumulateInterleaved<M: MultiplyAdd>(_ p: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSum: Float,
                                                             _ sum: inout SIMD16<Float>, _: M.Type) {
        let t = attention_nibble_block_dot(p + interleavedIntegers, x)
        sum = M.multiplyAdd(interleavedScales(p, 0, M.self), t, sum)
        sum = M.multiplyAdd(interleavedScales(p, 1, M.self), SIMD16(repeating: xSum), sum)
    }
    @inlinable @inline(__always)
    public static func dequantizeInterleaved<M: MultiplyAdd>(_ p: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, stride: Int,
                                                             scales: UnsafeMutablePointer<Float>, _: M.Type) {
        store(interleavedScales(p, 0, M.self), scales)
        store(interleavedScales(p, 1, M.self), scales + quantizedGroupRows)
        attention_nibble_block_values(p + interleavedIntegers, scales, scales + quantizedGroupRows, out, stride)
    }

    @inlinable public static var integerLayout: InterleavedIntegerLayout { .nibbles }
    @inlinable @inline(__always)
    public static func integers(_ block: UnsafeRawPointer) -> (SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>) {
        nibbles(block + scaleBytes)
    }
}

/// `d`, a word of fifth bits, then 16 bytes of nibbles: `d·(q − 16)` with `q = nibble | bit << 4`.
public enum Q5_0Block: IntegerInterleavedBlock {
    @inlinable public static var format: QuantizedBlockFormat { .q5_0 }
    @inlinable public static var bytes: Int { 22 }
    @inlinable public static var scaleBytes: Int { 2 }
    /// The 32 integers `q` (0 ... 31) in element order.
    @inlinable @inline(__always)
    public static func integers(_ block: UnsafeRawPointer) -> (SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>) {
        let high = SIMD8<UInt32>(repeating: UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
        let lanes = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7)
        @inline(__always) func fifth(_ first: UInt32) -> SIMD8<Int32> { SIMD8<Int32>(truncatingIfNeeded: ((high &>> (lanes &+ first)) & 1) &<< 4) }
        let (q0, q1, q2, q3) = nibbles(block + 6)
        return (q0 | fifth(0), q1 | fifth(8), q2 | fifth(16), q3 | fifth(24))
    }
    @inlinable @inline(__always)
    public static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, _: M.Type) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let d = SIMD8<Float>(repeating: blockScale(block, M.self))
        let (q0, q1, q2, q3) = integers(block)
        @inline(__always) func values(_ q: SIMD8<Int32>) -> SIMD8<Float> { d * exactFloats(q &- 16) }
        return (values(q0), values(q1), values(q2), values(q3))
    }
    @inlinable @inline(__always)
    public static func integerDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float> {
        let (q0, q1, q2, q3) = integers(block)
        return blockDot((exactFloats(q0), exactFloats(q1), exactFloats(q2), exactFloats(q3)), x, M.self)
    }
    @inlinable public static var scaleBits: UInt32 { 0xFFFF }
    @inlinable public static var minimumWeights: (even: Float, odd: Float) { (-16, 0) }

    /// Interleaved: the sixteen rows' words of fifth bits, then Q4_0's four chunks of nibble words.
    /// The products run in Swift vectors, element by element (no vector form of the nibble
    /// words' pre-scaled input yet): each element's sixteen integers are one vector.
    @inlinable public static var interleavedPieceBytes: Int { 4 }
    @inlinable public static var interleavedInputOrder: InterleavedInputOrder { .elements }
    /// The sixteen rows' words of an interleaved block: their fifth bits, and the four chunks of
    /// nibble bytes (word `c` holding bytes `4c ..< 4c + 4` of each row's sixteen), each loaded once.
    @inlinable @inline(__always)
    static func interleavedWords(_ p: UnsafeRawPointer) -> (high: SIMD16<UInt32>, chunks: (SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>)) {
        let rows = quantizedGroupRows, integers = p + rows * scaleBytes
        @inline(__always) func word(_ piece: Int) -> SIMD16<UInt32> { integers.loadUnaligned(fromByteOffset: 4 * rows * piece, as: SIMD16<UInt32>.self) }
        return (word(0), (word(1), word(2), word(3), word(4)))
    }
    /// Element `e`'s integers of the sixteen rows from their words: nibble `e / 16` of byte `e mod 16`
    /// (in chunk `(e mod 16) / 4`), and bit `e` of the fifth bits above it.
    @inlinable @inline(__always)
    static func interleavedIntegers(_ words: (high: SIMD16<UInt32>, chunks: (SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>)),
                                    element e: Int) -> SIMD16<Int32> {
        let byte = e % 16
        let chunk = switch byte / 4 { case 0: words.chunks.0; case 1: words.chunks.1; case 2: words.chunks.2; default: words.chunks.3 }
        let nibble = (chunk &>> UInt32(8 * (byte % 4) + 4 * (e / 16))) & 0x0F
        return SIMD16<Int32>(truncatingIfNeeded: nibble | (((words.high &>> UInt32(e)) & 1) &<< 4))
    }
    /// `Σ q·x` of the sixteen rows from their words (``interleavedWords(_:)``) and the 32 inputs `x`.
    @inlinable @inline(__always)
    static func interleavedDot<M: MultiplyAdd>(
        _ words: (high: SIMD16<UInt32>, chunks: (SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>)),
        _ x: UnsafePointer<Float>, _: M.Type
    ) -> SIMD16<Float> {
        var t0 = SIMD16<Float>.zero, t1 = t0, t2 = t0, t3 = t0
        for e in stride(from: 0, to: 32, by: 4) {
            t0 = M.multiplyAdd(exactFloats(interleavedIntegers(words, element: e)), SIMD16(repeating: x[e]), t0)
            t1 = M.multiplyAdd(exactFloats(interleavedIntegers(words, element: e + 1)), SIMD16(repeating: x[e + 1]), t1)
            t2 = M.multiplyAdd(exactFloats(interleavedIntegers(words, element: e + 2)), SIMD16(repeating: x[e + 2]), t2)
            t3 = M.multiplyAdd(exactFloats(interleavedIntegers(words, element: e + 3)), SIMD16(repeating: x[e + 3]), t3)
        }
        return (t0 + t1) + (t2 + t3)
    }
    @inlinable @inline(__always)
    public static func accumulateInterleaved<M: MultiplyAdd>(_ p: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSum: Float,
                                                             _ sum: inout SIMD16<Float>, _: M.Type) {
        // d·(q − 16) summed is d·(Σq·x − 16·Σx).
        let t = interleavedDot(interleavedWords(p), x, M.self)
        sum = M.multiplyAdd(interleavedScales(p, 0, M.self), t - SIMD16(repeating: 16 * xSum), sum)
    }
    @inlinable @inline(__always)
    public static func dequantizeInterleaved<M: MultiplyAdd>(_ p: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, stride: Int,
                                                             scales: UnsafeMutablePointer<Float>, _: M.Type) {
        let d = interleavedScales(p, 0, M.self), words = interleavedWords(p)
        for e in 0..<32 { store(d * exactFloats(interleavedIntegers(words, element: e) &- 16), out + stride * e) }
    }
    /// Integer products: the nibble words after the words of fifth bits, which the products spread
    /// into each byte's bit 4.
    @inlinable public static var integerLayout: InterleavedIntegerLayout { .nibblesWithFifthBits }
}

/// `d`, `m`, a word of fifth bits, then 16 bytes of nibbles: `d·q + m` with `q = nibble | bit << 4`.
/// Q5_0's integers after one more half-precision scale, so Q5_0's helpers read them from two bytes
/// further on (sixteen rows' `m`, 32 bytes, in the interleaved layout).
public enum Q5_1Block: IntegerInterleavedBlock {
    @inlinable public static var format: QuantizedBlockFormat { .q5_1 }
    @inlinable public static var bytes: Int { 24 }
    @inlinable public static var scaleBytes: Int { 4 }
    /// The 32 integers `q` (0 ... 31) in element order.
    @inlinable @inline(__always)
    public static func integers(_ block: UnsafeRawPointer) -> (SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>) {
        Q5_0Block.integers(block + 2)
    }
    @inlinable @inline(__always)
    public static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, _: M.Type) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let d = SIMD8<Float>(repeating: blockScale(block, M.self))
        let m = SIMD8<Float>(repeating: blockScale(block + 2, M.self))
        let (q0, q1, q2, q3) = integers(block)
        @inline(__always) func values(_ q: SIMD8<Int32>) -> SIMD8<Float> { d * exactFloats(q) + m }
        return (values(q0), values(q1), values(q2), values(q3))
    }
    @inlinable @inline(__always)
    public static func integerDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float> {
        Q5_0Block.integerDot(block + 2, x, M.self)
    }
    @inlinable public static var scaleBits: UInt32 { 0xFFFF_FFFF }
    @inlinable public static var minimumWeights: (even: Float, odd: Float) { (0, 1) }

    /// Interleaved: the sixteen `d`, the sixteen `m`, then Q5_0's words of fifth bits and nibbles.
    @inlinable public static var interleavedPieceBytes: Int { 4 }
    @inlinable public static var interleavedInputOrder: InterleavedInputOrder { .elements }
    /// Q5_0's words of the group's block at `p`, after the sixteen `m` Q5_0 does not have.
    @inlinable @inline(__always)
    static func interleavedWords(_ p: UnsafeRawPointer) -> (high: SIMD16<UInt32>, chunks: (SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>, SIMD16<UInt32>)) {
        Q5_0Block.interleavedWords(p + 2 * quantizedGroupRows)
    }
    @inlinable @inline(__always)
    public static func accumulateInterleaved<M: MultiplyAdd>(_ p: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSum: Float,
                                                             _ sum: inout SIMD16<Float>, _: M.Type) {
        // d·q + m summed is d·Σq·x + m·Σx.
        sum = M.multiplyAdd(interleavedScales(p, 0, M.self), Q5_0Block.interleavedDot(interleavedWords(p), x, M.self), sum)
        sum = M.multiplyAdd(interleavedScales(p, 1, M.self), SIMD16(repeating: xSum), sum)
    }
    @inlinable @inline(__always)
    public static func dequantizeInterleaved<M: MultiplyAdd>(_ p: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, stride: Int,
                                                             scales: UnsafeMutablePointer<Float>, _: M.Type) {
        let d = interleavedScales(p, 0, M.self), m = interleavedScales(p, 1, M.self), words = interleavedWords(p)
        for e in 0..<32 { store(d * exactFloats(Q5_0Block.interleavedIntegers(words, element: e)) + m, out + stride * e) }
    }
    /// Integer products: as Q5_0's, with Q4_1's minimum.
    @inlinable public static var integerLayout: InterleavedIntegerLayout { .nibblesWithFifthBits }
}

// MARK: - Helpers of the arithmetic

/// The exact Float value of each signed byte: one sign-extension and one conversion (written lane
/// by lane: the standard library's generic SIMD conversions are sometimes left as calls that
/// convert one lane at a time).
@inlinable @inline(__always)
func exactFloats(_ b: SIMD8<Int8>) -> SIMD8<Float> {
    let i = SIMD8<Int32>(Int32(b[0]), Int32(b[1]), Int32(b[2]), Int32(b[3]), Int32(b[4]), Int32(b[5]), Int32(b[6]), Int32(b[7]))
    return SIMD8<Float>(Float(i[0]), Float(i[1]), Float(i[2]), Float(i[3]), Float(i[4]), Float(i[5]), Float(i[6]), Float(i[7]))
}

/// The exact Float value of small integers (below 2^24 in magnitude): one conversion.
@inlinable @inline(__always)
func exactFloats(_ i: SIMD8<Int32>) -> SIMD8<Float> {
    SIMD8<Float>(Float(i[0]), Float(i[1]), Float(i[2]), Float(i[3]), Float(i[4]), Float(i[5]), Float(i[6]), Float(i[7]))
}

/// The exact Float value of sixteen small integers (below 2^24 in magnitude): one conversion.
@inlinable @inline(__always)
func exactFloats(_ i: SIMD16<Int32>) -> SIMD16<Float> {
    SIMD16<Float>(lowHalf: exactFloats(i.lowHalf), highHalf: exactFloats(i.highHalf))
}

/// Bytes zero-extended to 32-bit lanes: one vector zero-extension.
@inlinable @inline(__always)
func zeroExtended(_ b: SIMD8<UInt8>) -> SIMD8<Int32> {
    SIMD8<Int32>(Int32(b[0]), Int32(b[1]), Int32(b[2]), Int32(b[3]), Int32(b[4]), Int32(b[5]), Int32(b[6]), Int32(b[7]))
}

/// The 32 integers of 16 bytes of nibbles at `q` (low nibbles elements 0..<16, high 16..<32), in
/// element order: each eight bytes widened once to 32-bit lanes, where a mask gives the low nibbles
/// and a shift the high ones.
@inlinable @inline(__always)
func nibbles(_ q: UnsafeRawPointer) -> (SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>) {
    let a = zeroExtended(q.loadUnaligned(as: SIMD8<UInt8>.self)), b = zeroExtended(q.loadUnaligned(fromByteOffset: 8, as: SIMD8<UInt8>.self))
    return (a & 0x0F, b & 0x0F, a &>> 4, b &>> 4)
}

/// `Σ q·x` in lanes for a block's 32 integers as four vectors of exact floats, in element order.
@inlinable @inline(__always)
func blockDot<M: MultiplyAdd>(_ q: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>), _ x: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float> {
    var t = q.0 * load8(x)
    t = M.multiplyAdd(q.1, load8(x + 8), t)
    t = M.multiplyAdd(q.2, load8(x + 16), t)
    return M.multiplyAdd(q.3, load8(x + 24), t)
}

/// `Σ q·x` for the 32 nibbles at `q` (see ``nibbles(_:)``).
@inlinable @inline(__always)
func nibbleDot<M: MultiplyAdd>(_ q: UnsafeRawPointer, _ x: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float> {
    let (q0, q1, q2, q3) = nibbles(q)
    return blockDot((exactFloats(q0), exactFloats(q1), exactFloats(q2), exactFloats(q3)), x, M.self)
}


/// A block's half-precision scale at `p`, as Float.
@inlinable @inline(__always)
func blockScale<M: MultiplyAdd>(_ p: UnsafeRawPointer, _: M.Type) -> Float {
    let bits = UInt16(littleEndian: p.loadUnaligned(as: UInt16.self))
    #if !(os(macOS) && arch(x86_64))
    if M.convertsHalfPrecision { return Float(Float16(bitPattern: bits)) }
    #endif
    return HalfBits(bitPattern: bits).floatValue
}
