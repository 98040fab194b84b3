/// Products of a few rows with a weight matrix read as it is stored, for decoding.
///
/// One decoding step multiplies one row (or a few) by every weight of the model: the product is
/// bound by reading the weights, which are used once. So these kernels read the weight in the
/// layout it has, front to back, each thread one contiguous stretch of it, with nothing packed
/// beforehand: nn.Linear's `[out, in]` (output-major, a dot product per output) and transformers'
/// Conv1D `[in, out]` (input-major, rows of the weight scaled and summed). Measured on a Zen 3 with
/// two threads, both reach 90-100% of the machine's read bandwidth on GPT-2-sized matrices, against
/// 80% for the 32-column panels of ``multiplyFewRows(a:packedB:bias:c:rows:panels:n:k:_:)``.
///
/// The sum for an output runs over the input in the same order whatever the thread count or the
/// range, so results do not depend on how the work is split.

/// `y[r][o] = bias[o] + Σ_j x[r][j] · w[o][j]` for `o` in `outputs` and `r < rows`: `x [rows, k]`,
/// `w [n, k]` (output-major, nn.Linear's layout), `y [rows, n]`, all row-major.
///
/// Four outputs at a time, for two rows at a time: eight accumulators over `k`, then a horizontal sum.
/// The four weight rows stay in cache for the next pair of input rows.
@inlinable @inline(__always)
public func multiplyOutputMajor<M: MultiplyAdd>(
    x: UnsafePointer<Float>, rows: Int, weight w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    y: UnsafeMutablePointer<Float>, outputs: Range<Int>, n: Int, k: Int, _: M.Type
) {
    let vectorEnd = k & ~7
    var o = outputs.lowerBound
    while o < outputs.upperBound {
        let group = min(4, outputs.upperBound - o)
        // Fewer than four outputs left: repeat the last one, store only the real ones.
        let w0 = w + o * k
        let w1 = w + min(o + 1, o + group - 1) * k, w2 = w + min(o + 2, o + group - 1) * k, w3 = w + (o + group - 1) * k
        if rows == 1 {
            // One row: four accumulators, nothing wasted on a second row.
            var s0 = SIMD8<Float>.zero, s1 = s0, s2 = s0, s3 = s0
            var j = 0
            while j < vectorEnd {
                let a = load8(x + j)
                s0 = M.multiplyAdd(a, load8(w0 + j), s0); s1 = M.multiplyAdd(a, load8(w1 + j), s1)
                s2 = M.multiplyAdd(a, load8(w2 + j), s2); s3 = M.multiplyAdd(a, load8(w3 + j), s3)
                j += 8
            }
            var sums = (s0.sum(), s1.sum(), s2.sum(), s3.sum())
            while j < k {
                sums.0 += x[j] * w0[j]; sums.1 += x[j] * w1[j]; sums.2 += x[j] * w2[j]; sums.3 += x[j] * w3[j]
                j += 1
            }
            y[o] = sums.0 + (bias?[o] ?? 0)
            if group > 1 { y[o + 1] = sums.1 + (bias?[o + 1] ?? 0) }
            if group > 2 { y[o + 2] = sums.2 + (bias?[o + 2] ?? 0) }
            if group > 3 { y[o + 3] = sums.3 + (bias?[o + 3] ?? 0) }
            o += group
            continue
        }
        var r = 0
        while r < rows {
            let pair = r + 1 < rows
            let x0 = x + r * k, x1 = pair ? x0 + k : x0
            var s00 = SIMD8<Float>.zero, s01 = s00, s02 = s00, s03 = s00
            var s10 = SIMD8<Float>.zero, s11 = s00, s12 = s00, s13 = s00
            var j = 0
            while j < vectorEnd {
                let a0 = load8(x0 + j), a1 = load8(x1 + j)
                let b0 = load8(w0 + j), b1 = load8(w1 + j), b2 = load8(w2 + j), b3 = load8(w3 + j)
                s00 = M.multiplyAdd(a0, b0, s00); s01 = M.multiplyAdd(a0, b1, s01)
                s02 = M.multiplyAdd(a0, b2, s02); s03 = M.multiplyAdd(a0, b3, s03)
                s10 = M.multiplyAdd(a1, b0, s10); s11 = M.multiplyAdd(a1, b1, s11)
                s12 = M.multiplyAdd(a1, b2, s12); s13 = M.multiplyAdd(a1, b3, s13)
                j += 8
            }
            var sums = (s00.sum(), s01.sum(), s02.sum(), s03.sum(), s10.sum(), s11.sum(), s12.sum(), s13.sum())
            while j < k {
                let a0 = x0[j], a1 = x1[j]
                sums.0 += a0 * w0[j]; sums.1 += a0 * w1[j]; sums.2 += a0 * w2[j]; sums.3 += a0 * w3[j]
                sums.4 += a1 * w0[j]; sums.5 += a1 * w1[j]; sums.6 += a1 * w2[j]; sums.7 += a1 * w3[j]
                j += 1
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 8) { t in
                t[0] = sums.0; t[1] = sums.1; t[2] = sums.2; t[3] = sums.3
                t[4] = sums.4; t[5] = sums.5; t[6] = sums.6; t[7] = sums.7
                for rr in 0..<(pair ? 2 : 1) {
                    let row = y + (r + rr) * n + o
                    for g in 0..<group { row[g] = t[4 * rr + g] + (bias?[o + g] ?? 0) }
                }
            }
            r += 2
        }
        o += group
    }
}

/// `y[r][c] = bias[c] + Σ_i x[r][i] · w[i][c]` for `c` in `columns` and `r < rows`: `x [rows, k]`,
/// `w [k, n]` (input-major, transformers' Conv1D layout), `y [rows, n]`, all row-major.
///
/// The thread's columns of four weight rows at a time, scaled by the inputs and added into `y`, in
/// blocks of 256 columns so that a block read once serves every input row from cache.
@inlinable @inline(__always)
public func multiplyInputMajor<M: MultiplyAdd>(
    x: UnsafePointer<Float>, rows: Int, weight w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    y: UnsafeMutablePointer<Float>, columns: Range<Int>, n: Int, k: Int, _: M.Type
) {
    for r in 0..<rows {
        let row = y + r * n
        for c in columns { row[c] = bias?[c] ?? 0 }
    }
    // One row needs no blocking: a whole row of the share is one stream (measured faster).
    let block = rows == 1 ? max(1, columns.count) : 256
    var i = 0
    while i < k {
        // Four weight rows at a time; the last one to three alone.
        let group = k - i >= 4 ? 4 : 1
        let b0 = w + i * n, b1 = b0 + n, b2 = b1 + n, b3 = b2 + n
        var c0 = columns.lowerBound
        while c0 < columns.upperBound {
            let c1 = min(c0 + block, columns.upperBound)
            let vectorEnd = c0 + (c1 - c0) & ~7
            for r in 0..<rows {
                let xr = x + r * k, yr = y + r * n
                if group == 4 {
                    let (e0, e1, e2, e3) = (xr[i], xr[i + 1], xr[i + 2], xr[i + 3])
                    let a0 = SIMD8(repeating: e0), a1 = SIMD8(repeating: e1), a2 = SIMD8(repeating: e2), a3 = SIMD8(repeating: e3)
                    var c = c0
                    while c < vectorEnd {
                        var s = load8(yr + c)
                        s = M.multiplyAdd(a0, load8(b0 + c), s); s = M.multiplyAdd(a1, load8(b1 + c), s)
                        s = M.multiplyAdd(a2, load8(b2 + c), s); s = M.multiplyAdd(a3, load8(b3 + c), s)
                        store8(s, yr + c)
                        c += 8
                    }
                    while c < c1 {
                        yr[c] = yr[c].addingProduct(e0, b0[c]).addingProduct(e1, b1[c]).addingProduct(e2, b2[c]).addingProduct(e3, b3[c])
                        c += 1
                    }
                } else {
                    let e0 = xr[i], a0 = SIMD8(repeating: e0)
                    var c = c0
                    while c < vectorEnd {
                        store8(M.multiplyAdd(a0, load8(b0 + c), load8(yr + c)), yr + c)
                        c += 8
                    }
                    while c < c1 {
                        yr[c] = yr[c].addingProduct(e0, b0[c])
                        c += 1
                    }
                }
            }
            c0 = c1
        }
        i += group
    }
}
