import _KernelIntrinsics

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
/// - the sixteen rows' `d` (binary16), then for formats with a minimum their sixteen `m`;
/// - the rows' integers in pieces of ``InterleavedQuantizedBlock/interleavedPieceBytes`` (four)
///   bytes, piece `e` of every row before piece `e + 1`, so that each 32-bit lane holds four
///   consecutive bytes of one row (what the integer units' four-byte products take):
///   - Q8_0: eight chunks of sixteen words, word `r` of chunk `c` holding elements `4c ..< 4c + 4`
///     of row `r` as signed bytes;
///   - Q4_0 and Q4_1: four chunks of sixteen words, word `r` of chunk `c` holding bytes
///     `4c ..< 4c + 4` of row `r`'s sixteen bytes of nibbles (elements `4c + i` and `4c + i + 16`);
///   - Q5_0 and Q5_1: a chunk of the rows' words of fifth bits, then Q4_0's chunks.
///
/// A nibble is taken with a mask alone, in place: the word's nibble `j` of each 16-bit half is
/// `q · 16^j` as an integer, which converts to Float exactly, and the input element it multiplies
/// is stored pre-scaled by `16^-j` (exact: a power of two) in ``prepareInterleavedInput(_:k:order:into:sums:)``,
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

/// The layout above for one block of one row, as the pieces to move: `body(stored, interleaved,
/// bytes)` for each piece at byte `stored` of the row's block in the file's layout and byte
/// `interleaved` of its group's block, lane `r` of the group. The one statement of the layout that
/// interleaving and its inverse both follow; the format's facts are read once per matrix.
struct InterleavedPieces {
    let scales: Int, piece: Int, pieces: Int

    init(_ block: any InterleavedQuantizedBlock.Type) {
        (scales, piece) = (block.scaleBytes, block.interleavedPieceBytes)
        pieces = (block.bytes - scales) / piece
    }

    @inline(__always)
    func forEach(lane r: Int, _ body: (_ stored: Int, _ interleaved: Int, _ bytes: Int) -> Void) {
        let rows = quantizedGroupRows
        // d (and m): half r of each vector of scales.
        for s in 0..<(scales / 2) { body(2 * s, 2 * (s * rows + r), 2) }
        for e in 0..<pieces { body(scales + piece * e, scales * rows + piece * (e * rows + r), piece) }
    }
}

extension InterleavedQuantizedBlock {
    /// Where byte `stored` of a row's block in the file's layout (past the scales) sits in its
    /// group's interleaved block when the row is lane `lane`: the layout above, for code that writes
    /// an interleaved block itself.
    @inlinable
    public static func interleavedOffset(ofStoredByte stored: Int, lane: Int) -> Int {
        let (piece, within) = (stored - scaleBytes).quotientAndRemainder(dividingBy: interleavedPieceBytes)
        return quantizedGroupRows * scaleBytes + interleavedPieceBytes * (piece * quantizedGroupRows + lane) + within
    }
}

/// Rows `0 ..< 16·groups` of `[rows, 32·blocks]` blocks of `format` at `source` (the file's layout)
/// written interleaved to `destination` (`groups · blocks · interleavedBlockBytes(format.format)` bytes).
public func interleaveQuantized(_ source: UnsafeRawPointer, format: any InterleavedQuantizedBlock.Type, groups: Int, blocks: Int,
                                into destination: UnsafeMutableRawPointer) {
    let block = format.bytes, rowBytes = blocks * block
    let groupBlock = quantizedGroupRows * block, rows = quantizedGroupRows, layout = InterleavedPieces(format)
    for g in 0..<groups {
        for b in 0..<blocks {
            let out = destination + (g * blocks + b) * groupBlock
            for r in 0..<rows {
                let p = source + (g * rows + r) * rowBytes + b * block
                layout.forEach(lane: r) { stored, interleaved, bytes in
                    (out + interleaved).copyMemory(from: p + stored, byteCount: bytes)
                }
            }
        }
    }
}

/// Row `row` (below `16·groups`) of an interleaved matrix of `blocks` blocks per row, written in
/// the file's layout to `destination` (`blocks · format.bytes` bytes): the inverse of
/// ``interleaveQuantized(_:format:groups:blocks:into:)`` for one row, for lookups of single rows
/// (embeddings) that should not touch the stored blocks the copy replaces.
public func copyInterleavedRow(_ interleaved: InterleavedRows, row: Int, format: any InterleavedQuantizedBlock.Type, blocks: Int,
                               into destination: UnsafeMutableRawPointer) {
    guard let base = interleaved.base, row < quantizedGroupRows * interleaved.groups else { return }
    let (g, r) = row.quotientAndRemainder(dividingBy: quantizedGroupRows)
    let block = format.bytes, groupBlock = quantizedGroupRows * block, layout = InterleavedPieces(format)
    for b in 0..<blocks {
        let p = base + (g * blocks + b) * groupBlock, out = destination + b * block
        layout.forEach(lane: r) { stored, interleaved, bytes in
            (out + stored).copyMemory(from: p + interleaved, byteCount: bytes)
        }
    }
}

/// The input row `x [k]` as ``multiplyInterleavedRow(_:sums:weight:y:groups:blocks:_:_:)`` reads it
/// for formats that want `order`: in ``InterleavedInputOrder/elements`` as it is; in
/// ``InterleavedInputOrder/nibbleWords`` each block's 32 values in the order of the words' nibbles,
/// each pre-scaled by the power of sixteen its nibble's mask leaves in the integer. `sums[b]` is
/// block `b`'s `Σx` (for minimums and Q4_0's offset of −8).
public func prepareInterleavedInput(_ x: UnsafePointer<Float>, k: Int, order: InterleavedInputOrder,
                                    into prepared: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>) {
    let scale = SIMD4<Float>(1, 1.0 / 16, 1.0 / 256, 1.0 / 4096)
    for b in 0..<(k / 32) {
        let xb = x + 32 * b, out = prepared + 32 * b
        sums[b] = ((load8(xb) + load8(xb + 8)) + (load8(xb + 16) + load8(xb + 24))).sum()
        guard order == .nibbleWords else {
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
/// `blocks` blocks per row; `prepared` and `sums` from ``prepareInterleavedInput(_:k:order:into:sums:)``
/// in the format's ``InterleavedQuantizedBlock/interleavedInputOrder``. Each group's sixteen outputs are the
/// sixteen lanes of one accumulator; each block's products are summed in independent chains, then
/// scaled by the block's `d` (and its minimum added).
@inlinable @inline(__always)
public func multiplyInterleavedRow<B: InterleavedQuantizedBlock, M: MultiplyAdd>(
    _ prepared: UnsafePointer<Float>, sums: UnsafePointer<Float>, weight: UnsafeRawPointer,
    y: UnsafeMutablePointer<Float>, groups: Range<Int>, blocks: Int, _: B.Type, _: M.Type
) {
    let groupBlock = quantizedGroupRows * B.bytes
    for g in groups {
        var p = weight + g * blocks * groupBlock
        var acc = SIMD16<Float>.zero
        for b in 0..<blocks {
            prefetchAhead(p, groupBlock)
            B.accumulateInterleaved(p, prepared + 32 * b, xSum: sums[b], &acc, M.self)
            p += groupBlock
        }
        UnsafeMutableRawPointer(y + quantizedGroupRows * g).storeBytes(of: acc, as: SIMD16<Float>.self)
    }
}

/// Group `g`'s sixteen rows dequantized: element `j` of row `16g + r` to `out[stride·j + r]`. With a
/// stride of 32 this is the panel kernel's transposed layout. `scales` is scratch for 32 floats.
///
/// (Scratch comes from the caller throughout: a temporary allocation's closure is outlined here,
/// and the half-precision conversion inside it then runs lane by lane through a library call.)
@inlinable @inline(__always)
public func dequantizeInterleavedGroup<B: InterleavedQuantizedBlock, M: MultiplyAdd>(
    _ interleaved: InterleavedRows, group g: Int, blocks: Int,
    into out: UnsafeMutablePointer<Float>, stride: Int, scales: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    guard let base = interleaved.base else { return }
    let groupBlock = quantizedGroupRows * B.bytes
    var p = base + g * blocks * groupBlock
    for b in 0..<blocks {
        B.dequantizeInterleaved(p, into: out + 32 * stride * b, stride: stride, scales: scales, M.self)
        p += groupBlock
    }
}

/// Floats of scratch ``multiplyInterleavedGroupRows(_:rows:_:group:blocks:y:n:outputs:scratch:_:_:)`` needs.
@inlinable
public func interleavedGroupRowsScratch(rows: Int) -> Int { 32 * quantizedGroupRows + 32 + quantizedGroupRows * rows }

/// `y[r·n + o] = Σ_j x[r][j] · w[o][j]` for the few input rows `r < rows` (`x [rows, k]`) and the
/// outputs `outputs` of group `g` (a sub-range of `16g ..< 16g + 16`): each block of the group is
/// dequantized once into sixteen-lane vectors (2 KiB, in L1) and multiplied with every row's 32
/// inputs, the sixteen outputs in the lanes. The sums run in the same order whatever `outputs` is.
@inlinable @inline(__always)
public func multiplyInterleavedGroupRows<B: InterleavedQuantizedBlock, M: MultiplyAdd>(
    _ x: UnsafePointer<Float>, rows: Int, _ interleaved: InterleavedRows, group g: Int, blocks: Int,
    y: UnsafeMutablePointer<Float>, n: Int, outputs: Range<Int>, scratch: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    guard let base = interleaved.base else { return }
    let k = 32 * blocks, groupBlock = quantizedGroupRows * B.bytes, lanes = quantizedGroupRows
    let values = scratch, scales = values + 32 * lanes, sums = scales + 32
    sums.initialize(repeating: 0, count: lanes * rows)
    var p = base + g * blocks * groupBlock
    for b in 0..<blocks {
        B.dequantizeInterleaved(p, into: values, stride: lanes, scales: scales, M.self)
        for r in 0..<rows {
            let xb = x + r * k + 32 * b
            // Four chains of eight products, then into the row's running sum.
            var a0 = SIMD16<Float>.zero, a1 = a0, a2 = a0, a3 = a0
            var e = 0
            while e < 32 {
                a0 = M.multiplyAdd(SIMD16(repeating: xb[e]), load(values + lanes * e), a0)
                a1 = M.multiplyAdd(SIMD16(repeating: xb[e + 1]), load(values + lanes * (e + 1)), a1)
                a2 = M.multiplyAdd(SIMD16(repeating: xb[e + 2]), load(values + lanes * (e + 2)), a2)
                a3 = M.multiplyAdd(SIMD16(repeating: xb[e + 3]), load(values + lanes * (e + 3)), a3)
                e += 4
            }
            store(load(sums + lanes * r) + ((a0 + a1) + (a2 + a3)), sums + lanes * r)
        }
        p += groupBlock
    }
    for r in 0..<rows {
        for o in outputs { y[r * n + o] = sums[lanes * r + o - lanes * g] }
    }
}

/// Bytes ahead of the block being read that the kernels ask for: the hardware's own prefetch left
/// one core reading about 7 GB/s of blocks where it streams 14; 2 to 16 KiB ahead all gave the same
/// decoding speed (SmolLM2 on an Intel Xeon, family 6 model 207). A hint past a matrix's end is
/// harmless: prefetches never fault.
@inlinable var interleavedPrefetchDistance: Int { 4096 }

/// The distance for the single-row pass of the integer products of Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0
/// (``multiplyIntegerGroups(_:rows:interleaved:groups:y:n:_:_:)``), which reads a block in about
/// half the time the Float and super-block kernels take. On an AMD Zen 4 (family 25 model 17) one
/// core read Q4_1 blocks at 17.6-19.5 GB/s with 3 or 4 KiB ahead and at 21.6-26.6 GB/s with 512
/// bytes to 2 KiB; SmolLM2 decoded on one thread 12-16% faster. The slower kernels lose with the
/// shorter distance there (Q6_K 51 -> 60 µs, Float Q4_1 35 -> 45 µs for 1,536 -> 576), and two
/// KiB is inside the range the Xeon above found flat.
@inlinable var singleRowIntegerPrefetchDistance: Int { 2048 }

/// Asks for the cache lines of the block `distance` bytes ahead of `p`.
@inlinable @inline(__always)
func prefetchAhead(_ p: UnsafeRawPointer, _ bytes: Int, distance: Int = interleavedPrefetchDistance) {
    prefetchLines(p + distance, bytes: bytes)
}
