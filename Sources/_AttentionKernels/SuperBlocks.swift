/// The k-quants' super-blocks of 256 values, as the kernels read them: each format's values
/// computed in vectors of eight, bit for bit as the reference reader (`GGUF.TensorType.dequantize`)
/// computes them, `(d·s)·q − dmin·m` and `(d·s)·(q − 32)` rounded step by step, unfused; and each
/// block's dot product with 256 inputs from registers, its integers converted exactly and the
/// scales applied once per sub-block.

/// A format of super-blocks of 256 values: products of one row (decoding) take each block's dot
/// product from registers (``accumulateDot(_:_:xSums:_:_:)``); products of more rows dequantize a
/// weight row into L1 and multiply it there (``QuantizedFormatKernels/init(superBlocks:_:)``).
public protocol SuperQuantizedBlock: QuantizedBlock {
    /// Adds the block's dot product with `x[0..<256]` to `sum`, in lanes; `xSums[j]` is the sum of
    /// `x[32j ..< 32j + 32]` (for the minimums).
    static func accumulateDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSums: UnsafePointer<Float>,
                                              _ sum: inout SIMD8<Float>, _: M.Type)
}

extension SuperQuantizedBlock {
    @inlinable public static var values: Int { 256 }
    @inlinable @inline(__always)
    public static func kernels<M: MultiplyAdd>(_: M.Type) -> QuantizedFormatKernels { QuantizedFormatKernels(superBlocks: Self.self, M.self) }
}

/// `y[o] = Σ_j x[j] · w[o][j]` for `o` in `outputs`, one input row `x [k]` (`k` a multiple of 256),
/// `w [n, k]` in super-blocks: each block's dot product from registers, two blocks in independent
/// chains. `scratch` holds `k / 32` floats (the input's sums per 32).
@inlinable @inline(__always)
public func multiplySuperBlockRow<B: SuperQuantizedBlock, M: MultiplyAdd>(
    x: UnsafePointer<Float>, weight: UnsafeRawPointer, y: UnsafeMutablePointer<Float>, outputs: Range<Int>, k: Int,
    scratch xSums: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    let blocks = k / 256, rowBytes = blocks * B.bytes
    for s in 0..<(k / 32) {
        let xs = x + 32 * s
        xSums[s] = ((load8(xs) + load8(xs + 8)) + (load8(xs + 16) + load8(xs + 24))).sum()
    }
    for o in outputs {
        var p = weight + o * rowBytes
        var s0 = SIMD8<Float>.zero, s1 = s0
        var b = 0
        while b + 1 < blocks {
            B.accumulateDot(p, x + 256 * b, xSums: xSums + 8 * b, &s0, M.self)
            B.accumulateDot(p + B.bytes, x + 256 * b + 256, xSums: xSums + 8 * b + 8, &s1, M.self)
            p += 2 * B.bytes
            b += 2
        }
        if b < blocks { B.accumulateDot(p, x + 256 * b, xSums: xSums + 8 * b, &s0, M.self) }
        y[o] = horizontalSum(s0 + s1)
    }
}

/// Q4_K's and Q5_K's eight 6-bit scales and minimums from the 12 bytes at `p`: for `j < 4` the low
/// six bits of bytes `j` and `4 + j`; for `j ≥ 4` a nibble of byte `4 + j` (low: scale, high:
/// minimum) below the top two bits of bytes `j − 4` and `j`.
@inlinable @inline(__always)
func sixBitScales(_ p: UnsafeRawPointer) -> (scales: SIMD8<Int32>, minimums: SIMD8<Int32>) {
    let low = zeroExtended(p.loadUnaligned(as: SIMD8<UInt8>.self))   // bytes 0..<8
    let high = zeroExtended(SIMD8<UInt8>(lowHalf: p.loadUnaligned(fromByteOffset: 8, as: SIMD4<UInt8>.self), highHalf: .zero))   // bytes 8..<12
    var scales = SIMD8<Int32>.zero, minimums = SIMD8<Int32>.zero
    for j in 0..<4 {
        scales[j] = low[j] & 0x3F
        minimums[j] = low[4 + j] & 0x3F
        scales[4 + j] = (high[j] & 0x0F) | ((low[j] &>> 6) &<< 4)
        minimums[4 + j] = (high[j] &>> 4) | ((low[4 + j] &>> 6) &<< 4)
    }
    return (scales, minimums)
}

/// `d`, `dmin`, 12 bytes of scales and minimums, 128 bytes of nibbles: value `32j + i` is nibble
/// `j mod 2` of quant byte `32·(j / 2) + i`, times `d·s[j]`, less `dmin·m[j]`.
public enum Q4_KBlock: IntegerSuperBlock {
    @inlinable public static var format: QuantizedBlockFormat { .q4_k }
    @inlinable public static var bytes: Int { 144 }
    @inlinable public static var halfPrecisionScaleOffsets: [Int] { [0, 2] }
    @inlinable @inline(__always)
    public static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, _: M.Type) {
        dequantizeFourOrFiveBits(block, quants: 16, fifthBits: nil, into: out, M.self)
    }
    @inlinable @inline(__always)
    public static func accumulateDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSums: UnsafePointer<Float>,
                                                     _ sum: inout SIMD8<Float>, _: M.Type) {
        accumulateFourOrFiveBitDot(block, quants: 16, fifthBits: nil, x, xSums: xSums, &sum, M.self)
    }
}

/// As Q4_K with 32 bytes of fifth bits after the scales: bit `j` of byte `i` for value `32j + i`.
public enum Q5_KBlock: IntegerSuperBlock {
    @inlinable public static var format: QuantizedBlockFormat { .q5_k }
    @inlinable public static var bytes: Int { 176 }
    @inlinable public static var halfPrecisionScaleOffsets: [Int] { [0, 2] }
    @inlinable @inline(__always)
    public static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, _: M.Type) {
        dequantizeFourOrFiveBits(block, quants: 48, fifthBits: 16, into: out, M.self)
    }
    @inlinable @inline(__always)
    public static func accumulateDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSums: UnsafePointer<Float>,
                                                     _ sum: inout SIMD8<Float>, _: M.Type) {
        accumulateFourOrFiveBitDot(block, quants: 48, fifthBits: 16, x, xSums: xSums, &sum, M.self)
    }
}

/// Q4_K's (`fifthBits` nil) or Q5_K's values: the nibbles at byte `quants`, the fifth bits at byte
/// `fifthBits`.
@inlinable @inline(__always)
func dequantizeFourOrFiveBits<M: MultiplyAdd>(
    _ block: UnsafeRawPointer, quants: Int, fifthBits: Int?, into out: UnsafeMutablePointer<Float>, _: M.Type
) {
    let d = blockScale(block, M.self), dmin = blockScale(block + 2, M.self)
    let (scales, minimums) = sixBitScales(block + 4)
    for j in 0..<8 {
        let scale = SIMD8<Float>(repeating: d * Float(scales[j])), minimum = SIMD8<Float>(repeating: dmin * Float(minimums[j]))
        for i in stride(from: 0, to: 32, by: 8) {
            var q = zeroExtended(block.loadUnaligned(fromByteOffset: quants + 32 * (j / 2) + i, as: SIMD8<UInt8>.self)) &>> Int32(4 * (j % 2)) & 0x0F
            if let fifthBits {
                q |= ((zeroExtended(block.loadUnaligned(fromByteOffset: fifthBits + i, as: SIMD8<UInt8>.self)) &>> Int32(j)) & 1) &<< 4
            }
            store8(scale * exactFloats(q) - minimum, out + 32 * j + i)
        }
    }
}

/// Q4_K's or Q5_K's dot product with `x[0..<256]` into `sum`: per sub-block `j`,
/// `(d·s[j])·Σ q·x − (dmin·m[j])·Σ x`, the eight minimums' share in the lanes at once.
@inlinable @inline(__always)
func accumulateFourOrFiveBitDot<M: MultiplyAdd>(
    _ block: UnsafeRawPointer, quants: Int, fifthBits: Int?, _ x: UnsafePointer<Float>, xSums: UnsafePointer<Float>,
    _ sum: inout SIMD8<Float>, _: M.Type
) {
    let d = blockScale(block, M.self), dmin = blockScale(block + 2, M.self)
    let (scales, minimums) = sixBitScales(block + 4)
    let subScales = SIMD8<Float>(repeating: d) * exactFloats(scales)
    // Bytes of the fifth bits, eight at a time (the same for every pair of sub-blocks).
    var high = (SIMD8<Int32>.zero, SIMD8<Int32>.zero, SIMD8<Int32>.zero, SIMD8<Int32>.zero)
    if let fifthBits {
        @inline(__always) func bytes(_ i: Int) -> SIMD8<Int32> { zeroExtended(block.loadUnaligned(fromByteOffset: fifthBits + i, as: SIMD8<UInt8>.self)) }
        high = (bytes(0), bytes(8), bytes(16), bytes(24))
    }
    for c in 0..<4 {
        // Sub-blocks 2c (low nibbles) and 2c + 1 (high nibbles) from the same 32 bytes.
        @inline(__always) func bytes(_ i: Int) -> SIMD8<Int32> { zeroExtended(block.loadUnaligned(fromByteOffset: quants + 32 * c + i, as: SIMD8<UInt8>.self)) }
        let (b0, b1, b2, b3) = (bytes(0), bytes(8), bytes(16), bytes(24))
        @inline(__always) func dot(_ j: Int, _ shift: Int32) -> SIMD8<Float> {
            @inline(__always) func q(_ b: SIMD8<Int32>, _ h: SIMD8<Int32>) -> SIMD8<Float> {
                var q = (b &>> shift) & 0x0F
                if fifthBits != nil { q |= ((h &>> Int32(j)) & 1) &<< 4 }
                return exactFloats(q)
            }
            let xj = x + 32 * j
            var t = q(b0, high.0) * load8(xj)
            t = M.multiplyAdd(q(b1, high.1), load8(xj + 8), t)
            t = M.multiplyAdd(q(b2, high.2), load8(xj + 16), t)
            return M.multiplyAdd(q(b3, high.3), load8(xj + 24), t)
        }
        sum = M.multiplyAdd(SIMD8(repeating: subScales[2 * c]), dot(2 * c, 0), sum)
        sum = M.multiplyAdd(SIMD8(repeating: subScales[2 * c + 1]), dot(2 * c + 1, 4), sum)
    }
    sum = sum - (SIMD8<Float>(repeating: dmin) * exactFloats(minimums)) * load8(xSums)
}

/// 128 bytes of low nibbles, 64 bytes of 2-bit high parts, sixteen signed scales, `d`: value
/// `128c + 32s + i` (`s < 4`, `i < 32`) is nibble `s / 2` of byte `64c + 32·(s mod 2) + i` with bits
/// `2s` of byte `128 + 32c + i` above it, less 32, times `d·s[(128c + 32s + i) / 16]`.
public enum Q6_KBlock: IntegerSuperBlock {
    @inlinable public static var format: QuantizedBlockFormat { .q6_k }
    @inlinable public static var bytes: Int { 210 }
    @inlinable public static var halfPrecisionScaleOffsets: [Int] { [208] }
    @inlinable @inline(__always)
    public static func dequantize<M: MultiplyAdd>(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, _: M.Type) {
        let d = blockScale(block + 208, M.self)
        for c in 0..<2 {
            for s in 0..<4 {
                for i in stride(from: 0, to: 32, by: 8) {
                    let low = zeroExtended(block.loadUnaligned(fromByteOffset: 64 * c + 32 * (s % 2) + i, as: SIMD8<UInt8>.self))
                    let high = zeroExtended(block.loadUnaligned(fromByteOffset: 128 + 32 * c + i, as: SIMD8<UInt8>.self))
                    let q = ((low &>> Int32(4 * (s / 2))) & 0x0F) | (((high &>> Int32(2 * s)) & 3) &<< 4)
                    let e = 128 * c + 32 * s + i
                    let scale = d * Float(block.load(fromByteOffset: 192 + e / 16, as: Int8.self))
                    store8(SIMD8(repeating: scale) * exactFloats(q &- 32), out + e)
                }
            }
        }
    }
    @inlinable @inline(__always)
    public static func accumulateDot<M: MultiplyAdd>(_ block: UnsafeRawPointer, _ x: UnsafePointer<Float>, xSums: UnsafePointer<Float>,
                                                     _ sum: inout SIMD8<Float>, _: M.Type) {
        let d = blockScale(block + 208, M.self)
        for c in 0..<2 {
            @inline(__always) func bytes(_ at: Int) -> SIMD8<Int32> { zeroExtended(block.loadUnaligned(fromByteOffset: at, as: SIMD8<UInt8>.self)) }
            let high = (bytes(128 + 32 * c), bytes(136 + 32 * c), bytes(144 + 32 * c), bytes(152 + 32 * c))
            for s in 0..<4 {
                let low = (bytes(64 * c + 32 * (s % 2)), bytes(64 * c + 32 * (s % 2) + 8),
                           bytes(64 * c + 32 * (s % 2) + 16), bytes(64 * c + 32 * (s % 2) + 24))
                @inline(__always) func q(_ l: SIMD8<Int32>, _ h: SIMD8<Int32>) -> SIMD8<Float> {
                    exactFloats((((l &>> Int32(4 * (s / 2))) & 0x0F) | (((h &>> Int32(2 * s)) & 3) &<< 4)) &- 32)
                }
                // Values 128c + 32s + i: sixteen under one scale, sixteen under the next.
                let e = 128 * c + 32 * s, xe = x + e
                let first = M.multiplyAdd(q(low.1, high.1), load8(xe + 8), q(low.0, high.0) * load8(xe))
                let second = M.multiplyAdd(q(low.3, high.3), load8(xe + 24), q(low.2, high.2) * load8(xe + 16))
                let scale0 = d * Float(block.load(fromByteOffset: 192 + e / 16, as: Int8.self))
                let scale1 = d * Float(block.load(fromByteOffset: 193 + e / 16, as: Int8.self))
                sum = M.multiplyAdd(SIMD8(repeating: scale0), first, sum)
                sum = M.multiplyAdd(SIMD8(repeating: scale1), second, sum)
            }
        }
    }
}
