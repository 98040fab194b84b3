import _KernelIntrinsics

/// `S[r][j] = Q[r]·K[j]` for a few query rows against row-major keys, without packing the keys.
///
/// This is the decoding path: with a handful of query rows, transposing each key block for the
/// micro-kernel would cost more than the arithmetic. Four rows and two keys at a time give eight
/// independent accumulator chains; each key vector is loaded once for all four rows, and the eight
/// sums are reduced by one shared tree of shuffles (`_KernelIntrinsics`, LaneSums.h).
@inlinable @inline(__always)
public func dotProductScores<M: MultiplyAdd, E: KeyValueElement>(
    _ Qt: UnsafePointer<Float>, rows: Int, D: Int, keys k: UnsafePointer<E>, count n: Int,
    into S: UnsafeMutablePointer<Float>, ldS: Int, _: M.Type
) {
    if M.registers == .narrow { return dotProductScoresNarrow(Qt, rows: rows, D: D, keys: k, count: n, into: S, ldS: ldS, M.self) }
    let vectorD = D & ~15
    for r0 in stride(from: 0, to: rows, by: 4) {
        let q0 = Qt + r0 * D, q1 = q0 + D, q2 = q1 + D, q3 = q2 + D
        var j = 0
        while j < n {
            let pair = j + 1 < n
            let k0 = k + j * D, k1 = pair ? k0 + D : k0
            var a00 = SIMD16<Float>.zero, a10 = a00, a20 = a00, a30 = a00
            var a01 = SIMD16<Float>.zero, a11 = a00, a21 = a00, a31 = a00
            var c = 0
            while c < vectorD {
                let x0 = E.load16(k0 + c, M.self), x1 = E.load16(k1 + c, M.self)
                let y0 = load(q0 + c), y1 = load(q1 + c), y2 = load(q2 + c), y3 = load(q3 + c)
                a00 = M.multiplyAdd(y0, x0, a00); a01 = M.multiplyAdd(y0, x1, a01)
                a10 = M.multiplyAdd(y1, x0, a10); a11 = M.multiplyAdd(y1, x1, a11)
                a20 = M.multiplyAdd(y2, x0, a20); a21 = M.multiplyAdd(y2, x1, a21)
                a30 = M.multiplyAdd(y3, x0, a30); a31 = M.multiplyAdd(y3, x1, a31)
                c += 16
            }
            let total = attention_lane_sums16x8(a00, a10, a20, a30, a01, a11, a21, a31)
                + remainingProducts(q0, D: D, from: c, k0, k1)
            storePairScores(total, S + r0 * ldS + j, ldS: ldS, pair: pair)
            j += 2
        }
    }
}

/// ``dotProductScores(_:rows:D:keys:count:into:ldS:_:)`` with eight-lane vectors: eight accumulators
/// and six loaded vectors fit AVX2's sixteen registers.
@inlinable @inline(__always)
func dotProductScoresNarrow<M: MultiplyAdd, E: KeyValueElement>(
    _ Qt: UnsafePointer<Float>, rows: Int, D: Int, keys k: UnsafePointer<E>, count n: Int,
    into S: UnsafeMutablePointer<Float>, ldS: Int, _: M.Type
) {
    let vectorD = D & ~7
    for r0 in stride(from: 0, to: rows, by: 4) {
        let q0 = Qt + r0 * D, q1 = q0 + D, q2 = q1 + D, q3 = q2 + D
        var j = 0
        while j < n {
            let pair = j + 1 < n
            let k0 = k + j * D, k1 = pair ? k0 + D : k0
            var a00 = SIMD8<Float>.zero, a10 = a00, a20 = a00, a30 = a00
            var a01 = SIMD8<Float>.zero, a11 = a00, a21 = a00, a31 = a00
            var c = 0
            while c < vectorD {
                let x0 = E.load8(k0 + c, M.self), x1 = E.load8(k1 + c, M.self)
                let y0 = load8(q0 + c), y1 = load8(q1 + c), y2 = load8(q2 + c), y3 = load8(q3 + c)
                a00 = M.multiplyAdd(y0, x0, a00); a01 = M.multiplyAdd(y0, x1, a01)
                a10 = M.multiplyAdd(y1, x0, a10); a11 = M.multiplyAdd(y1, x1, a11)
                a20 = M.multiplyAdd(y2, x0, a20); a21 = M.multiplyAdd(y2, x1, a21)
                a30 = M.multiplyAdd(y3, x0, a30); a31 = M.multiplyAdd(y3, x1, a31)
                c += 8
            }
            let total = attention_lane_sums8x8(a00, a10, a20, a30, a01, a11, a21, a31)
                + remainingProducts(q0, D: D, from: c, k0, k1)
            storePairScores(total, S + r0 * ldS + j, ldS: ldS, pair: pair)
            j += 2
        }
    }
}

/// The scalar end (columns `c ..< D`) of the dot products of four query rows, `D` apart from `q0`,
/// with keys `k0` and `k1`, in the lane order of the sums: the four rows with `k0`, then with `k1`.
@inlinable @inline(__always)
func remainingProducts<E: KeyValueElement>(
    _ q0: UnsafePointer<Float>, D: Int, from c: Int, _ k0: UnsafePointer<E>, _ k1: UnsafePointer<E>
) -> SIMD8<Float> {
    var t = SIMD8<Float>.zero
    for c in c..<D {
        let x0 = k0[c].floatValue, x1 = k1[c].floatValue
        for r in 0..<4 {
            t[r] += q0[r * D + c] * x0
            t[4 + r] += q0[r * D + c] * x1
        }
    }
    return t
}

/// Writes the scores of four rows (`ldS` apart from `s`) with a key (lanes 0-3 of `total`) and,
/// when `pair`, with the next key (lanes 4-7).
@inlinable @inline(__always)
func storePairScores(_ total: SIMD8<Float>, _ s: UnsafeMutablePointer<Float>, ldS: Int, pair: Bool) {
    for r in 0..<4 { s[r * ldS] = total[r] }
    if pair { for r in 0..<4 { s[r * ldS + 1] = total[4 + r] } }
}

/// Positions per tile of keys interleaved for decoding (a ``KVCache``'s layout): key row `j` of a
/// head, element `c`, is at `(j / 16) · 16 · D + c · 16 + j mod 16`. One vector load then holds
/// element `c` of sixteen keys, so dot products accumulate in the lanes of the score vector itself.
public let keyTilePositions = 16

/// The index of element `c` of key row `row` in keys interleaved by ``keyTilePositions``.
@inlinable @inline(__always)
public func interleavedKeyIndex(row: Int, column c: Int, D: Int) -> Int {
    (row / keyTilePositions) * keyTilePositions * D + c * keyTilePositions + row % keyTilePositions
}

/// `S[r][j] = Q[r]·K[j]` for a few query rows against keys interleaved by sixteen positions
/// (``keyTilePositions``): the decoding path over a KV cache.
///
/// Tile `t` (16 keys, `[D][16]`, from `tiles + 16·D·t`) gives the scores of columns
/// `firstColumn + 16·t ..< firstColumn + 16·(t + 1)` of S; only columns in `0 ..< n` are written
/// (the first and last tile of a range may be partial). Each element of a tile is loaded and widened
/// once for four query rows, and the sums land in the lanes of the scores: no lane reduction and no
/// scalar stores, which cost as much as the products themselves with row-major keys (`perf annotate`,
/// float16, Intel Xeon family 6 model 207). Rows are taken four at a time, as for row-major keys:
/// `S` and `Qt` hold whole groups of four (padding rows of `Qt` are zero).
@inlinable @inline(__always)
public func interleavedKeyScores<M: MultiplyAdd, E: KeyValueElement>(
    _ Qt: UnsafePointer<Float>, rows: Int, D: Int, tiles: UnsafePointer<E>, tileCount: Int, firstColumn: Int,
    count n: Int, into S: UnsafeMutablePointer<Float>, ldS: Int, prefetch: PrefetchRanges, _: M.Type
) {
    let tileLength = keyTilePositions * D
    let step = M.registers.interleavedTilesPerStep
    var t = 0
    while t < tileCount {
        let pair = step == 2 && t + 1 < tileCount
        let k0 = tiles + t * tileLength, k1 = pair ? k0 + tileLength : k0
        for r0 in stride(from: 0, to: rows, by: 4) {
            let q0 = Qt + r0 * D, q1 = q0 + D, q2 = q1 + D, q3 = q2 + D
            var a00 = SIMD16<Float>.zero, a10 = a00, a20 = a00, a30 = a00
            var a01 = SIMD16<Float>.zero, a11 = a00, a21 = a00, a31 = a00
            // The first group of rows also asks for `prefetch`, in slices spread over the columns
            // (``RegisterShape/prefetchSlices``).
            let slices = M.registers.prefetchSlices, sliceLength = (D + slices - 1) / slices
            for slice in 0..<slices {
                if r0 == 0 { prefetch.request(slice: slice, of: slices) }
                let columns = min(D, slice * sliceLength)..<min(D, (slice + 1) * sliceLength)
                if pair {
                    for c in columns {
                        let x0 = E.load16(k0 + c * keyTilePositions, M.self), x1 = E.load16(k1 + c * keyTilePositions, M.self)
                        let y0 = SIMD16<Float>(repeating: q0[c]), y1 = SIMD16<Float>(repeating: q1[c])
                        let y2 = SIMD16<Float>(repeating: q2[c]), y3 = SIMD16<Float>(repeating: q3[c])
                        a00 = M.multiplyAdd(y0, x0, a00); a01 = M.multiplyAdd(y0, x1, a01)
                        a10 = M.multiplyAdd(y1, x0, a10); a11 = M.multiplyAdd(y1, x1, a11)
                        a20 = M.multiplyAdd(y2, x0, a20); a21 = M.multiplyAdd(y2, x1, a21)
                        a30 = M.multiplyAdd(y3, x0, a30); a31 = M.multiplyAdd(y3, x1, a31)
                    }
                } else {
                    for c in columns {
                        let x0 = E.load16(k0 + c * keyTilePositions, M.self)
                        a00 = M.multiplyAdd(SIMD16<Float>(repeating: q0[c]), x0, a00)
                        a10 = M.multiplyAdd(SIMD16<Float>(repeating: q1[c]), x0, a10)
                        a20 = M.multiplyAdd(SIMD16<Float>(repeating: q2[c]), x0, a20)
                        a30 = M.multiplyAdd(SIMD16<Float>(repeating: q3[c]), x0, a30)
                    }
                }
            }
            let column = firstColumn + t * keyTilePositions, s = S + r0 * ldS
            storeTileScores(a00, s, column: column, count: n)
            storeTileScores(a10, s + ldS, column: column, count: n)
            storeTileScores(a20, s + 2 * ldS, column: column, count: n)
            storeTileScores(a30, s + 3 * ldS, column: column, count: n)
            if pair {
                storeTileScores(a01, s, column: column + keyTilePositions, count: n)
                storeTileScores(a11, s + ldS, column: column + keyTilePositions, count: n)
                storeTileScores(a21, s + 2 * ldS, column: column + keyTilePositions, count: n)
                storeTileScores(a31, s + 3 * ldS, column: column + keyTilePositions, count: n)
            }
        }
        t += pair ? 2 : 1
    }
}

/// Two byte ranges to ask for in L2 ahead of their use (decoding's keys and values one block on),
/// in slices that a kernel spreads over its work.
public struct PrefetchRanges {
    public var first: UnsafeRawPointer, firstBytes: Int
    public var second: UnsafeRawPointer, secondBytes: Int

    @inlinable
    public init(_ first: UnsafeRawPointer, bytes firstBytes: Int, _ second: UnsafeRawPointer, bytes secondBytes: Int) {
        (self.first, self.firstBytes, self.second, self.secondBytes) = (first, firstBytes, second, secondBytes)
    }

    /// Asks for slice `i` of `count` of both ranges (whole 64-byte lines; the slices cover each range).
    @inlinable @inline(__always)
    public func request(slice i: Int, of count: Int) {
        func lines(_ p: UnsafeRawPointer, _ bytes: Int) {
            let lo = (i * bytes / count) & ~63, hi = i + 1 == count ? bytes : ((i + 1) * bytes / count) & ~63
            prefetchLines(p + lo, bytes: hi - lo)
        }
        lines(first, firstBytes)
        lines(second, secondBytes)
    }
}

/// Writes the lanes of `scores` that fall in columns `0 ..< n` of the row at `s`, lane 0 at `column`.
@inlinable @inline(__always)
func storeTileScores(_ scores: SIMD16<Float>, _ s: UnsafeMutablePointer<Float>, column: Int, count n: Int) {
    if column >= 0 && column + 16 <= n {
        UnsafeMutableRawPointer(s + column).storeBytes(of: scores, as: SIMD16<Float>.self)
        return
    }
    var lane = max(0, -column)
    while lane < min(16, n - column) {
        s[column + lane] = scores[lane]
        lane += 1
    }
}
