/// Products with a weight stored in ggml's 32-element blocks (Q8_0, Q4_0, Q4_1), read as the file
/// stores them: each block's integers and half-precision scales become Float in registers, and the
/// products accumulate in Float. Nothing is dequantized into memory beyond one panel of 32 outputs
/// (for products of many rows), so a model keeps the few bits per weight its file has.
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

    /// Bytes per block of 32 elements.
    @inlinable public var bytesPerBlock: Int {
        switch self {
        case .q8_0: 34
        case .q4_0: 18
        case .q4_1: 20
        }
    }
}

/// One block format's arithmetic: its 32 values as four vectors of eight, in element order, and its
/// dot product with 32 floats.
public protocol QuantizedBlock {
    /// The format this arithmetic is for.
    static var format: QuantizedBlockFormat { get }
    static var bytes: Int { get }
    static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, _: M.Type) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)
    /// Adds the block's dot product with `x[0..<32]` (whose sum is `xSum`) to `sum`, in lanes, and its
    /// minimum's share (`m·xSum`, for formats with one) to `minimumSum`: `d·Σ q·x + m·Σ x`, so that
    /// the scales multiply once per block rather than once per value.
    static func accumulateDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSum: Float,
                                              _ sum: inout SIMD8<Float>, _ minimumSum: inout Float, _: M.Type)
    /// `Σ q·x` over the block's 32 integers `q` (before the scale), in lanes.
    static func integerDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float>
    /// The bits of a block's first four bytes that hold half-precision scales: `d` alone (low half),
    /// or `d` and `m`.
    static var scaleBits: UInt32 { get }
    /// What multiplies each block's input sum `Σ x` in the even (`d`) and odd (`m`) lanes of
    /// ``fourScales(_:_:)``: `(0, 1)` for `m·Σx`, `(−8, 0)` for Q4_0's `−8d·Σx`, `(0, 0)` for none.
    static var minimumWeights: (even: Float, odd: Float) { get }
}

extension QuantizedBlock {
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
}

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

/// `d`, then 32 signed bytes.
public enum Q8_0Block: QuantizedBlock {
    @inlinable public static var format: QuantizedBlockFormat { .q8_0 }
    @inlinable public static var bytes: Int { 34 }
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
    public static func accumulateDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSum: Float,
                                                     _ sum: inout SIMD8<Float>, _ minimumSum: inout Float, _: M.Type) {
        sum = M.multiplyAdd(SIMD8(repeating: blockScale(block, M.self)), integerDot(block, x, M.self), sum)
    }
    @inlinable @inline(__always)
    public static func integerDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float> {
        @inline(__always) func q(_ at: Int) -> SIMD8<Float> { exactFloats(block.loadUnaligned(fromByteOffset: at, as: SIMD8<Int8>.self)) }
        return blockDot((q(2), q(10), q(18), q(26)), x, M.self)
    }
    @inlinable public static var scaleBits: UInt32 { 0xFFFF }
    @inlinable public static var minimumWeights: (even: Float, odd: Float) { (0, 0) }
}

/// `d`, then 16 bytes of nibbles: `d·(q − 8)`.
public enum Q4_0Block: QuantizedBlock {
    @inlinable public static var format: QuantizedBlockFormat { .q4_0 }
    @inlinable public static var bytes: Int { 18 }
    @inlinable @inline(__always)
    public static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, _: M.Type) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let d = SIMD8<Float>(repeating: blockScale(block, M.self))
        let (q0, q1, q2, q3) = nibbles(block + 2)
        @inline(__always) func values(_ q: SIMD8<Int32>) -> SIMD8<Float> { d * (exactFloats(q) - 8) }
        return (values(q0), values(q1), values(q2), values(q3))
    }
    @inlinable @inline(__always)
    public static func accumulateDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSum: Float,
                                                     _ sum: inout SIMD8<Float>, _ minimumSum: inout Float, _: M.Type) {
        let d = blockScale(block, M.self)
        // d·(q − 8)·x = d·q·x − 8d·x: the offset joins the minimum's sum.
        sum = M.multiplyAdd(SIMD8(repeating: d), nibbleDot(block + 2, x, M.self), sum)
        minimumSum = minimumSum.addingProduct(-8 * d, xSum)
    }
    @inlinable @inline(__always)
    public static func integerDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float> {
        nibbleDot(block + 2, x, M.self)
    }
    @inlinable public static var scaleBits: UInt32 { 0xFFFF }
    @inlinable public static var minimumWeights: (even: Float, odd: Float) { (-8, 0) }
}

/// `d`, `m`, then 16 bytes of nibbles: `d·q + m`.
public enum Q4_1Block: QuantizedBlock {
    @inlinable public static var format: QuantizedBlockFormat { .q4_1 }
    @inlinable public static var bytes: Int { 20 }
    @inlinable @inline(__always)
    public static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, _: M.Type) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let d = SIMD8<Float>(repeating: blockScale(block, M.self))
        let m = SIMD8<Float>(repeating: blockScale(block + 2, M.self))
        let (q0, q1, q2, q3) = nibbles(block + 4)
        @inline(__always) func values(_ q: SIMD8<Int32>) -> SIMD8<Float> { d * exactFloats(q) + m }
        return (values(q0), values(q1), values(q2), values(q3))
    }
    @inlinable @inline(__always)
    public static func accumulateDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSum: Float,
                                                     _ sum: inout SIMD8<Float>, _ minimumSum: inout Float, _: M.Type) {
        sum = M.multiplyAdd(SIMD8(repeating: blockScale(block, M.self)), nibbleDot(block + 4, x, M.self), sum)
        minimumSum = minimumSum.addingProduct(blockScale(block + 2, M.self), xSum)
    }
    @inlinable @inline(__always)
    public static func integerDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, _: M.Type) -> SIMD8<Float> {
        nibbleDot(block + 4, x, M.self)
    }
    @inlinable public static var scaleBits: UInt32 { 0xFFFF_FFFF }
    @inlinable public static var minimumWeights: (even: Float, odd: Float) { (0, 1) }
}

/// Row `row` of a block-quantized `[n, k]` matrix in the file's layout, dequantized into `into[0..<k]`.
@inlinable @inline(__always)
func dequantizeRow<B: QuantizedBlock, M: MultiplyAdd>(
    _ weight: UnsafeRawPointer, row: Int, k: Int, into: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    let blocks = k / 32
    var p = weight + row * blocks * B.bytes
    for b in 0..<blocks {
        let (w0, w1, w2, w3) = B.dequantize(p, M.self)
        let out = into + 32 * b
        store8(w0, out); store8(w1, out + 8); store8(w2, out + 16); store8(w3, out + 24)
        p += B.bytes
    }
}

/// `y[r][o] = Σ_j x[r][j] · w[o][j]` for `o` in `outputs` and `r < rows`: `x [rows, k]` row-major, `w`
/// `[n, k]` in blocks of 32 along `k` (`k` a multiple of 32), `y [rows, n]`.
///
/// One row (a decoding step) reads each block once and multiplies it from registers. A few rows
/// dequantize each block of sixteen interleaved weight rows once and take every input row's products
/// from there, the sixteen outputs in lanes; the remainder rows are dequantized one by one into
/// `scratch` (``quantizedRowsScratch(k:rows:)`` floats, in L1). The sums run in the same order
/// whatever the range, so results do not depend on how the outputs are shared among threads.
@inlinable @inline(__always)
public func multiplyQuantizedRows<M: MultiplyAdd>(
    x: UnsafePointer<Float>, rows: Int, weight: UnsafeRawPointer, interleaved: InterleavedRows, format: QuantizedBlockFormat,
    y: UnsafeMutablePointer<Float>, outputs: Range<Int>, n: Int, k: Int, scratch: UnsafeMutablePointer<Float>, _: M.Type
) {
    switch format {
    case .q8_0: multiplyQuantizedRows(x, rows, weight, interleaved, y, outputs, n, k, scratch, Q8_0Block.self, M.self)
    case .q4_0: multiplyQuantizedRows(x, rows, weight, interleaved, y, outputs, n, k, scratch, Q4_0Block.self, M.self)
    case .q4_1: multiplyQuantizedRows(x, rows, weight, interleaved, y, outputs, n, k, scratch, Q4_1Block.self, M.self)
    }
}

@inlinable @inline(__always)
func multiplyQuantizedRows<B: QuantizedBlock, M: MultiplyAdd>(
    _ x: UnsafePointer<Float>, _ rows: Int, _ weight: UnsafeRawPointer, _ interleaved: InterleavedRows, _ y: UnsafeMutablePointer<Float>,
    _ outputs: Range<Int>, _ n: Int, _ k: Int, _ scratch: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    let blocks = k / 32, rowBytes = blocks * B.bytes
    if rows == 1 {
        // The input's sum per block, for the minimums (and Q4_0's offset): as `xSums[b]`, and as
        // the pairs (even·Σx, odd·Σx) that multiply ``QuantizedBlock/fourScales(_:_:)``'s lanes.
        let xSums = scratch, weightedSums = scratch + blocks
        let (even, odd) = B.minimumWeights
        for b in 0..<blocks {
            let xb = x + 32 * b
            xSums[b] = ((load8(xb) + load8(xb + 8)) + (load8(xb + 16) + load8(xb + 24))).sum()
            weightedSums[2 * b] = even * xSums[b]
            weightedSums[2 * b + 1] = odd * xSums[b]
        }
        let hasMinimum = even != 0 || odd != 0
        for o in outputs {
            var p = weight + o * rowBytes
            // Two accumulators, for even and odd blocks: two independent chains.
            var s0 = SIMD8<Float>.zero, s1 = s0, minimums = s0
            var m0: Float = 0, m1: Float = 0
            var b = 0
            // Four blocks at a time share one conversion of their scales.
            while b + 3 < blocks {
                let scales = B.fourScales(p, M.self)
                let xb = x + 32 * b
                s0 = M.multiplyAdd(SIMD8(repeating: scales[0]), B.integerDot(p, xb, M.self), s0)
                s1 = M.multiplyAdd(SIMD8(repeating: scales[2]), B.integerDot(p + B.bytes, xb + 32, M.self), s1)
                s0 = M.multiplyAdd(SIMD8(repeating: scales[4]), B.integerDot(p + 2 * B.bytes, xb + 64, M.self), s0)
                s1 = M.multiplyAdd(SIMD8(repeating: scales[6]), B.integerDot(p + 3 * B.bytes, xb + 96, M.self), s1)
                if hasMinimum { minimums = M.multiplyAdd(scales, load8(weightedSums + 2 * b), minimums) }
                p += 4 * B.bytes
                b += 4
            }
            while b + 1 < blocks {
                B.accumulateDot(p, x + 32 * b, xSum: xSums[b], &s0, &m0, M.self)
                B.accumulateDot(p + B.bytes, x + 32 * b + 32, xSum: xSums[b + 1], &s1, &m1, M.self)
                p += 2 * B.bytes
                b += 2
            }
            if b < blocks { B.accumulateDot(p, x + 32 * b, xSum: xSums[b], &s0, &m0, M.self) }
            // One reduction of the lanes, by halving (`.sum()` reduces lane by lane), then the scalar minimums.
            y[o] = horizontalSum((s0 + s1) + minimums) + (m0 + m1)
        }
        return
    }
    // Rows interleaved by sixteen: the outputs' groups, each block dequantized once for all rows.
    let interleavedEnd = min(outputs.upperBound, max(outputs.lowerBound, quantizedGroupRows * interleaved.groups))
    var o = outputs.lowerBound
    while o < interleavedEnd {
        let g = o / quantizedGroupRows
        let groupOutputs = o..<min(interleavedEnd, quantizedGroupRows * (g + 1))
        multiplyInterleavedGroupRows(x, rows: rows, interleaved, group: g, blocks: blocks, format: B.format,
                                     y: y, n: n, outputs: groupOutputs, scratch: scratch, M.self)
        o = groupOutputs.upperBound
    }
    // The remainder rows, from the file's layout: each row dequantized once into `scratch`.
    for o in interleavedEnd..<outputs.upperBound {
        dequantizeRow(weight, row: o, k: k, into: scratch, B.self, M.self)
        for r in 0..<rows {
            let xr = x + r * k
            var s0 = SIMD8<Float>.zero, s1 = s0, s2 = s0, s3 = s0
            var j = 0
            while j < k {
                s0 = M.multiplyAdd(load8(xr + j), load8(scratch + j), s0); s1 = M.multiplyAdd(load8(xr + j + 8), load8(scratch + j + 8), s1)
                s2 = M.multiplyAdd(load8(xr + j + 16), load8(scratch + j + 16), s2); s3 = M.multiplyAdd(load8(xr + j + 24), load8(scratch + j + 24), s3)
                j += 32
            }
            y[r * n + o] = ((s0 + s1) + (s2 + s3)).sum()
        }
    }
}

/// Floats of scratch ``multiplyQuantizedRows(x:rows:weight:interleaved:format:y:outputs:n:k:scratch:_:)`` needs.
@inlinable
public func quantizedRowsScratch(k: Int, rows: Int) -> Int { max(k, interleavedGroupRowsScratch(rows: rows)) }

/// Floats of scratch ``multiplyQuantizedPanels(a:rows:weight:interleaved:format:c:panels:n:k:scratch:_:)`` needs.
@inlinable
public func quantizedPanelScratch(k: Int) -> Int { 32 * k + k + 8 * (k + 32) }

/// `C[rows, n] = A[rows, k] · Wᵀ` for the 32-column panels `panels` of C: `A` row-major, `W [n, k]` in
/// blocks of 32 along `k`. Each panel's 32 weight rows are dequantized once into `scratch` (see
/// ``quantizedPanelScratch(k:)``), transposed into the layout of the 8 × 32 micro-kernel, and every
/// 8-row block of `A` is multiplied with it: the dequantization is paid once per 32 outputs, not once
/// per row, and the product runs at the micro-kernel's speed.
@inlinable @inline(__always)
public func multiplyQuantizedPanels<M: MultiplyAdd>(
    a: UnsafePointer<Float>, rows: Int, weight: UnsafeRawPointer, interleaved: InterleavedRows, format: QuantizedBlockFormat,
    c: UnsafeMutablePointer<Float>, panels: Range<Int>, n: Int, k: Int, scratch: UnsafeMutablePointer<Float>, _: M.Type
) {
    switch format {
    case .q8_0: multiplyQuantizedPanels(a, rows, weight, interleaved, c, panels, n, k, scratch, Q8_0Block.self, M.self)
    case .q4_0: multiplyQuantizedPanels(a, rows, weight, interleaved, c, panels, n, k, scratch, Q4_0Block.self, M.self)
    case .q4_1: multiplyQuantizedPanels(a, rows, weight, interleaved, c, panels, n, k, scratch, Q4_1Block.self, M.self)
    }
}

@inlinable @inline(__always)
func multiplyQuantizedPanels<B: QuantizedBlock, M: MultiplyAdd>(
    _ a: UnsafePointer<Float>, _ rows: Int, _ weight: UnsafeRawPointer, _ interleaved: InterleavedRows, _ c: UnsafeMutablePointer<Float>,
    _ panels: Range<Int>, _ n: Int, _ k: Int, _ scratch: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    let panel = scratch, row = scratch + 32 * k, paddedA = row + k, tileC = paddedA + 8 * k
    for p in panels {
        let c0 = p * 32, width = min(32, n - c0)
        var j = 0
        while j < 32 {
            // Sixteen interleaved rows at once, in vectors; the rest row by row.
            let group = (c0 + j) / quantizedGroupRows
            if j % quantizedGroupRows == 0 && group < interleaved.groups {
                dequantizeInterleavedGroup(interleaved, group: group, blocks: k / 32, format: B.format, into: panel + j, stride: 32,
                                           scales: row, M.self)
                j += quantizedGroupRows
                continue
            }
            if j < width {
                dequantizeRow(weight, row: c0 + j, k: k, into: row, B.self, M.self)
                for kk in 0..<k { panel[kk * 32 + j] = row[kk] }
            } else {
                for kk in 0..<k { panel[kk * 32 + j] = 0 }
            }
            j += 1
        }
        var r0 = 0
        while r0 < rows {
            let count = min(8, rows - r0)
            var aBlock = a + r0 * k
            if count < 8 {
                paddedA.update(repeating: 0, count: 8 * k)
                paddedA.update(from: aBlock, count: count * k)
                aBlock = UnsafePointer(paddedA)
            }
            if count == 8 && width == 32 {
                tile8x32(aBlock, k, panel, 32, c + r0 * n + c0, n, k, accumulate: false, M.self)
            } else {
                tile8x32(aBlock, k, panel, 32, tileC, 32, k, accumulate: false, M.self)
                for r in 0..<count { (c + (r0 + r) * n + c0).update(from: tileC + r * 32, count: width) }
            }
            r0 += 8
        }
    }
}
