import _Prefetch
import _QuantizedDot

/// Block-quantized matrices with their rows interleaved by sixteen, for decoding.
///
/// A decoding step multiplies one input row by every weight once, so the cost is what it takes to
/// turn each stored integer into a float and multiply it. In the file's layout each row's blocks
/// are contiguous: a kernel that keeps one row per register must reduce its lanes at the end of
/// every row and gather the scales of several blocks from strided addresses. Here sixteen rows are
/// interleaved, one per lane: a group's scales for one block load as one vector of sixteen halves,
/// the integers of sixteen rows load as one vector, and the sums come out in the lanes of the
/// outputs they belong to, with no reduction at all.
///
/// Layout: for each group `g` of sixteen rows (rows `16g ..< 16g + 16`) and each block `b`, in that
/// order, ``interleavedBlockBytes(_:)`` bytes (sixteen times the format's block, nothing added):
/// - the sixteen rows' `d` (binary16), then for Q4_1 their sixteen `m`;
/// - Q8_0: 32 rows of sixteen signed bytes, row `e` holding element `e` of the sixteen rows;
/// - Q4_0 and Q4_1: four chunks of sixteen 32-bit words, word `r` of chunk `c` holding bytes
///   `4c ..< 4c + 4` of row `r`'s sixteen bytes of nibbles (elements `4c + i` and `4c + i + 16`).
///
/// A nibble is taken with a mask alone, in place: the word's nibble `j` of each 16-bit half is
/// `q · 16^j` as an integer, which converts to Float exactly, and the input element it multiplies
/// is stored pre-scaled by `16^-j` (exact: a power of two) in ``prepareInterleavedInput(_:k:format:into:sums:)``,
/// so each product is `q · x` exactly as the file's layout would give it.

/// A matrix's interleaved copy, if it has one: its base and how many groups of sixteen rows it holds.
@frozen
public struct InterleavedRows: @unchecked Sendable {
    public let base: UnsafeRawPointer?
    public let groups: Int
    @inlinable public init(base: UnsafeRawPointer?, groups: Int) {
        self.base = base
        self.groups = base == nil ? 0 : groups
    }
    /// No interleaved copy: every row from the file's layout.
    @inlinable public static var none: InterleavedRows { InterleavedRows(base: nil, groups: 0) }
}

/// Rows per interleaved group.
public let quantizedGroupRows = 16

/// Bytes of one block of one group: sixteen blocks of the format.
@inlinable
public func interleavedBlockBytes(_ format: QuantizedBlockFormat) -> Int { quantizedGroupRows * format.bytesPerBlock }

extension QuantizedBlockFormat {
    /// Bytes of scales at the start of a block: `d`, or `d` and `m`.
    @inlinable var scaleBytes: Int { self == .q4_1 ? 4 : 2 }
}

/// Rows `0 ..< 16·groups` of `[rows, 32·blocks]` blocks at `source` (the file's layout) written
/// interleaved to `destination` (`groups · blocks · interleavedBlockBytes(format)` bytes).
public func interleaveQuantized(_ source: UnsafeRawPointer, format: QuantizedBlockFormat, groups: Int, blocks: Int,
                                into destination: UnsafeMutableRawPointer) {
    let block = format.bytesPerBlock, rowBytes = blocks * block, scales = format.scaleBytes
    let groupBlock = interleavedBlockBytes(format), rows = quantizedGroupRows
    for g in 0..<groups {
        for b in 0..<blocks {
            let out = destination + (g * blocks + b) * groupBlock
            for r in 0..<rows {
                let p = source + (g * rows + r) * rowBytes + b * block
                // d (and m): halves r of the scale vectors.
                for s in 0..<(scales / 2) {
                    (out + 2 * (s * rows + r)).copyMemory(from: p + 2 * s, byteCount: 2)
                }
                let values = out + scales * rows, q = p + scales
                switch format {
                case .q8_0:
                    for e in 0..<32 { values.storeBytes(of: q.load(fromByteOffset: e, as: UInt8.self), toByteOffset: e * rows + r, as: UInt8.self) }
                case .q4_0, .q4_1:
                    for c in 0..<4 { (values + c * 4 * rows + 4 * r).copyMemory(from: q + 4 * c, byteCount: 4) }
                }
            }
        }
    }
}

/// The input row `x [k]` as ``multiplyInterleavedRow(_:sums:weight:format:y:groups:blocks:_:)``
/// reads it: for Q8_0 as it is; for the nibble formats each block's 32 values in the order of the
/// words' nibbles, each pre-scaled by the power of sixteen its nibble's mask leaves in the
/// integer. `sums[b]` is block `b`'s `Σx` (for Q4_1's minimums and Q4_0's offset of −8).
public func prepareInterleavedInput(_ x: UnsafePointer<Float>, k: Int, format: QuantizedBlockFormat,
                                    into prepared: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>) {
    let scale = SIMD4<Float>(1, 1.0 / 16, 1.0 / 256, 1.0 / 4096)
    for b in 0..<(k / 32) {
        let xb = x + 32 * b, out = prepared + 32 * b
        sums[b] = ((load8(xb) + load8(xb + 8)) + (load8(xb + 16) + load8(xb + 24))).sum()
        guard format != .q8_0 else {
            for e in 0..<32 { out[e] = xb[e] }
            continue
        }
        for c in 0..<4 {
            for h in 0..<2 {
                for j in 0..<4 {
                    out[8 * c + 4 * h + j] = xb[4 * c + 2 * h + j / 2 + 16 * (j % 2)] * scale[j]
                }
            }
        }
    }
}

/// `y[16g + r] = Σ_j x[j] · w[16g + r][j]` for the groups `groups` of an interleaved matrix of
/// `blocks` blocks per row; `prepared` and `sums` from ``prepareInterleavedInput(_:k:format:into:sums:)``.
/// Each group's sixteen outputs are the sixteen lanes of one accumulator; each block's products are
/// summed in four independent chains, then scaled by the block's `d` (and its minimum added).
@inlinable @inline(__always)
public func multiplyInterleavedRow<M: MultiplyAdd>(
    _ prepared: UnsafePointer<Float>, sums: UnsafePointer<Float>, weight: UnsafeRawPointer, format: QuantizedBlockFormat,
    y: UnsafeMutablePointer<Float>, groups: Range<Int>, blocks: Int, _: M.Type
) {
    switch format {
    case .q8_0: multiplyInterleavedBytes(prepared, weight, y, groups, blocks, M.self)
    case .q4_0: multiplyInterleavedNibbles(prepared, sums, weight, y, groups, blocks, hasMinimum: false, M.self)
    case .q4_1: multiplyInterleavedNibbles(prepared, sums, weight, y, groups, blocks, hasMinimum: true, M.self)
    }
}

@inlinable @inline(__always)
func multiplyInterleavedNibbles<M: MultiplyAdd>(
    _ x: UnsafePointer<Float>, _ sums: UnsafePointer<Float>, _ weight: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>,
    _ groups: Range<Int>, _ blocks: Int, hasMinimum: Bool, _: M.Type
) {
    let groupBlock = hasMinimum ? 320 : 288, scales = hasMinimum ? 64 : 32
    for g in groups {
        var p = weight + g * blocks * groupBlock
        var acc = SIMD16<Float>.zero
        for b in 0..<blocks {
            prefetchAhead(p, groupBlock)
            let t = attention_nibble_block_dot(p + scales, x + 32 * b)
            let d = HalfBits.load16(p.assumingMemoryBound(to: HalfBits.self), M.self)
            if hasMinimum {
                acc = M.multiplyAdd(d, t, acc)
                let m = HalfBits.load16((p + 32).assumingMemoryBound(to: HalfBits.self), M.self)
                acc = M.multiplyAdd(m, SIMD16(repeating: sums[b]), acc)
            } else {
                // Q4_0: d·(q − 8) summed is d·(Σq·x − 8·Σx).
                acc = M.multiplyAdd(d, t - SIMD16(repeating: 8 * sums[b]), acc)
            }
            p += groupBlock
        }
        UnsafeMutableRawPointer(y + quantizedGroupRows * g).storeBytes(of: acc, as: SIMD16<Float>.self)
    }
}

@inlinable @inline(__always)
func multiplyInterleavedBytes<M: MultiplyAdd>(
    _ x: UnsafePointer<Float>, _ weight: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>,
    _ groups: Range<Int>, _ blocks: Int, _: M.Type
) {
    let groupBlock = 544
    for g in groups {
        var p = weight + g * blocks * groupBlock
        var acc = SIMD16<Float>.zero
        for b in 0..<blocks {
            prefetchAhead(p, groupBlock)
            let t = attention_byte_block_dot(p + 32, x + 32 * b)
            acc = M.multiplyAdd(HalfBits.load16(p.assumingMemoryBound(to: HalfBits.self), M.self), t, acc)
            p += groupBlock
        }
        UnsafeMutableRawPointer(y + quantizedGroupRows * g).storeBytes(of: acc, as: SIMD16<Float>.self)
    }
}

/// Bytes ahead of the block being read that the kernels ask for: the hardware's own prefetch left
/// one core reading about 7 GB/s of blocks where it streams 14; 2 to 16 KiB ahead all gave the same
/// decoding speed (SmolLM2 on an Intel Xeon, family 6 model 207). A hint past a matrix's end is
/// harmless: prefetches never fault.
@inlinable var interleavedPrefetchDistance: Int { 4096 }

/// Asks for the cache lines of the block `interleavedPrefetchDistance` bytes ahead of `p`.
@inlinable @inline(__always)
func prefetchAhead(_ p: UnsafeRawPointer, _ bytes: Int) {
    var offset = 0
    while offset < bytes {
        attention_prefetch_l2(p + interleavedPrefetchDistance + offset)
        offset += 64
    }
}
