import _KernelIntrinsics

/// Integer products for the k-quants: the super-blocks of sixteen rows repacked at load into a
/// layout the integer kernels of the 32-value formats read (`IntegerDot.h`), and multiplied with
/// an input quantized per block of 32 (``QuantizedInput``), as `IntegerProducts.swift` does for the
/// 32-value formats.
///
/// A k-quant's value is a small integer times a scale made of a half-precision `d` and a small
/// integer per sub-block (`(d·s)·q − dmin·m` for Q4_K), so each sub-block of 32 values is one
/// integer dot product with the input's block of 32, `I = Σ q·xq`, and its share of an output is
///
///     y += dx · ((d·s)·Float(I) − (dmin·m)·Float(S))
///
/// with `dx` and `S = Σ xq` the input block's scale and sum, and `d·s` and `dmin·m` rounded to
/// Float as the reference reader rounds them. So the result is, as for the 32-value formats, the
/// product of the file's weights with the input rounded to 8 bits per block of 32.
///
/// The repacked copy keeps the super-block's own scales (half-precision `d`, 8-bit `s` and `m`),
/// sixteen rows' worth of each in a vector, and the rows' integers interleaved four bytes to a
/// 32-bit lane, as the 32-value formats' copies are: Q4_K takes 148 bytes per row and super-block
/// where the file takes 144, Q5_K 180 where it takes 176, Q6_K the file's 210 (its scales cover
/// sixteen values: each half of a sub-block gets its own sum, less 32 times the input's).

/// A super-block format whose products with a quantized input run on the integer units, from a
/// copy of its rows repacked by sixteen (see the top of the file).
public protocol IntegerSuperBlock: SuperQuantizedBlock {
    /// Bytes of one super-block of sixteen rows in the repacked layout.
    static var integerGroupBlockBytes: Int { get }
    /// Sixteen rows' super-blocks, row `r`'s at `source + r·rowBytes`, written as one repacked block
    /// at `out`.
    static func repack(_ source: UnsafeRawPointer, rowBytes: Int, into out: UnsafeMutableRawPointer)
    /// Adds one repacked block's products with input rows `row ..< row + (four ? 4 : 1)` of `input`
    /// (super-block `superBlock` of each) to the sixteen outputs' accumulators `acc.0 ...`.
    static func accumulateIntegerGroup<M: MultiplyAdd>(
        _ p: UnsafeRawPointer, _ input: QuantizedInput, row: Int, superBlock: Int, four: Bool,
        _ acc: inout (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>), _: M.Type)
}

extension IntegerSuperBlock {
    @inlinable @inline(__always)
    public static func kernels<M: MultiplyAdd>(_: M.Type) -> QuantizedFormatKernels { QuantizedFormatKernels(integerSuperBlocks: Self.self, M.self) }
}

extension QuantizedFormatKernels {
    /// The products for a super-block format `B` with integer products, specialized for `M` in the
    /// calling module: those of ``init(superBlocks:_:)``, and ``multiplyInteger`` from the repacked
    /// copy (and from the file's layout for the rows past its groups).
    @inlinable @inline(__always)
    public init<B: IntegerSuperBlock, M: MultiplyAdd>(integerSuperBlocks _: B.Type, _: M.Type) {
        let floats = QuantizedFormatKernels(superBlocks: B.self, M.self)
        (multiplyRows, multiplyPanels, multiplyInterleavedRow) = (floats.multiplyRows, floats.multiplyPanels, nil)
        multiplyInteger = { input, rows, weight, repacked, groups, stored, y, n in
            multiplyIntegerSuperGroups(input, rows: rows, repacked: repacked, groups: groups, y: y, n: n, B.self, M.self)
            multiplyIntegerSuperStoredRows(input, rows: rows, weight: weight, outputs: stored, y: y, n: n, B.self, M.self)
        }
    }
}

/// `y[r·n + 16g + i]` for the repacked groups `groups` of a super-block matrix and every input row
/// `r < rows`: four input rows at a time share each block's loads, the rows left over go one by one;
/// the first pass over a group (four rows, or the one row of a decoding step) prefetches ahead.
@inlinable @inline(__always)
public func multiplyIntegerSuperGroups<B: IntegerSuperBlock, M: MultiplyAdd>(
    _ input: QuantizedInput, rows: Int, repacked: InterleavedRows, groups: Range<Int>,
    y: UnsafeMutablePointer<Float>, n: Int, _: B.Type, _: M.Type
) {
    guard let base = repacked.base else { return }
    let superBlocks = input.k / 256, groupBlock = B.integerGroupBlockBytes, lanes = quantizedGroupRows
    for g in groups {
        let w = base + g * superBlocks * groupBlock
        var r = 0
        while r + 4 <= rows {
            var acc = (SIMD16<Float>.zero, SIMD16<Float>.zero, SIMD16<Float>.zero, SIMD16<Float>.zero)
            for b in 0..<superBlocks {
                // The first pass over a group reads its blocks from memory: ask for those ahead.
                if r == 0 { prefetchAhead(w + b * groupBlock, groupBlock) }
                B.accumulateIntegerGroup(w + b * groupBlock, input, row: r, superBlock: b, four: true, &acc, M.self)
            }
            let out = y + r * n + lanes * g
            storeUnaligned(acc.0, out); storeUnaligned(acc.1, out + n); storeUnaligned(acc.2, out + 2 * n); storeUnaligned(acc.3, out + 3 * n)
            r += 4
        }
        while r < rows {
            var acc = (SIMD16<Float>.zero, SIMD16<Float>.zero, SIMD16<Float>.zero, SIMD16<Float>.zero)
            for b in 0..<superBlocks {
                let p = w + b * groupBlock
                prefetchAhead(p, groupBlock)
                B.accumulateIntegerGroup(p, input, row: r, superBlock: b, four: false, &acc, M.self)
            }
            storeUnaligned(acc.0, y + r * n + lanes * g)
            r += 1
        }
    }
}

/// The same products for the output rows `outputs` of a super-block matrix in the file's layout
/// (the rows past its repacked groups): each super-block dequantized, bit for bit the reference
/// reader's values, and each block of 32 multiplied with the input's integers in Double, then
/// scaled by the block's `dx`. The same value as the groups' integer sums, up to their Float
/// roundings.
@inlinable @inline(__always)
public func multiplyIntegerSuperStoredRows<B: SuperQuantizedBlock, M: MultiplyAdd>(
    _ input: QuantizedInput, rows: Int, weight: UnsafeRawPointer, outputs: Range<Int>,
    y: UnsafeMutablePointer<Float>, n: Int, _: B.Type, _: M.Type
) {
    guard !outputs.isEmpty else { return }
    let superBlocks = input.k / 256, blocks = input.blocks, k = input.k
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { buffer in
        let w = buffer.baseAddress!
        for o in outputs {
            for r in 0..<rows {
                var acc = 0.0
                for b in 0..<superBlocks {
                    B.dequantize(weight + (o * superBlocks + b) * B.bytes, into: w, M.self)
                    for j in 0..<8 {
                        let x = input.values + r * k + 256 * b + 32 * j
                        var dot = 0.0
                        for e in 0..<32 { dot += Double(w[32 * j + e]) * Double(x[e]) }
                        acc += Double(input.scales[r * blocks + 8 * b + j]) * dot
                    }
                }
                y[r * n + o] = Float(acc)
            }
        }
    }
}

/// Sixteen bytes at `p` as the exact Floats of their unsigned values.
@inlinable @inline(__always)
func unsignedByteFloats(_ p: UnsafeRawPointer) -> SIMD16<Float> {
    let b = p.loadUnaligned(as: SIMD16<UInt8>.self)
    return SIMD16<Float>(lowHalf: exactFloats(zeroExtended(b.lowHalf)), highHalf: exactFloats(zeroExtended(b.highHalf)))
}

/// Sixteen bytes at `p` as the exact Floats of their signed values.
@inlinable @inline(__always)
func signedByteFloats(_ p: UnsafeRawPointer) -> SIMD16<Float> {
    let b = p.loadUnaligned(as: SIMD16<Int8>.self)
    return SIMD16<Float>(lowHalf: exactFloats(b.lowHalf), highHalf: exactFloats(b.highHalf))
}

// MARK: - Q4_K and Q5_K

/// Q4_K repacked, per super-block of sixteen rows (2,368 bytes):
/// - bytes 0 ..< 32: the rows' `d`, then 32 ..< 64 their `dmin` (binary16, row `r` at `2r`);
/// - 64 ..< 192: sub-block `j`'s sixteen 6-bit scales `s` at `64 + 16j` (byte `r` for row `r`), then
///   192 ..< 320 their minimums `m` at `192 + 16j`;
/// - from 320, sub-block `j`'s nibbles at `320 + 256j`, as Q4_0's interleaved blocks hold theirs
///   (four chunks of sixteen words, word `r` of chunk `c` holding bytes `4c ..< 4c + 4` of row `r`,
///   whose low nibbles are elements `4c + i` and high nibbles `4c + i + 16` of the sub-block).
extension Q4_KBlock {
    @inlinable public static var integerGroupBlockBytes: Int { fourOrFiveBitGroupBytes(fifthBits: false) }

    public static func repack(_ source: UnsafeRawPointer, rowBytes: Int, into out: UnsafeMutableRawPointer) {
        repackFourOrFiveBits(source, rowBytes: rowBytes, quants: 16, fifthBits: nil, into: out)
    }

    @inlinable @inline(__always)
    public static func accumulateIntegerGroup<M: MultiplyAdd>(
        _ p: UnsafeRawPointer, _ input: QuantizedInput, row r: Int, superBlock b: Int, four: Bool,
        _ acc: inout (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>), _: M.Type
    ) {
        accumulateFourOrFiveBitGroup(p, fifthBits: false, input, row: r, superBlock: b, four: four, &acc, M.self)
    }
}

/// Q5_K repacked as Q4_K (2,880 bytes), each sub-block's 256 bytes of nibbles preceded by the
/// sixteen rows' words of fifth bits (bit `e` of word `r` for element `e` of row `r`), as Q5_0's
/// interleaved blocks hold theirs: sub-block `j` at `320 + 320j`, its nibbles 64 bytes in.
extension Q5_KBlock {
    @inlinable public static var integerGroupBlockBytes: Int { fourOrFiveBitGroupBytes(fifthBits: true) }

    public static func repack(_ source: UnsafeRawPointer, rowBytes: Int, into out: UnsafeMutableRawPointer) {
        repackFourOrFiveBits(source, rowBytes: rowBytes, quants: 48, fifthBits: 16, into: out)
    }

    @inlinable @inline(__always)
    public static func accumulateIntegerGroup<M: MultiplyAdd>(
        _ p: UnsafeRawPointer, _ input: QuantizedInput, row r: Int, superBlock b: Int, four: Bool,
        _ acc: inout (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>), _: M.Type
    ) {
        accumulateFourOrFiveBitGroup(p, fifthBits: true, input, row: r, superBlock: b, four: four, &acc, M.self)
    }
}

/// Bytes of a repacked Q4_K (`fifthBits` false) or Q5_K super-block of sixteen rows.
@inlinable @inline(__always)
func fourOrFiveBitGroupBytes(fifthBits: Bool) -> Int { 320 + 8 * (fifthBits ? 320 : 256) }

/// Sixteen rows' Q4_K or Q5_K super-blocks (nibbles at byte `quants`, fifth bits at byte
/// `fifthBits` or none) in the repacked layout.
func repackFourOrFiveBits(_ source: UnsafeRawPointer, rowBytes: Int, quants: Int, fifthBits: Int?, into out: UnsafeMutableRawPointer) {
    let rows = quantizedGroupRows, subBlock = fifthBits == nil ? 256 : 320, nibbleStart = fifthBits == nil ? 0 : 64
    for r in 0..<rows {
        let block = source + r * rowBytes
        (out + 2 * r).copyMemory(from: block, byteCount: 2)
        (out + 32 + 2 * r).copyMemory(from: block + 2, byteCount: 2)
        let (scales, minimums) = sixBitScales(block + 4)
        for j in 0..<8 {
            out.storeBytes(of: UInt8(scales[j]), toByteOffset: 64 + 16 * j + r, as: UInt8.self)
            out.storeBytes(of: UInt8(minimums[j]), toByteOffset: 192 + 16 * j + r, as: UInt8.self)
            let at = 320 + subBlock * j
            // Value i of sub-block j: nibble j mod 2 of quant byte 32·(j / 2) + i, and bit j of fifth-bit byte i.
            @inline(__always) func nibble(_ i: Int) -> UInt8 {
                (block.load(fromByteOffset: quants + 32 * (j / 2) + i, as: UInt8.self) >> (4 * (j % 2))) & 0x0F
            }
            for e in 0..<16 {
                let (chunk, within) = e.quotientAndRemainder(dividingBy: 4)
                out.storeBytes(of: nibble(e) | nibble(e + 16) << 4, toByteOffset: at + nibbleStart + 4 * (rows * chunk + r) + within, as: UInt8.self)
            }
            if let fifthBits {
                var word: UInt32 = 0
                for i in 0..<32 { word |= UInt32((block.load(fromByteOffset: fifthBits + i, as: UInt8.self) >> j) & 1) << i }
                out.storeBytes(of: word.littleEndian, toByteOffset: at + 4 * r, as: UInt32.self)
            }
        }
    }
}

/// One repacked Q4_K or Q5_K block's products (see ``IntegerSuperBlock/accumulateIntegerGroup(_:_:row:superBlock:four:_:_:)``).
@inlinable @inline(__always)
func accumulateFourOrFiveBitGroup<M: MultiplyAdd>(
    _ p: UnsafeRawPointer, fifthBits: Bool, _ input: QuantizedInput, row r: Int, superBlock b: Int, four: Bool,
    _ acc: inout (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>), _: M.Type
) {
    let d = HalfBits.load16(p.assumingMemoryBound(to: HalfBits.self), M.self)
    let dmin = HalfBits.load16((p + 32).assumingMemoryBound(to: HalfBits.self), M.self)
    let blocks = input.blocks, k = input.k, subBlock = fifthBits ? 320 : 256
    for j in 0..<8 {
        // d·s and dmin·m, rounded as the reference reader rounds them.
        let scale = d * unsignedByteFloats(p + 64 + 16 * j), minimum = dmin * unsignedByteFloats(p + 192 + 16 * j)
        let block = 8 * b + j, x = input.values + r * k + 32 * block
        let high: UnsafeRawPointer? = fifthBits ? p + 320 + subBlock * j : nil, nibbles = p + 320 + subBlock * j + (fifthBits ? 64 : 0)
        @inline(__always) func add(_ dot: SIMD16<Int32>, _ row: Int, _ a: inout SIMD16<Float>) {
            let dx = input.scales[row * blocks + block], s = input.sums[row * blocks + block]
            a = M.multiplyAdd(scale * dx, exactFloats(dot), a)
            a = M.multiplyAdd(-minimum, SIMD16(repeating: dx * Float(s)), a)
        }
        if four {
            var s = (SIMD16<Int32>.zero, SIMD16<Int32>.zero, SIMD16<Int32>.zero, SIMD16<Int32>.zero)
            withUnsafeMutableBytes(of: &s) { attention_nibble_block_idot4(nibbles, high, x, k, OpaquePointer($0.baseAddress!)) }
            add(s.0, r, &acc.0); add(s.1, r + 1, &acc.1); add(s.2, r + 2, &acc.2); add(s.3, r + 3, &acc.3)
        } else {
            add(attention_nibble_block_idot1(nibbles, high, x), r, &acc.0)
        }
    }
}

// MARK: - Q6_K

/// Q6_K repacked, per super-block of sixteen rows (3,360 bytes, 210 per row as in the file):
/// - bytes 0 ..< 32: the rows' `d` (binary16, row `r` at `2r`);
/// - 32 ..< 288: the sixteen signed 8-bit scales, scale `t` (values `16t ..< 16t + 16`) of row `r`
///   at `32 + 16t + r`;
/// - from 288, sub-block `j` (values `32j ..< 32j + 32`) at `288 + 384j`: the rows' words of bit 4
///   of each integer `q` (0 ... 63; bit `e` of word `r` for element `e`), then of bit 5, then the low
///   nibbles as Q4_0's interleaved blocks hold theirs.
extension Q6_KBlock {
    @inlinable public static var integerGroupBlockBytes: Int { 3360 }

    public static func repack(_ source: UnsafeRawPointer, rowBytes: Int, into out: UnsafeMutableRawPointer) {
        let rows = quantizedGroupRows
        for r in 0..<rows {
            let block = source + r * rowBytes
            (out + 2 * r).copyMemory(from: block + 208, byteCount: 2)
            for t in 0..<16 { out.storeBytes(of: block.load(fromByteOffset: 192 + t, as: UInt8.self), toByteOffset: 32 + 16 * t + r, as: UInt8.self) }
            for j in 0..<8 {
                let (c, sub) = j.quotientAndRemainder(dividingBy: 4), at = 288 + 384 * j
                // Value 128c + 32·sub + i: nibble sub / 2 of byte 64c + 32·(sub mod 2) + i, bits 2·sub of byte 128 + 32c + i above it.
                @inline(__always) func q(_ i: Int) -> UInt32 {
                    let low = (block.load(fromByteOffset: 64 * c + 32 * (sub % 2) + i, as: UInt8.self) >> (4 * (sub / 2))) & 0x0F
                    let high = (block.load(fromByteOffset: 128 + 32 * c + i, as: UInt8.self) >> (2 * sub)) & 3
                    return UInt32(low | high << 4)
                }
                var bit4: UInt32 = 0, bit5: UInt32 = 0
                for i in 0..<32 {
                    bit4 |= ((q(i) >> 4) & 1) << i
                    bit5 |= ((q(i) >> 5) & 1) << i
                }
                out.storeBytes(of: bit4.littleEndian, toByteOffset: at + 4 * r, as: UInt32.self)
                out.storeBytes(of: bit5.littleEndian, toByteOffset: at + 64 + 4 * r, as: UInt32.self)
                for e in 0..<16 {
                    let (chunk, within) = e.quotientAndRemainder(dividingBy: 4)
                    let byte = UInt8(q(e) & 0x0F) | UInt8(q(e + 16) & 0x0F) << 4
                    out.storeBytes(of: byte, toByteOffset: at + 128 + 4 * (rows * chunk + r) + within, as: UInt8.self)
                }
            }
        }
    }

    @inlinable @inline(__always)
    public static func accumulateIntegerGroup<M: MultiplyAdd>(
        _ p: UnsafeRawPointer, _ input: QuantizedInput, row r: Int, superBlock b: Int, four: Bool,
        _ acc: inout (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>), _: M.Type
    ) {
        let d = HalfBits.load16(p.assumingMemoryBound(to: HalfBits.self), M.self)
        let blocks = input.blocks, k = input.k
        for j in 0..<8 {
            // d·s for the sub-block's two halves, rounded as the reference reader rounds them.
            let firstScale = d * signedByteFloats(p + 32 + 32 * j), secondScale = d * signedByteFloats(p + 48 + 32 * j)
            let block = 8 * b + j, x = input.values + r * k + 32 * block, at = p + 288 + 384 * j
            // Σ (q − 32)·x over each half: the integer sums less 32 times the input's.
            @inline(__always) func add(_ first: SIMD16<Int32>, _ second: SIMD16<Int32>, _ row: Int, _ a: inout SIMD16<Float>) {
                let i = row * blocks + block, dx = input.scales[i], s0 = input.firstHalfSums[i], s1 = input.sums[i] &- s0
                a = M.multiplyAdd(firstScale * dx, exactFloats(first &- SIMD16(repeating: 32 &* s0)), a)
                a = M.multiplyAdd(secondScale * dx, exactFloats(second &- SIMD16(repeating: 32 &* s1)), a)
            }
            var first = (SIMD16<Int32>.zero, SIMD16<Int32>.zero, SIMD16<Int32>.zero, SIMD16<Int32>.zero), second = first
            withUnsafeMutableBytes(of: &first) { f in
                withUnsafeMutableBytes(of: &second) { g in
                    let f = OpaquePointer(f.baseAddress!), g = OpaquePointer(g.baseAddress!)
                    if four {
                        attention_six_bit_block_idot4(at + 128, at, at + 64, x, k, f, g)
                    } else {
                        attention_six_bit_block_idot1(at + 128, at, at + 64, x, f, g)
                    }
                }
            }
            add(first.0, second.0, r, &acc.0)
            if four { add(first.1, second.1, r + 1, &acc.1); add(first.2, second.2, r + 2, &acc.2); add(first.3, second.3, r + 3, &acc.3) }
        }
    }
}

extension QuantizedBlockFormat {
    /// The block type if this format is a k-quant whose integer products read a repacked copy.
    @inlinable public var integerSuperBlock: (any IntegerSuperBlock.Type)? { block as? any IntegerSuperBlock.Type }

    /// Whether products with this format run on the integer units when asked to: the 32-value
    /// formats' interleaved integers, or a k-quant's repacked copy.
    @inlinable public var hasIntegerProducts: Bool { block is any IntegerInterleavedBlock.Type || integerSuperBlock != nil }
}

/// Rows `0 ..< 16·groups` of `[rows, 256·superBlocks]` super-blocks of `format` at `source` (the
/// file's layout), repacked to `destination` (`groups · superBlocks · format.integerGroupBlockBytes`
/// bytes).
public func repackSuperBlocks(_ source: UnsafeRawPointer, format: any IntegerSuperBlock.Type, groups: Int, superBlocks: Int,
                              into destination: UnsafeMutableRawPointer) {
    let rowBytes = superBlocks * format.bytes, groupBlock = format.integerGroupBlockBytes
    for g in 0..<groups {
        for b in 0..<superBlocks {
            format.repack(source + g * quantizedGroupRows * rowBytes + b * format.bytes, rowBytes: rowBytes,
                          into: destination + (g * superBlocks + b) * groupBlock)
        }
    }
}
