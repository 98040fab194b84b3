import _KernelIntrinsics

/// Products of block-quantized weights with an input quantized to 8-bit integers, on the integer
/// units: what llama.cpp computes, in about a quarter of the instructions of dequantizing to Float.
///
/// Each input row is cut into blocks of 32 and each block quantized as ggml quantizes activations to
/// Q8_0 (``quantizeInput(_:rows:k:values:scales:sums:_:)``): a scale `dx = max|x| / 127`, integers
/// `xq = round(x / dx)` in −127 ... 127, and their sum `S = Σ xq`. A weight block of sixteen
/// interleaved rows then gives each row's exact `I = Σ q·xq` over the block in one 32-bit lane
/// (`attention_nibble_block_idot` and `attention_byte_block_idot` in `_KernelIntrinsics`:
/// `vpdpbusd` with AVX-512 VNNI), and the block's share of each output is, in Float,
///
///     y += (d·dx) · Float(I + even·S)  +  m · (dx·Float(S))·odd
///
/// with the format's ``InterleavedQuantizedBlock/minimumWeights`` `(even, odd)`: `d·(q − 8)` for
/// Q4_0, `d·q + m` for Q4_1, `d·(q − 16)` for Q5_0 and `d·q` for Q8_0 (whose signed bytes
/// `vpdpbusd` reads as `q + 128`, a bias taken back off as `−128·S`:
/// ``IntegerInterleavedBlock/integerBias``). So the result is the product of the weights with the
/// input rounded to 8 bits per block: the sums are exact integers whatever the instruction set, and
/// the Float steps are the same operations in the same order for every row, interleaved or not.

/// An input `[rows, k]` quantized per block of 32: `values [rows, k]`, and per row and block its
/// `scales`, integer `sums` and the sums of each block's first sixteen integers, `firstHalfSums`
/// (for Q6_K, whose scales cover sixteen values) (`[rows, k / 32]` each).
@frozen
public struct QuantizedInput: @unchecked Sendable {
    public let values: UnsafePointer<Int8>
    public let scales: UnsafePointer<Float>
    public let sums: UnsafePointer<Int32>
    public let firstHalfSums: UnsafePointer<Int32>
    /// Values per row, a multiple of 32.
    public let k: Int
    @inlinable public init(values: UnsafePointer<Int8>, scales: UnsafePointer<Float>, sums: UnsafePointer<Int32>,
                           firstHalfSums: UnsafePointer<Int32>, k: Int) {
        (self.values, self.scales, self.sums, self.firstHalfSums, self.k) = (values, scales, sums, firstHalfSums, k)
    }
    /// Blocks per row.
    @inlinable public var blocks: Int { k / 32 }
}

/// `rows` rows of `x [rows, k]` (`k` a multiple of 32) quantized per block into `values`, `scales`,
/// `sums` and `firstHalfSums` (see ``QuantizedInput``). A block holding a NaN or an infinity gets
/// the scale NaN, so the outputs it reaches are NaN rather than quietly finite.
@inlinable @inline(__always)
public func quantizeInput<M: MultiplyAdd>(_ x: UnsafePointer<Float>, rows: Int, k: Int, values: UnsafeMutablePointer<Int8>,
                                          scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Int32>,
                                          firstHalfSums: UnsafeMutablePointer<Int32>, _: M.Type) {
    for b in 0..<(rows * (k / 32)) {
        var sum: Int32 = 0, firstHalf: Int32 = 0
        scales[b] = attention_quantize_block(x + 32 * b, values + 32 * b, &sum, &firstHalf)
        sums[b] = sum
        firstHalfSums[b] = firstHalf
    }
}

/// How an ``IntegerInterleavedBlock``'s interleaved integers are laid out after the scales.
public enum InterleavedIntegerLayout: Sendable {
    /// Q4_0's four chunks of sixteen 32-bit words of nibbles (Q4_0, Q4_1).
    case nibbles
    /// A word of fifth bits per row (bit `e` for element `e`: `q = nibble + 16·bit`), then the
    /// nibbles (Q5_0).
    case nibblesWithFifthBits
    /// Eight chunks of sixteen 32-bit words of signed bytes, word `r` of chunk `c` holding elements
    /// `4c ..< 4c + 4` of row `r` (Q8_0).
    case signedBytes
}

/// A 32-value format whose products with a quantized input run on the integer units: nibbles (with
/// fifth bits or not) or signed bytes, interleaved in pieces of four bytes, so that each 32-bit lane
/// of a chunk holds four consecutive values of one row.
public protocol IntegerInterleavedBlock: InterleavedQuantizedBlock {
    /// The interleaved integers' layout.
    static var integerLayout: InterleavedIntegerLayout { get }
    /// The block's 32 integers `q` (before offset and scale), in element order, from the file's layout.
    static func integers(_ block: UnsafeRawPointer) -> (SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>)
}

extension IntegerInterleavedBlock {
    @inlinable @inline(__always)
    public static func kernels<M: MultiplyAdd>(_: M.Type) -> QuantizedFormatKernels { QuantizedFormatKernels(integer: Self.self, M.self) }

    /// The nibble words and the words of fifth bits (or nil) of the interleaved integers at `p`.
    @inlinable @inline(__always)
    static func integerWords(_ p: UnsafeRawPointer) -> (nibbles: UnsafeRawPointer, fifthBits: UnsafeRawPointer?) {
        integerLayout == .nibblesWithFifthBits ? (p + 4 * quantizedGroupRows, p) : (p, nil)
    }

    /// `Σ q·x` over the interleaved block of sixteen rows whose integers are at `p` (in the lanes)
    /// and the block's 32 input integers at `x`, plus ``integerBias`` times the input's sum.
    @inlinable @inline(__always)
    static func interleavedIntegerDot(_ p: UnsafeRawPointer, _ x: UnsafePointer<Int8>) -> SIMD16<Int32> {
        if integerLayout == .signedBytes { return attention_byte_block_idot1(p, x) }
        let words = integerWords(p)
        return attention_nibble_block_idot1(words.nibbles, words.fifthBits, x)
    }

    /// The same for four input rows at `x + stride·r`.
    @inlinable @inline(__always)
    static func interleavedIntegerDot4(_ p: UnsafeRawPointer, _ x: UnsafePointer<Int8>, stride: Int)
        -> (SIMD16<Int32>, SIMD16<Int32>, SIMD16<Int32>, SIMD16<Int32>) {
        var s = (SIMD16<Int32>.zero, SIMD16<Int32>.zero, SIMD16<Int32>.zero, SIMD16<Int32>.zero)
        withUnsafeMutableBytes(of: &s) {
            let out = OpaquePointer($0.baseAddress!)
            if integerLayout == .signedBytes {
                attention_byte_block_idot4(p, x, stride, out)
            } else {
                let words = integerWords(p)
                attention_nibble_block_idot4(words.nibbles, words.fifthBits, x, stride, out)
            }
        }
        return s
    }

    /// The same for eight input rows at `x + stride·r`.
    @inlinable @inline(__always)
    static func interleavedIntegerDot8(_ p: UnsafeRawPointer, _ x: UnsafePointer<Int8>, stride: Int)
        -> (SIMD16<Int32>, SIMD16<Int32>, SIMD16<Int32>, SIMD16<Int32>, SIMD16<Int32>, SIMD16<Int32>, SIMD16<Int32>, SIMD16<Int32>) {
        let zero = SIMD16<Int32>.zero
        var s = (zero, zero, zero, zero, zero, zero, zero, zero)
        withUnsafeMutableBytes(of: &s) {
            let out = OpaquePointer($0.baseAddress!)
            if integerLayout == .signedBytes {
                attention_byte_block_idot8(p, x, stride, out)
            } else {
                let words = integerWords(p)
                attention_nibble_block_idot8(words.nibbles, words.fifthBits, x, stride, out)
            }
        }
        return s
    }

    /// What the interleaved products add to each weight: 128 for bytes on `vpdpbusd` (which takes
    /// them unsigned), else 0. Compiled with the products, in the same module.
    @inlinable static var integerBias: Int32 { integerLayout == .signedBytes ? Int32(attention_byte_idot_bias()) : 0 }

    /// `I + even·S`: the integer sum with the format's offset (Q4_0's `−8·S`, Q5_0's `−16·S`) folded
    /// in, and the interleaved products' ``integerBias`` taken off when `biased`.
    @inlinable @inline(__always)
    static func offsetSum(_ dot: SIMD16<Int32>, _ s: Int32, biased: Bool) -> SIMD16<Int32> {
        let offset = Int32(minimumWeights.even) &- (biased ? integerBias : 0)
        return offset != 0 ? dot &+ SIMD16(repeating: offset &* s) : dot
    }

    /// One block's share of sixteen outputs (see the formula at the top of the file): `d` and `m` the
    /// rows' scales (`m` read only for formats with a minimum), `dot` the interleaved products' sums
    /// (with their ``integerBias``), or the exact `Σ q·x` when not `biased`.
    /// `minimum` is the block's ``minimumTerm(scale:sum:)``, which the kernels compute once per input
    /// row and block rather than for every group of sixteen outputs (on a batched decoding step, a
    /// scalar conversion and product per row and block that took the vector units' time).
    @inlinable @inline(__always)
    static func accumulateInteger<M: MultiplyAdd>(_ d: SIMD16<Float>, _ m: SIMD16<Float>, _ dot: SIMD16<Int32>, scale dx: Float, sum s: Int32,
                                                  minimum: Float, biased: Bool = true, _ acc: inout SIMD16<Float>, _: M.Type) {
        acc = M.multiplyAdd(d * dx, exactFloats(offsetSum(dot, s, biased: biased)), acc)
        if minimumWeights.odd != 0 { acc = M.multiplyAdd(m, SIMD16(repeating: minimum), acc) }
    }

    /// `odd · (dx · S)`: what multiplies a block's minimums `m` in the formula at the top of the file,
    /// for an input block of scale `dx` and integer sum `S`.
    @inlinable @inline(__always)
    static func minimumTerm(scale dx: Float, sum s: Int32) -> Float { minimumWeights.odd * (dx * Float(s)) }

    /// The same for one row from the file's layout, `dot` its exact `Σ q·x`, as lane 0 of the vector
    /// steps (so the value is the one the interleaved rows would give).
    @inlinable @inline(__always)
    static func accumulateInteger<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ dot: Int32, scale dx: Float, sum s: Int32,
                                                  _ acc: inout Float, _: M.Type) {
        let d = SIMD16<Float>(repeating: blockScale(block, M.self))
        let m = minimumWeights.odd != 0 ? SIMD16<Float>(repeating: blockScale(block + 2, M.self)) : .zero
        var lanes = SIMD16<Float>(repeating: acc)
        accumulateInteger(d, m, SIMD16(repeating: dot), scale: dx, sum: s, minimum: minimumTerm(scale: dx, sum: s), biased: false, &lanes, M.self)
        acc = lanes[0]
    }
}

/// `y[r·n + 16g + i] = Σ_j w[16g + i][j] · x[r][j]` for the interleaved groups `groups`, every input
/// row `r < rows` of `input` (see the top of the file). Four input rows at a time share each weight
/// block's loads and nibble masks; the rows left over go one by one. The first pass over a group
/// (four rows, or a single row in a decoding step) prefetches the blocks ahead: without it, a
/// batch of eight decoding rows ran at 60% of its speed on a product with k = 1536 (Zen 4).
@inlinable @inline(__always)
public func multiplyIntegerGroups<B: IntegerInterleavedBlock, M: MultiplyAdd>(
    _ input: QuantizedInput, rows: Int, interleaved: InterleavedRows, groups: Range<Int>,
    y: UnsafeMutablePointer<Float>, n: Int, _: B.Type, _: M.Type
) {
    guard let base = interleaved.base else { return }
    let blocks = input.blocks, k = input.k, lanes = quantizedGroupRows, groupBlock = lanes * B.bytes
    let hasMinimum = B.minimumWeights.odd != 0
    @inline(__always) func scales(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        (B.interleavedScales(p, 0, M.self), hasMinimum ? B.interleavedScales(p, 1, M.self) : .zero)
    }
    // Each input row and block's minimum term, once for all the groups. (Allocated, not a temporary
    // allocation: its closure would be compiled apart, in this module's baseline build, and the
    // whole kernel with it.)
    let minimums = UnsafeMutablePointer<Float>.allocate(capacity: hasMinimum ? rows * blocks : 1)
    defer { minimums.deallocate() }
    if hasMinimum { for i in 0..<(rows * blocks) { minimums[i] = B.minimumTerm(scale: input.scales[i], sum: input.sums[i]) } }
    for g in groups {
        let w = base + g * blocks * groupBlock
        var r = 0
        // With 32 registers, eight rows at a time: each block is unpacked once for all eight, and
        // the group is read from memory in one pass that computes as it reads (two passes of four
        // rows read it, then compute on it from the cache while memory idles).
        while M.registers == .wide && r + 8 <= rows {
            var a0 = SIMD16<Float>.zero, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
            let x = input.values + r * k, dx = input.scales + r * blocks, s = input.sums + r * blocks, t = minimums + r * blocks
            var p = w
            for b in 0..<blocks {
                if r == 0 { prefetchAhead(p, groupBlock) }
                let i = B.interleavedIntegerDot8(p + B.interleavedIntegers, x + 32 * b, stride: k)
                let (d, m) = scales(p)
                B.accumulateInteger(d, m, i.0, scale: dx[b], sum: s[b], minimum: t[b], &a0, M.self)
                B.accumulateInteger(d, m, i.1, scale: dx[b + blocks], sum: s[b + blocks], minimum: t[b + blocks], &a1, M.self)
                B.accumulateInteger(d, m, i.2, scale: dx[b + 2 * blocks], sum: s[b + 2 * blocks], minimum: t[b + 2 * blocks], &a2, M.self)
                B.accumulateInteger(d, m, i.3, scale: dx[b + 3 * blocks], sum: s[b + 3 * blocks], minimum: t[b + 3 * blocks], &a3, M.self)
                B.accumulateInteger(d, m, i.4, scale: dx[b + 4 * blocks], sum: s[b + 4 * blocks], minimum: t[b + 4 * blocks], &a4, M.self)
                B.accumulateInteger(d, m, i.5, scale: dx[b + 5 * blocks], sum: s[b + 5 * blocks], minimum: t[b + 5 * blocks], &a5, M.self)
                B.accumulateInteger(d, m, i.6, scale: dx[b + 6 * blocks], sum: s[b + 6 * blocks], minimum: t[b + 6 * blocks], &a6, M.self)
                B.accumulateInteger(d, m, i.7, scale: dx[b + 7 * blocks], sum: s[b + 7 * blocks], minimum: t[b + 7 * blocks], &a7, M.self)
                p += groupBlock
            }
            let out = y + r * n + lanes * g
            storeUnaligned(a0, out); storeUnaligned(a1, out + n); storeUnaligned(a2, out + 2 * n); storeUnaligned(a3, out + 3 * n)
            storeUnaligned(a4, out + 4 * n); storeUnaligned(a5, out + 5 * n); storeUnaligned(a6, out + 6 * n); storeUnaligned(a7, out + 7 * n)
            r += 8
        }
        while r + 4 <= rows {
            var a0 = SIMD16<Float>.zero, a1 = a0, a2 = a0, a3 = a0
            let x = input.values + r * k, dx = input.scales + r * blocks, s = input.sums + r * blocks, t = minimums + r * blocks
            var p = w
            for b in 0..<blocks {
                // The first pass over a group reads its blocks from memory: ask for those ahead.
                if r == 0 { prefetchAhead(p, groupBlock) }
                let (i0, i1, i2, i3) = B.interleavedIntegerDot4(p + B.interleavedIntegers, x + 32 * b, stride: k)
                let (d, m) = scales(p)
                B.accumulateInteger(d, m, i0, scale: dx[b], sum: s[b], minimum: t[b], &a0, M.self)
                B.accumulateInteger(d, m, i1, scale: dx[b + blocks], sum: s[b + blocks], minimum: t[b + blocks], &a1, M.self)
                B.accumulateInteger(d, m, i2, scale: dx[b + 2 * blocks], sum: s[b + 2 * blocks], minimum: t[b + 2 * blocks], &a2, M.self)
                B.accumulateInteger(d, m, i3, scale: dx[b + 3 * blocks], sum: s[b + 3 * blocks], minimum: t[b + 3 * blocks], &a3, M.self)
                p += groupBlock
            }
            let out = y + r * n + lanes * g
            storeUnaligned(a0, out); storeUnaligned(a1, out + n); storeUnaligned(a2, out + 2 * n); storeUnaligned(a3, out + 3 * n)
            r += 4
        }
        while r < rows {
            var acc = SIMD16<Float>.zero
            let x = input.values + r * k, dx = input.scales + r * blocks, s = input.sums + r * blocks, t = minimums + r * blocks
            var p = w
            for b in 0..<blocks {
                prefetchAhead(p, groupBlock, distance: singleRowIntegerPrefetchDistance)
                let (d, m) = scales(p)
                B.accumulateInteger(d, m, B.interleavedIntegerDot(p + B.interleavedIntegers, x + 32 * b), scale: dx[b], sum: s[b], minimum: t[b], &acc, M.self)
                p += groupBlock
            }
            storeUnaligned(acc, y + r * n + lanes * g)
            r += 1
        }
    }
}

/// The same products for the output rows `outputs` of a matrix in the file's layout (the rows past
/// its interleaved groups), one output and one input row at a time.
@inlinable @inline(__always)
public func multiplyIntegerStoredRows<B: IntegerInterleavedBlock, M: MultiplyAdd>(
    _ input: QuantizedInput, rows: Int, weight: UnsafeRawPointer, outputs: Range<Int>,
    y: UnsafeMutablePointer<Float>, n: Int, _: B.Type, _: M.Type
) {
    let blocks = input.blocks
    for o in outputs {
        for r in 0..<rows {
            var acc: Float = 0
            for b in 0..<blocks {
                let block = weight + (o * blocks + b) * B.bytes
                let (q0, q1, q2, q3) = B.integers(block)
                let x = input.values + r * input.k + 32 * b
                var dot: Int32 = 0
                for e in 0..<8 {
                    dot &+= q0[e] &* Int32(x[e]) &+ q1[e] &* Int32(x[8 + e]) &+ q2[e] &* Int32(x[16 + e]) &+ q3[e] &* Int32(x[24 + e])
                }
                B.accumulateInteger(block, dot, scale: input.scales[r * blocks + b], sum: input.sums[r * blocks + b], &acc, M.self)
            }
            y[r * n + o] = acc
        }
    }
}

/// Sixteen floats to `p`, which need not be aligned.
@inlinable @inline(__always)
func storeUnaligned(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}
