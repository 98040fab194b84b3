import Foundation
import _KernelIntrinsics

/// One work item of the tiled forward pass: a block of query rows against one key range, with an
/// online softmax (FlashAttention-2, Algorithm 1, in base 2), in its phases:
/// ```
/// load Q (scaled into base 2), find each row's visible keys          loadQueryRows
/// for each key block:
///     S = Q·Kᵀ                                                       computeBlockScores
///     hide what the mask hides;  m' = max(m, rowmax S)               maskAndRowMaxima
///     α = 2^(m - m');  P = 2^(S - m');  l = α·l + rowsum P;  O = α·O  updateSoftmax
///     O += P·V                                                       accumulateValues
/// O /= l;  L = (m + log₂ l)·ln 2                                     writeRows
/// ```
/// A row whose every score is hidden keeps m = -inf and l = 0: it outputs 0 and L = -inf.
@inlinable @inline(__always)
public func forwardItem<M: MultiplyAdd>(
    _ d: UnsafePointer<ForwardDescriptor>, item: Int, scratch: ForwardScratch, _: M.Type
) {
    let d = d.pointee
    let x = ForwardItem(d, item: item, scratch: scratch)
    if let keys = loadQueryRows(d, x, M.self) {
        let Bc = d.keyBlock
        if x.rowsPadded <= 8 && d.packedKeys == nil { prefetchFirstBlock(d, x, block: keys.lowerBound / Bc) }
        for t in (keys.lowerBound / Bc)...((keys.upperBound - 1) / Bc) {
            // The last block stops at the last key any row sees (the causal diagonal, key lengths).
            let j0 = t * Bc, n = min(Bc, keys.upperBound - j0)
            computeBlockScores(d, x, block: t, count: n, M.self)
            maskAndRowMaxima(d, x, firstKey: j0, count: n, M.self)
            updateSoftmax(d, x, firstKey: j0, count: n, M.self)
            accumulateValues(d, x, firstKey: j0, count: n, M.self)
        }
    }
    writeRows(d, x)
    if let weights = d.weights { writeWeights(d, x, into: weights, M.self) }
}

/// Where one item is (batch, key/value head, rows, key range) and its scratch, carved as
/// ``ForwardScratchLayout`` lays it out: Q tile, S/P tile, O accumulator, row statistics m, m', α, l,
/// a key block packed on the fly, and each row's visible key range.
@usableFromInline
struct ForwardItem {
    @usableFromInline let b: Int, kvh: Int, split: Int
    @usableFromInline let rowRange: Range<Int>, rows: Int, rowsPadded: Int, statRows: Int
    @usableFromInline let splitKeys: Range<Int>
    @usableFromInline let Qt: UnsafeMutablePointer<Float>, S: UnsafeMutablePointer<Float>, O: UnsafeMutablePointer<Float>
    @usableFromInline let m: UnsafeMutablePointer<Float>, mNew: UnsafeMutablePointer<Float>
    @usableFromInline let alpha: UnsafeMutablePointer<Float>, l: UnsafeMutablePointer<Float>
    @usableFromInline let localKeys: UnsafeMutablePointer<Float>, localValues: UnsafeMutablePointer<Float>
    @usableFromInline let rowLo: UnsafeMutablePointer<Int>, rowHi: UnsafeMutablePointer<Int>
    /// b · Hkv + kvh, and this head's keys and values (elements of `d.storage`).
    @usableFromInline let kvHead: Int, kBase: UnsafeRawPointer, vBase: UnsafeRawPointer
    /// With interleaved keys, the row of key 0 from `kBase` (the tile it starts); else 0.
    @usableFromInline let keyFirstRow: Int

    @inlinable @inline(__always)
    init(_ d: ForwardDescriptor, item: Int, scratch: ForwardScratch) {
        var rest = item
        split = rest % d.splits; rest /= d.splits
        let rowBlock = rest % d.rowBlocksPerGroup; rest /= d.rowBlocksPerGroup
        kvh = rest % d.Hkv
        b = rest / d.Hkv
        rowRange = d.rows(ofBlock: rowBlock)
        rows = rowRange.count
        rowsPadded = (rows + 7) & ~7
        splitKeys = (split * d.splitLength)..<min(d.Nk, (split + 1) * d.splitLength)
        let layout = ForwardScratchLayout(rows: rows, D: d.D, Dv: d.Dv, keyBlock: d.keyBlock, storage: d.storage)
        statRows = layout.statRows
        Qt = scratch.floats + layout.queries
        S = scratch.floats + layout.scores
        O = scratch.floats + layout.output
        m = scratch.floats + layout.rowMax
        mNew = scratch.floats + layout.newRowMax
        alpha = scratch.floats + layout.rescale
        l = scratch.floats + layout.rowSum
        localKeys = scratch.floats + layout.packedKeys
        localValues = scratch.floats + layout.widenedValues
        rowLo = scratch.integers
        rowHi = scratch.integers + rowsPadded
        kvHead = b * d.Hkv + kvh
        let keys = d.keyOffset(batch: b, head: kvh)
        kBase = d.k + keys.bytes
        keyFirstRow = keys.firstRow
        vBase = d.v + d.headOffset(batch: b, head: kvh, rowLength: d.Dv)
    }

    /// Key `j` of this head onwards, as elements of type `E` (row-major keys).
    @inlinable @inline(__always)
    func keys<E: KeyValueElement>(from j: Int, D: Int, _: E.Type) -> UnsafePointer<E> {
        kBase.assumingMemoryBound(to: E.self) + j * D
    }

    /// Value `j` of this head onwards, as elements of type `E`.
    @inlinable @inline(__always)
    func values<E: KeyValueElement>(from j: Int, Dv: Int, _: E.Type) -> UnsafePointer<E> {
        vBase.assumingMemoryBound(to: E.self) + j * Dv
    }

    /// The query head and query index of row `r` of the block.
    @inlinable @inline(__always)
    func headAndQuery(_ d: ForwardDescriptor, row r: Int) -> (h: Int, i: Int) {
        let rho = rowRange.lowerBound + r
        return (kvh * d.groupSize + rho / d.Nq, rho % d.Nq)
    }
}

/// Asks for `count` keys from key `keys` on and as many values from `values` on in L2 ahead of their
/// use. With few rows (decoding) each block of K and V is read once, from memory, in two short
/// phases the hardware prefetcher does not run ahead of; without the hint compute and memory take
/// turns instead of overlapping. Prefetching past the end of a buffer is harmless (no fault).
@inlinable @inline(__always)
func prefetchKeysAndValues(_ d: ForwardDescriptor, _ x: ForwardItem, keys kj: Int, values vj: Int, count n: Int) {
    let bytes = d.storage.byteCount
    let k = x.kBase + kj * d.D * bytes, v = x.vBase + vj * d.Dv * bytes
    prefetchLines(k, bytes: n * d.D * bytes)
    prefetchLines(v, bytes: n * d.Dv * bytes)
}

/// Asks for the keys and values of key block `t` in L2 before the few-row loop reads them: the loop
/// asks for each next block as it goes, but nothing asked for the first. In batched decoding each
/// sequence's cache was last read a step ago and is cold, and a block's values are read only after
/// its scores: asked for together, their fetches overlap.
@inlinable @inline(__always)
func prefetchFirstBlock(_ d: ForwardDescriptor, _ x: ForwardItem, block t: Int) {
    let bytes = d.storage.byteCount, j0 = t * d.keyBlock, n = min(d.keyBlock, d.Nk - j0)
    if d.keysInterleaved {
        let first = x.keyFirstRow + j0, tile = keyTilePositions
        let firstTile = first / tile, tiles = (first + n + tile - 1) / tile - firstTile
        prefetchLines(x.kBase + firstTile * tile * d.D * bytes, bytes: tiles * tile * d.D * bytes)
    } else {
        prefetchLines(x.kBase + j0 * d.D * bytes, bytes: n * d.D * bytes)
    }
    prefetchLines(x.vBase + j0 * d.Dv * bytes, bytes: n * d.Dv * bytes)
}

/// Asks for the cache lines of `[p, p + bytes)` in L2, one hint per 64-byte line. Hints past the end
/// of a buffer are harmless: prefetches never fault.
@inlinable @inline(__always)
func prefetchLines(_ p: UnsafeRawPointer, bytes: Int) {
    var offset = 0
    while offset < bytes {
        attention_prefetch_l2(p + offset)
        offset += 64
    }
}

// The phases are generic over `M` even where they do not use it: a non-generic function that the
// optimizer leaves out of line is called in `_AttentionKernels`' own baseline build, not compiled
// again for the caller's instruction set.

/// Loads the query rows scaled into base 2 (padding rows zero), resets the statistics and O, records
/// each row's visible keys, and returns the keys the block can see at all (nil: none).
@inlinable @inline(__always)
func loadQueryRows<M: MultiplyAdd>(_ d: ForwardDescriptor, _ x: ForwardItem, _: M.Type) -> Range<Int>? {
    let (D, Dv) = (d.D, d.Dv)
    for r in 0..<x.statRows {
        x.m[r] = -.infinity
        x.mNew[r] = -.infinity
        x.l[r] = 0
    }
    var unionLo = Int.max, unionHi = Int.min
    for r in 0..<x.rowsPadded {
        (x.O + r * Dv).update(repeating: 0, count: Dv)
        guard r < x.rows else {
            (x.Qt + r * D).update(repeating: 0, count: D)
            x.rowLo[r] = 0; x.rowHi[r] = 0
            continue
        }
        let (h, i) = x.headAndQuery(d, row: r)
        let qRow = d.q + ((x.b * d.Hq + h) * d.Nq + i) * D
        let scaled = x.Qt + r * D, scale = d.scaleLog2
        for c in 0..<D { scaled[c] = qRow[c] * scale }
        let visible = d.visibleKeys(batch: x.b, query: i, within: x.splitKeys)
        x.rowLo[r] = visible.lowerBound; x.rowHi[r] = visible.upperBound
        if !visible.isEmpty {
            unionLo = min(unionLo, visible.lowerBound)
            unionHi = max(unionHi, visible.upperBound)
        }
    }
    // Padding rows must read as zero probabilities in O += P·V whichever path computes S.
    (x.S + x.rows * d.keyBlock).update(repeating: 0, count: (x.rowsPadded - x.rows) * d.keyBlock)
    return unionLo < unionHi ? unionLo..<unionHi : nil
}

/// S = Q·Kᵀ for key block `t`: by the micro-kernel on keys packed transposed (once for the whole call,
/// or here), or, for a few rows without packed keys (decoding), by dot products on row-major keys.
@inlinable @inline(__always)
func computeBlockScores<M: MultiplyAdd>(_ d: ForwardDescriptor, _ x: ForwardItem, block t: Int, count n: Int, _: M.Type) {
    let (D, Bc) = (d.D, d.keyBlock)
    if d.packedKeys == nil && x.rowsPadded <= 8 && d.keysInterleaved {
        switch d.storage {
        case .float32: interleavedBlockScores(d, x, block: t, count: n, Float.self, M.self)
        case .float16: interleavedBlockScores(d, x, block: t, count: n, HalfBits.self, M.self)
        case .bfloat16: interleavedBlockScores(d, x, block: t, count: n, BFloat16Bits.self, M.self)
        }
        return
    }
    if d.packedKeys == nil && x.rowsPadded <= 8 {
        let j0 = t * Bc
        for p in stride(from: 0, to: n, by: 8) {
            let c = min(8, n - p)
            prefetchKeysAndValues(d, x, keys: j0 + p + Bc, values: j0 + p + Bc, count: max(0, min(c, x.splitKeys.upperBound - (j0 + p + Bc))))
            switch d.storage {
            case .float32: dotProductScores(x.Qt, rows: x.rows, D: D, keys: x.keys(from: j0 + p, D: D, Float.self), count: c, into: x.S + p, ldS: Bc, M.self)
            case .float16: dotProductScores(x.Qt, rows: x.rows, D: D, keys: x.keys(from: j0 + p, D: D, HalfBits.self), count: c, into: x.S + p, ldS: Bc, M.self)
            case .bfloat16: dotProductScores(x.Qt, rows: x.rows, D: D, keys: x.keys(from: j0 + p, D: D, BFloat16Bits.self), count: c, into: x.S + p, ldS: Bc, M.self)
            }
        }
        return
    }
    let Kt = packedKeyBlock(d, x, block: t, count: n, M.self)
    computeScores(x.Qt, rows: x.rowsPadded, D: D, packedKeys: Kt, count: n, into: x.S, ldS: Bc, M.self)
}

/// ``computeBlockScores(_:_:block:count:_:)`` for a few rows against interleaved keys: two tiles at a
/// time, asking for the keys and values one key block ahead as it goes.
@inlinable @inline(__always)
func interleavedBlockScores<E: KeyValueElement, M: MultiplyAdd>(
    _ d: ForwardDescriptor, _ x: ForwardItem, block t: Int, count n: Int, _: E.Type, _: M.Type
) {
    let (D, Bc, tile) = (d.D, d.keyBlock, keyTilePositions)
    let first = x.keyFirstRow + t * Bc   // the row of the block's first key, from kBase
    let firstTile = first / tile, tiles = (first + n + tile - 1) / tile - firstTile
    let keys = x.kBase.assumingMemoryBound(to: E.self) + firstTile * tile * D
    let tileBytes = tile * D * MemoryLayout<E>.stride
    let end = x.splitKeys.upperBound   // the item reads no key at or past it
    for p in stride(from: 0, to: tiles, by: 2) {
        // One block ahead: the tiles Bc rows on (Bc is a multiple of 16), and as many value rows, as
        // far as the item reads (past that, a decoding step's short history had the hints fetch
        // lines nothing read: a quarter of the scores' time, perf, 48 keys, AMD Zen 4).
        let count = min(2, tiles - p)
        let aheadKey = (firstTile + p) * tile - x.keyFirstRow + Bc   // the first key of the tiles ahead
        let aheadTiles = max(0, (min(end, aheadKey + count * tile) - aheadKey + tile - 1) / tile)
        let valueRow = t * Bc + Bc + max(0, (firstTile + p) * tile - first)
        let aheadValues = max(0, min(count * tile, end - valueRow))
        let ahead = PrefetchRanges(UnsafeRawPointer(keys + (p * tile + Bc) * D), bytes: aheadTiles * tileBytes,
                                   x.vBase + valueRow * d.Dv * MemoryLayout<E>.stride, bytes: aheadValues * d.Dv * MemoryLayout<E>.stride)
        interleavedKeyScores(x.Qt, rows: x.rows, D: D, tiles: keys + p * tile * D, tileCount: count,
                             firstColumn: (firstTile + p) * tile - first, count: n, into: x.S, ldS: Bc, prefetch: ahead, M.self)
    }
}

/// Key block `t` packed transposed in this target's panels: from the keys packed once for the call,
/// or packed here into the item's scratch.
@inlinable @inline(__always)
func packedKeyBlock<M: MultiplyAdd>(_ d: ForwardDescriptor, _ x: ForwardItem, block t: Int, count n: Int, _: M.Type)
    -> UnsafePointer<Float> {
    let (D, Bc) = (d.D, d.keyBlock)
    if let packed = d.packedKeys { return packed + (x.kvHead * d.keyBlocks + t) * D * Bc }
    packKeys(d, x.kBase, firstRow: x.keyFirstRow, from: t * Bc, count: n, panel: M.registers.keyPanelWidth, into: x.localKeys, M.self)
    return UnsafePointer(x.localKeys)
}

/// Packs key block `block` of `B·Hkv·keyBlocks` (key/value head `block / keyBlocks`, keys from
/// `keyBlock · (block % keyBlocks)`) transposed into `destination`, widening 16-bit keys: what
/// ``ForwardDescriptor/packedKeys`` holds when keys are packed once for the call.
@inlinable @inline(__always)
public func packKeyBlock<M: MultiplyAdd>(
    _ d: UnsafePointer<ForwardDescriptor>, block: Int, into destination: UnsafeMutablePointer<Float>, _: M.Type
) {
    let d = d.pointee
    let (kvHead, t) = (block / d.keyBlocks, block % d.keyBlocks)
    let j0 = t * d.keyBlock, n = min(d.keyBlock, d.Nk - j0), panel = M.registers.keyPanelWidth
    let keys = d.keyOffset(batch: kvHead / d.Hkv, head: kvHead % d.Hkv)
    packKeys(d, d.k + keys.bytes, firstRow: keys.firstRow, from: j0, count: n, panel: panel, into: destination, M.self)
}

/// Packs keys `j0 ..< j0 + n` of the head whose keys start at `base` (with interleaved keys, key 0 at
/// row `firstRow` there) transposed in panels of `panel`, widened to Float.
@inlinable @inline(__always)
func packKeys<M: MultiplyAdd>(
    _ d: ForwardDescriptor, _ base: UnsafeRawPointer, firstRow: Int, from j0: Int, count n: Int, panel: Int,
    into destination: UnsafeMutablePointer<Float>, _: M.Type
) {
    func pack<E: KeyValueElement>(_: E.Type) {
        let keys = base.assumingMemoryBound(to: E.self)
        if d.keysInterleaved {
            packInterleavedKeysTransposed(keys, firstRow: firstRow + j0, D: d.D, count: n, panel: panel, into: destination, M.self)
        } else {
            packKeysTransposed(keys + j0 * d.D, D: d.D, count: n, panel: panel, into: destination)
        }
    }
    switch d.storage {
    case .float32: pack(Float.self)
    case .float16: pack(HalfBits.self)
    case .bfloat16: pack(BFloat16Bits.self)
    }
}

/// Hides the scores the masks hide (-inf) and sets m' = max(m, rowmax S) for every row.
@inlinable @inline(__always)
func maskAndRowMaxima<M: MultiplyAdd>(_ d: ForwardDescriptor, _ x: ForwardItem, firstKey j0: Int, count n: Int, _: M.Type) {
    let padded = (n + 31) & ~31
    for r in 0..<x.rows {
        let Sr = x.S + r * d.keyBlock
        let lo = max(x.rowLo[r] - j0, 0), hi = min(x.rowHi[r] - j0, n)
        x.mNew[r] = x.m[r]
        guard lo < hi else { continue }
        for j in 0..<lo { Sr[j] = -.infinity }
        for j in hi..<padded { Sr[j] = -.infinity }
        if d.bias != nil || d.booleanMasks.count > 0 {
            let (h, i) = x.headAndQuery(d, row: r)
            applyBiasAndMasks(d, Sr, batch: x.b, head: h, query: i, keys: j0, range: lo..<hi)
        }
        var blockMax = load(Sr)
        for j in stride(from: 16, to: padded, by: 16) { blockMax = lanewiseMax(blockMax, load(Sr + j)) }
        x.mNew[r] = max(x.m[r], horizontalMax(blockMax))
    }
}

/// α = 2^(m - m'), P = 2^(S - m') in place of S, l = α·l + rowsum P, O = α·O, m = m'.
@inlinable @inline(__always)
func updateSoftmax<M: MultiplyAdd>(_ d: ForwardDescriptor, _ x: ForwardItem, firstKey j0: Int, count n: Int, _: M.Type) {
    let padded = (n + 31) & ~31
    // Sixteen rows at a time; α = 1 while a row has seen nothing (m' = -inf), where the subtraction
    // would give NaN.
    for r0 in stride(from: 0, to: x.rows, by: 16) {
        let old = load(x.m + r0), new = load(x.mNew + r0)
        let a = exp2Vector(old - new, M.self)
        store(a.replacing(with: 1, where: new .== -.infinity), x.alpha + r0)
    }
    for r in 0..<x.rows {
        let Sr = x.S + r * d.keyBlock
        let lo = max(x.rowLo[r] - j0, 0), hi = min(x.rowHi[r] - j0, n)
        if lo >= hi || x.mNew[r] == -.infinity {
            Sr.update(repeating: 0, count: padded)
            continue
        }
        let shift = SIMD16<Float>(repeating: x.mNew[r])
        var sum = SIMD16<Float>.zero
        for j in stride(from: 0, to: padded, by: 16) {
            let p = exp2Vector(load(Sr + j) - shift, M.self)
            store(p, Sr + j)
            sum += p
        }
        x.l[r] = x.l[r] * x.alpha[r] + horizontalSum(sum)
        x.m[r] = x.mNew[r]
        if x.alpha[r] != 1 {
            let Or = x.O + r * d.Dv, factor = x.alpha[r]
            for c in 0..<d.Dv { Or[c] *= factor }
        }
    }
}

/// O += P·V for the block's `n` keys: streaming whole value rows when there are few rows (decoding,
/// reading 16-bit values as they are), else the register tiles of the target
/// (on a block of values widened to Float first when they are stored in 16 bits).
@inlinable @inline(__always)
func accumulateValues<M: MultiplyAdd>(_ d: ForwardDescriptor, _ x: ForwardItem, firstKey j0: Int, count n: Int, _: M.Type) {
    let Dv = d.Dv
    if x.rowsPadded <= 8 && Dv % 64 == 0 {
        switch d.storage {
        case .float32: accumulateDecodeValues(d, x, x.values(from: j0, Dv: Dv, Float.self), firstKey: j0, count: n, M.self)
        case .float16: accumulateDecodeValues(d, x, x.values(from: j0, Dv: Dv, HalfBits.self), firstKey: j0, count: n, M.self)
        case .bfloat16: accumulateDecodeValues(d, x, x.values(from: j0, Dv: Dv, BFloat16Bits.self), firstKey: j0, count: n, M.self)
        }
        return
    }
    let Vb: UnsafePointer<Float>
    switch d.storage {
    case .float32: Vb = x.values(from: j0, Dv: Dv, Float.self)
    case .float16:
        widenRows(x.values(from: j0, Dv: Dv, HalfBits.self), into: x.localValues, count: n * Dv, M.self)
        Vb = UnsafePointer(x.localValues)
    case .bfloat16:
        widenRows(x.values(from: j0, Dv: Dv, BFloat16Bits.self), into: x.localValues, count: n * Dv, M.self)
        Vb = UnsafePointer(x.localValues)
    }
    accumulateBlockValues(d, x, Vb, count: n, M.self)
}

/// O += P·V with few rows: whole value rows streamed in order, four query rows at a time where
/// there are more than two, else two. `Vb` holds the values of keys `j0 ..< j0 + n`; the tiles ask
/// for the next block's as far as the item reads.
@inlinable @inline(__always)
func accumulateDecodeValues<M: MultiplyAdd, E: KeyValueElement>(
    _ d: ForwardDescriptor, _ x: ForwardItem, _ Vb: UnsafePointer<E>, firstKey j0: Int, count n: Int, _: M.Type
) {
    let (Dv, Bc) = (d.Dv, d.keyBlock)
    let P = UnsafePointer(x.S), O = x.O
    let ahead = max(0, min(n, x.splitKeys.upperBound - (j0 + n)))
    if M.registers == .narrow {
        // Four rows at a time: each 16-column piece of a value row is loaded (and widened) once for
        // all four (a group of grouped-query heads), where pairs of rows would load it twice.
        for r0 in stride(from: 0, to: x.rows, by: 4) {
            for c0 in stride(from: 0, to: Dv, by: 16) {
                tile4x16Decode(P + r0 * Bc, Bc, Vb + c0, Dv, O + r0 * Dv + c0, Dv, n, prefetching: ahead, M.self)
            }
        }
        return
    }
    if x.rows > 2 {
        // Four rows at a time (the padding rows up to `rowsPadded` have zero probabilities): each
        // piece of a value row is loaded and widened once for a group of grouped-query heads.
        for r0 in stride(from: 0, to: x.rows, by: 4) {
            for c0 in stride(from: 0, to: Dv, by: 64) {
                tile4x64Decode(P + r0 * Bc, Bc, Vb + c0, Dv, O + r0 * Dv + c0, Dv, n, prefetching: ahead, M.self)
            }
        }
        return
    }
    for r0 in stride(from: 0, to: x.rows, by: 2) {
        for c0 in stride(from: 0, to: Dv, by: Dv % 128 == 0 ? 128 : 64) {
            if Dv % 128 == 0 {
                tile2x128(P + r0 * Bc, Bc, Vb + c0, Dv, O + r0 * Dv + c0, Dv, n, prefetching: ahead, M.self)
            } else {
                tile2x64(P + r0 * Bc, Bc, Vb + c0, Dv, O + r0 * Dv + c0, Dv, n, prefetching: ahead, M.self)
            }
        }
    }
}

/// O += P·V for a block of Float values by the target's register tiles.
@inlinable @inline(__always)
func accumulateBlockValues<M: MultiplyAdd>(
    _ d: ForwardDescriptor, _ x: ForwardItem, _ Vb: UnsafePointer<Float>, count n: Int, _: M.Type
) {
    let (Dv, Bc) = (d.Dv, d.keyBlock)
    let P = UnsafePointer(x.S), O = x.O
    if M.registers == .narrow {
        accumulateProductNarrow(P, Bc, Vb, Dv, O, Dv, rows: x.rowsPadded, cols: Dv, k: n, M.self)
        return
    }
    for r0 in stride(from: 0, to: x.rowsPadded, by: 8) {
        let Pr = P + r0 * Bc, Or = O + r0 * Dv
        var c0 = 0
        while c0 + 32 <= Dv {
            tile8x32(Pr, Bc, Vb + c0, Dv, Or + c0, Dv, n, accumulate: true, M.self)
            c0 += 32
        }
        if c0 + 16 <= Dv {
            tile8x16(Pr, Bc, Vb + c0, Dv, Or + c0, Dv, n, accumulate: true, M.self)
            c0 += 16
        }
        if c0 < Dv { tile8xScalar(Pr, Bc, Vb + c0, Dv, Or + c0, Dv, n, columns: Dv - c0) }
    }
}

/// Writes the normalized output and log-sum-exp of each row, or this split's partial result.
@inlinable @inline(__always)
func writeRows(_ d: ForwardDescriptor, _ x: ForwardItem) {
    let Dv = d.Dv
    for r in 0..<x.rows {
        let (h, i) = x.headAndQuery(d, row: r)
        let row = (x.b * d.Hq + h) * d.Nq + i
        let live = x.l[r] > 0
        let inverse = live ? 1 / x.l[r] : 0
        let destination: UnsafeMutablePointer<Float>
        if d.splits > 1, let partial = d.partialOutput, let partialL = d.partialLogSumExp {
            destination = partial + (row * d.splits + x.split) * Dv
            partialL[row * d.splits + x.split] = live ? x.m[r] + log2f(x.l[r]) : -.infinity
        } else {
            destination = d.o + row * Dv
            // In Double: the conversion from base 2 should not add to the error of m and l.
            d.lse?[row] = live ? Float((Double(x.m[r]) + log2(Double(x.l[r]))) * 0.693_147_180_559_945_3) : -.infinity
        }
        // Through a row pointer: indexing `O` by `r·Dv + c` (overflow-checked) kept the loop scalar.
        let source = x.O + r * Dv
        for c in 0..<Dv { destination[c] = source[c] * inverse }
    }
}

/// The weights P = 2^(S₂ - L₂), recomputed block by block from the final row statistics
/// (only when the caller asked for them; a single key split is guaranteed then).
@inlinable @inline(__always)
func writeWeights<M: MultiplyAdd>(_ d: ForwardDescriptor, _ x: ForwardItem, into weights: UnsafeMutablePointer<Float>, _: M.Type) {
    let (Bc, Nq, Nk) = (d.keyBlock, d.Nq, d.Nk)
    for t in 0..<d.keyBlocks {
        let j0 = t * Bc, n = min(Bc, Nk - j0)
        // The same score path as the forward's (for few rows, dot products rather than the
        // micro-kernel), so that S and the row statistics agree to the bit: a row that sees one key
        // gets exactly 1.
        computeBlockScores(d, x, block: t, count: n, M.self)
        for r in 0..<x.rows {
            let (h, i) = x.headAndQuery(d, row: r)
            let out = weights + ((x.b * d.Hq + h) * Nq + i) * Nk + j0
            let Sr = x.S + r * Bc
            let lo = max(x.rowLo[r] - j0, 0), hi = min(x.rowHi[r] - j0, n)
            out.update(repeating: 0, count: n)
            guard lo < hi, x.l[r] > 0 else { continue }
            applyBiasAndMasks(d, Sr, batch: x.b, head: h, query: i, keys: j0, range: lo..<hi)
            let lse2 = x.m[r] + log2f(x.l[r])
            for j in lo..<hi where Sr[j] > -.infinity { out[j] = exp2f(Sr[j] - lse2) }
        }
    }
}
