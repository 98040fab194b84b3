import _LaneSums

/// `S[r][j] = Q[r]·K[j]` for a few query rows against row-major keys, without packing the keys.
///
/// This is the decoding path: with a handful of query rows, transposing each key block for the
/// micro-kernel would cost more than the arithmetic. Four rows and two keys at a time give eight
/// independent accumulator chains; each key vector is loaded once for all four rows, and the eight
/// sums are reduced by one shared tree of shuffles (`_LaneSums`).
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
