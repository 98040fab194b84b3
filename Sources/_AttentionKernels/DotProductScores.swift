/// `S[r][j] = Q[r]·K[j]` for a few query rows against row-major keys, without packing the keys.
///
/// This is the decoding path: with a handful of query rows, transposing each key block for the
/// micro-kernel would cost more than the arithmetic. Four rows and two keys at a time give eight
/// independent accumulator chains; each key vector is loaded once for all four rows.
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
            var t00: Float = 0, t10: Float = 0, t20: Float = 0, t30: Float = 0
            var t01: Float = 0, t11: Float = 0, t21: Float = 0, t31: Float = 0
            while c < D {
                let x0 = k0[c].floatValue, x1 = k1[c].floatValue
                t00 += q0[c] * x0; t01 += q0[c] * x1
                t10 += q1[c] * x0; t11 += q1[c] * x1
                t20 += q2[c] * x0; t21 += q2[c] * x1
                t30 += q3[c] * x0; t31 += q3[c] * x1
                c += 1
            }
            let s = S + r0 * ldS + j
            let first = sums(a00, a10, a20, a30), second = sums(a01, a11, a21, a31)
            s[0] = first[0] + t00
            s[ldS] = first[1] + t10
            s[2 * ldS] = first[2] + t20
            s[3 * ldS] = first[3] + t30
            if pair {
                s[1] = second[0] + t01
                s[ldS + 1] = second[1] + t11
                s[2 * ldS + 1] = second[2] + t21
                s[3 * ldS + 1] = second[3] + t31
            }
            j += 2
        }
    }
}

/// The lane sums of four vectors at once, sharing the shuffles of one reduction tree (about a third
/// of the instructions of four separate horizontal sums).
@inlinable @inline(__always)
func sums(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>, _ d: SIMD8<Float>) -> SIMD4<Float> {
    let ab = SIMD8(lowHalf: a.lowHalf, highHalf: b.lowHalf) + SIMD8(lowHalf: a.highHalf, highHalf: b.highHalf)
    let cd = SIMD8(lowHalf: c.lowHalf, highHalf: d.lowHalf) + SIMD8(lowHalf: c.highHalf, highHalf: d.highHalf)
    // ab = [a folded to 4 | b folded to 4]; pairwise sums of ab and cd, then once more.
    let pairs = SIMD8(lowHalf: ab.evenHalf, highHalf: cd.evenHalf) + SIMD8(lowHalf: ab.oddHalf, highHalf: cd.oddHalf)
    return pairs.evenHalf + pairs.oddHalf
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
            var t00: Float = 0, t10: Float = 0, t20: Float = 0, t30: Float = 0
            var t01: Float = 0, t11: Float = 0, t21: Float = 0, t31: Float = 0
            while c < D {
                let x0 = k0[c].floatValue, x1 = k1[c].floatValue
                t00 += q0[c] * x0; t01 += q0[c] * x1
                t10 += q1[c] * x0; t11 += q1[c] * x1
                t20 += q2[c] * x0; t21 += q2[c] * x1
                t30 += q3[c] * x0; t31 += q3[c] * x1
                c += 1
            }
            let s = S + r0 * ldS + j
            let first = sums(a00, a10, a20, a30), second = sums(a01, a11, a21, a31)
            s[0] = first[0] + t00
            s[ldS] = first[1] + t10
            s[2 * ldS] = first[2] + t20
            s[3 * ldS] = first[3] + t30
            if pair {
                s[1] = second[0] + t01
                s[ldS + 1] = second[1] + t11
                s[2 * ldS + 1] = second[2] + t21
                s[3 * ldS + 1] = second[3] + t31
            }
            j += 2
        }
    }
}

/// ``sums(_:_:_:_:)-(SIMD8<Float>,_,_,_)`` for sixteen-lane vectors: each folded to eight lanes first.
@inlinable @inline(__always)
func sums(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>, _ d: SIMD16<Float>) -> SIMD4<Float> {
    sums(a.lowHalf + a.highHalf, b.lowHalf + b.highHalf, c.lowHalf + c.highHalf, d.lowHalf + d.highHalf)
}
