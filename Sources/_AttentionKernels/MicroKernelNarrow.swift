/// The micro-kernels for a register file of 16 eight-lane registers (AVX2 + FMA), covering the same
/// tiles as the wide ones (8 × 32, 8 × 16) so that every caller keeps its 8-row, 32-column layout.
///
/// An 8 × 32 tile as three register tiles, each with enough independent accumulators (12 or 8) to keep
/// two FMA pipes of 4-cycle latency busy, and at most 15 live registers:
/// ```
///          columns 0..<16   16..<32
/// rows 0..<6   [ 6 × 16 ]  [ 6 × 16 ]    12 accumulators + 2 loads of B + 1 broadcast of A
/// rows 6..<8   [       2 × 32        ]    8 accumulators + 4 loads of B + 1 broadcast of A
/// ```

@inlinable @inline(__always)
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inlinable @inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// `C[6 × 16] = A[6 × k] · B[k × 16]`, or `+=` when `accumulate`.
@inlinable @inline(__always)
func tile6x16Narrow<M: MultiplyAdd>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, accumulate: Bool, _: M.Type
) {
    var c00 = SIMD8<Float>.zero, c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00
    var c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00
    if accumulate {
        c00 = load8(c + 0 * ldc); c01 = load8(c + 0 * ldc + 8)
        c10 = load8(c + 1 * ldc); c11 = load8(c + 1 * ldc + 8)
        c20 = load8(c + 2 * ldc); c21 = load8(c + 2 * ldc + 8)
        c30 = load8(c + 3 * ldc); c31 = load8(c + 3 * ldc + 8)
        c40 = load8(c + 4 * ldc); c41 = load8(c + 4 * ldc + 8)
        c50 = load8(c + 5 * ldc); c51 = load8(c + 5 * ldc + 8)
    }
    let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda
    var bp = b
    for p in 0..<k {
        let b0 = load8(bp), b1 = load8(bp + 8)
        bp += ldb
        let x0 = SIMD8<Float>(repeating: a0[p])
        c00 = M.multiplyAdd(x0, b0, c00); c01 = M.multiplyAdd(x0, b1, c01)
        let x1 = SIMD8<Float>(repeating: a1[p])
        c10 = M.multiplyAdd(x1, b0, c10); c11 = M.multiplyAdd(x1, b1, c11)
        let x2 = SIMD8<Float>(repeating: a2[p])
        c20 = M.multiplyAdd(x2, b0, c20); c21 = M.multiplyAdd(x2, b1, c21)
        let x3 = SIMD8<Float>(repeating: a3[p])
        c30 = M.multiplyAdd(x3, b0, c30); c31 = M.multiplyAdd(x3, b1, c31)
        let x4 = SIMD8<Float>(repeating: a4[p])
        c40 = M.multiplyAdd(x4, b0, c40); c41 = M.multiplyAdd(x4, b1, c41)
        let x5 = SIMD8<Float>(repeating: a5[p])
        c50 = M.multiplyAdd(x5, b0, c50); c51 = M.multiplyAdd(x5, b1, c51)
    }
    store8(c00, c + 0 * ldc); store8(c01, c + 0 * ldc + 8)
    store8(c10, c + 1 * ldc); store8(c11, c + 1 * ldc + 8)
    store8(c20, c + 2 * ldc); store8(c21, c + 2 * ldc + 8)
    store8(c30, c + 3 * ldc); store8(c31, c + 3 * ldc + 8)
    store8(c40, c + 4 * ldc); store8(c41, c + 4 * ldc + 8)
    store8(c50, c + 5 * ldc); store8(c51, c + 5 * ldc + 8)
}

/// `C[2 × 32] = A[2 × k] · B[k × 32]`, or `+=` when `accumulate`.
@inlinable @inline(__always)
func tile2x32Narrow<M: MultiplyAdd, E: KeyValueElement>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<E>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, accumulate: Bool, _: M.Type
) {
    var c00 = SIMD8<Float>.zero, c01 = c00, c02 = c00, c03 = c00
    var c10 = c00, c11 = c00, c12 = c00, c13 = c00
    if accumulate {
        c00 = load8(c); c01 = load8(c + 8); c02 = load8(c + 16); c03 = load8(c + 24)
        c10 = load8(c + ldc); c11 = load8(c + ldc + 8); c12 = load8(c + ldc + 16); c13 = load8(c + ldc + 24)
    }
    let a0 = a, a1 = a + lda
    var bp = b
    for p in 0..<k {
        let b0 = E.load8(bp, M.self), b1 = E.load8(bp + 8, M.self), b2 = E.load8(bp + 16, M.self), b3 = E.load8(bp + 24, M.self)
        bp += ldb
        let x0 = SIMD8<Float>(repeating: a0[p])
        c00 = M.multiplyAdd(x0, b0, c00); c01 = M.multiplyAdd(x0, b1, c01)
        c02 = M.multiplyAdd(x0, b2, c02); c03 = M.multiplyAdd(x0, b3, c03)
        let x1 = SIMD8<Float>(repeating: a1[p])
        c10 = M.multiplyAdd(x1, b0, c10); c11 = M.multiplyAdd(x1, b1, c11)
        c12 = M.multiplyAdd(x1, b2, c12); c13 = M.multiplyAdd(x1, b3, c13)
    }
    store8(c00, c); store8(c01, c + 8); store8(c02, c + 16); store8(c03, c + 24)
    store8(c10, c + ldc); store8(c11, c + ldc + 8); store8(c12, c + ldc + 16); store8(c13, c + ldc + 24)
}

/// `C[2 × 16] = A[2 × k] · B[k × 16]`, or `+=` when `accumulate`.
@inlinable @inline(__always)
func tile2x16Narrow<M: MultiplyAdd>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, accumulate: Bool, _: M.Type
) {
    var c00 = SIMD8<Float>.zero, c01 = c00, c10 = c00, c11 = c00
    if accumulate {
        c00 = load8(c); c01 = load8(c + 8); c10 = load8(c + ldc); c11 = load8(c + ldc + 8)
    }
    let a0 = a, a1 = a + lda
    var bp = b
    for p in 0..<k {
        let b0 = load8(bp), b1 = load8(bp + 8)
        bp += ldb
        let x0 = SIMD8<Float>(repeating: a0[p]), x1 = SIMD8<Float>(repeating: a1[p])
        c00 = M.multiplyAdd(x0, b0, c00); c01 = M.multiplyAdd(x0, b1, c01)
        c10 = M.multiplyAdd(x1, b0, c10); c11 = M.multiplyAdd(x1, b1, c11)
    }
    store8(c00, c); store8(c01, c + 8); store8(c10, c + ldc); store8(c11, c + ldc + 8)
}

/// `C[8 × 32] (+)= A[8 × k] · B[k × 32]` as two 6 × 16 tiles and one 2 × 32 tile.
@inlinable @inline(__always)
func tile8x32Narrow<M: MultiplyAdd>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, accumulate: Bool, _: M.Type
) {
    tile6x16Narrow(a, lda, b, ldb, c, ldc, k, accumulate: accumulate, M.self)
    tile6x16Narrow(a, lda, b + 16, ldb, c + 16, ldc, k, accumulate: accumulate, M.self)
    tile2x32Narrow(a + 6 * lda, lda, b, ldb, c + 6 * ldc, ldc, k, accumulate: accumulate, M.self)
}

/// `C[8 × 16] (+)= A[8 × k] · B[k × 16]` as a 6 × 16 tile and a 2 × 16 tile.
@inlinable @inline(__always)
func tile8x16Narrow<M: MultiplyAdd>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, accumulate: Bool, _: M.Type
) {
    tile6x16Narrow(a, lda, b, ldb, c, ldc, k, accumulate: accumulate, M.self)
    tile2x16Narrow(a + 6 * lda, lda, b, ldb, c + 6 * ldc, ldc, k, accumulate: accumulate, M.self)
}

/// `C[4 × 24] += A[4 × k] · B[k × 24]`: 12 accumulators, 3 loads of B and 4 broadcasts of A per step.
/// Fewer broadcasts per FMA than 6 × 16 (4 per 12 instead of 6), which is what Zen 3 rewards: measured
/// alone on L1-resident data, about 90% of the FMA peak against 77% for 6 × 16.
@inlinable @inline(__always)
func tile4x24Narrow<M: MultiplyAdd>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, accumulate: Bool, _: M.Type
) {
    var c00 = SIMD8<Float>.zero, c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00
    var c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00
    if accumulate {
        c00 = load8(c); c01 = load8(c + 8); c02 = load8(c + 16)
        c10 = load8(c + ldc); c11 = load8(c + ldc + 8); c12 = load8(c + ldc + 16)
        c20 = load8(c + 2 * ldc); c21 = load8(c + 2 * ldc + 8); c22 = load8(c + 2 * ldc + 16)
        c30 = load8(c + 3 * ldc); c31 = load8(c + 3 * ldc + 8); c32 = load8(c + 3 * ldc + 16)
    }
    let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda
    var bp = b
    for p in 0..<k {
        let b0 = load8(bp), b1 = load8(bp + 8), b2 = load8(bp + 16)
        bp += ldb
        let x0 = SIMD8<Float>(repeating: a0[p])
        c00 = M.multiplyAdd(x0, b0, c00); c01 = M.multiplyAdd(x0, b1, c01); c02 = M.multiplyAdd(x0, b2, c02)
        let x1 = SIMD8<Float>(repeating: a1[p])
        c10 = M.multiplyAdd(x1, b0, c10); c11 = M.multiplyAdd(x1, b1, c11); c12 = M.multiplyAdd(x1, b2, c12)
        let x2 = SIMD8<Float>(repeating: a2[p])
        c20 = M.multiplyAdd(x2, b0, c20); c21 = M.multiplyAdd(x2, b1, c21); c22 = M.multiplyAdd(x2, b2, c22)
        let x3 = SIMD8<Float>(repeating: a3[p])
        c30 = M.multiplyAdd(x3, b0, c30); c31 = M.multiplyAdd(x3, b1, c31); c32 = M.multiplyAdd(x3, b2, c32)
    }
    store8(c00, c); store8(c01, c + 8); store8(c02, c + 16)
    store8(c10, c + ldc); store8(c11, c + ldc + 8); store8(c12, c + ldc + 16)
    store8(c20, c + 2 * ldc); store8(c21, c + 2 * ldc + 8); store8(c22, c + 2 * ldc + 16)
    store8(c30, c + 3 * ldc); store8(c31, c + 3 * ldc + 8); store8(c32, c + 3 * ldc + 16)
}

/// `C[4 × 8w] += A[4 × k] · B[k × 8w]` for w = 1 or 2 (the columns left after 24-column tiles).
@inlinable @inline(__always)
func tile4xNarrowTail<M: MultiplyAdd>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, vectors w: Int, _: M.Type
) {
    var c00 = load8(c), c10 = load8(c + ldc), c20 = load8(c + 2 * ldc), c30 = load8(c + 3 * ldc)
    var c01 = SIMD8<Float>.zero, c11 = c01, c21 = c01, c31 = c01
    if w == 2 { c01 = load8(c + 8); c11 = load8(c + ldc + 8); c21 = load8(c + 2 * ldc + 8); c31 = load8(c + 3 * ldc + 8) }
    let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda
    var bp = b
    if w == 2 {
        for p in 0..<k {
            let b0 = load8(bp), b1 = load8(bp + 8)
            bp += ldb
            let x0 = SIMD8<Float>(repeating: a0[p]), x1 = SIMD8<Float>(repeating: a1[p])
            let x2 = SIMD8<Float>(repeating: a2[p]), x3 = SIMD8<Float>(repeating: a3[p])
            c00 = M.multiplyAdd(x0, b0, c00); c01 = M.multiplyAdd(x0, b1, c01)
            c10 = M.multiplyAdd(x1, b0, c10); c11 = M.multiplyAdd(x1, b1, c11)
            c20 = M.multiplyAdd(x2, b0, c20); c21 = M.multiplyAdd(x2, b1, c21)
            c30 = M.multiplyAdd(x3, b0, c30); c31 = M.multiplyAdd(x3, b1, c31)
        }
        store8(c01, c + 8); store8(c11, c + ldc + 8); store8(c21, c + 2 * ldc + 8); store8(c31, c + 3 * ldc + 8)
    } else {
        for p in 0..<k {
            let b0 = load8(bp)
            bp += ldb
            c00 = M.multiplyAdd(SIMD8<Float>(repeating: a0[p]), b0, c00)
            c10 = M.multiplyAdd(SIMD8<Float>(repeating: a1[p]), b0, c10)
            c20 = M.multiplyAdd(SIMD8<Float>(repeating: a2[p]), b0, c20)
            c30 = M.multiplyAdd(SIMD8<Float>(repeating: a3[p]), b0, c30)
        }
    }
    store8(c00, c); store8(c10, c + ldc); store8(c20, c + 2 * ldc); store8(c30, c + 3 * ldc)
}

/// `C[rows × cols] += A[rows × k] · B[k × cols]` for rows a multiple of 4, in 4 × 24 tiles, then one
/// tile of 16 or 8 columns, then single columns: the narrow path's `O += P·V`.
@inlinable @inline(__always)
func accumulateProductNarrow<M: MultiplyAdd>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, rows: Int, cols: Int, k: Int, _: M.Type
) {
    for r0 in stride(from: 0, to: rows, by: 4) {
        let ar = a + r0 * lda, cr = c + r0 * ldc
        var c0 = 0
        while c0 + 24 <= cols {
            tile4x24Narrow(ar, lda, b + c0, ldb, cr + c0, ldc, k, accumulate: true, M.self)
            c0 += 24
        }
        if c0 + 8 <= cols {
            let w = c0 + 16 <= cols ? 2 : 1
            tile4xNarrowTail(ar, lda, b + c0, ldb, cr + c0, ldc, k, vectors: w, M.self)
            c0 += 8 * w
        }
        if c0 < cols {
            for r in 0..<4 {
                for col in c0..<cols {
                    var sum = cr[r * ldc + col]
                    for p in 0..<k { sum += ar[r * lda + p] * b[p * ldb + col] }
                    cr[r * ldc + col] = sum
                }
            }
        }
    }
}
