/// The register-tiled inner products every kernel is built from: `C[8 × 32] (+)= A[8 × k] · B[k × 32]`
/// and its 16-column sibling, with row-major A (`lda`), B (`ldb`) and C (`ldc`), all in elements.
///
/// Sixteen SIMD16 accumulators (8 rows × 2 vectors) stay in registers for the whole `k` loop; each
/// step loads two vectors of B and broadcasts one element of A per row. On AVX-512 this is two FMAs
/// per load pair, near the machine's peak. Attention uses it twice: `S = Q·Kᵀ` (A = queries, B = keys
/// packed transposed, k = D) and `O += P·V` (A = probabilities, B = values, k = keys in the block).
/// The accumulators are written out by hand on purpose: named values are what keeps them in
/// registers. Row pointers and a moving B pointer keep overflow-checked index arithmetic out of the loop.

@inlinable @inline(__always)
func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inlinable @inline(__always)
func load(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inlinable @inline(__always)
func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// `C[8 × 32] = A[8 × k] · B[k × 32]`, or `+=` when `accumulate`.
@inlinable @inline(__always)
public func tile8x32<M: MultiplyAdd>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, accumulate: Bool, _: M.Type
) {
    if M.registers == .narrow { return tile8x32Narrow(a, lda, b, ldb, c, ldc, k, accumulate: accumulate, M.self) }
    var c00: SIMD16<Float>, c01: SIMD16<Float>
    var c10: SIMD16<Float>, c11: SIMD16<Float>
    var c20: SIMD16<Float>, c21: SIMD16<Float>
    var c30: SIMD16<Float>, c31: SIMD16<Float>
    var c40: SIMD16<Float>, c41: SIMD16<Float>
    var c50: SIMD16<Float>, c51: SIMD16<Float>
    var c60: SIMD16<Float>, c61: SIMD16<Float>
    var c70: SIMD16<Float>, c71: SIMD16<Float>
    if accumulate {
        c00 = load(c + 0 * ldc); c01 = load(c + 0 * ldc + 16)
        c10 = load(c + 1 * ldc); c11 = load(c + 1 * ldc + 16)
        c20 = load(c + 2 * ldc); c21 = load(c + 2 * ldc + 16)
        c30 = load(c + 3 * ldc); c31 = load(c + 3 * ldc + 16)
        c40 = load(c + 4 * ldc); c41 = load(c + 4 * ldc + 16)
        c50 = load(c + 5 * ldc); c51 = load(c + 5 * ldc + 16)
        c60 = load(c + 6 * ldc); c61 = load(c + 6 * ldc + 16)
        c70 = load(c + 7 * ldc); c71 = load(c + 7 * ldc + 16)
    } else {
        c00 = .zero; c01 = .zero
        c10 = .zero; c11 = .zero
        c20 = .zero; c21 = .zero
        c30 = .zero; c31 = .zero
        c40 = .zero; c41 = .zero
        c50 = .zero; c51 = .zero
        c60 = .zero; c61 = .zero
        c70 = .zero; c71 = .zero
    }
    let a0 = a + 0 * lda
    let a1 = a + 1 * lda
    let a2 = a + 2 * lda
    let a3 = a + 3 * lda
    let a4 = a + 4 * lda
    let a5 = a + 5 * lda
    let a6 = a + 6 * lda
    let a7 = a + 7 * lda
    var bp = b
    for p in 0..<k {
        let b0 = load(bp), b1 = load(bp + 16)
        bp += ldb
        let x0 = SIMD16<Float>(repeating: a0[p])
        c00 = M.multiplyAdd(x0, b0, c00); c01 = M.multiplyAdd(x0, b1, c01)
        let x1 = SIMD16<Float>(repeating: a1[p])
        c10 = M.multiplyAdd(x1, b0, c10); c11 = M.multiplyAdd(x1, b1, c11)
        let x2 = SIMD16<Float>(repeating: a2[p])
        c20 = M.multiplyAdd(x2, b0, c20); c21 = M.multiplyAdd(x2, b1, c21)
        let x3 = SIMD16<Float>(repeating: a3[p])
        c30 = M.multiplyAdd(x3, b0, c30); c31 = M.multiplyAdd(x3, b1, c31)
        let x4 = SIMD16<Float>(repeating: a4[p])
        c40 = M.multiplyAdd(x4, b0, c40); c41 = M.multiplyAdd(x4, b1, c41)
        let x5 = SIMD16<Float>(repeating: a5[p])
        c50 = M.multiplyAdd(x5, b0, c50); c51 = M.multiplyAdd(x5, b1, c51)
        let x6 = SIMD16<Float>(repeating: a6[p])
        c60 = M.multiplyAdd(x6, b0, c60); c61 = M.multiplyAdd(x6, b1, c61)
        let x7 = SIMD16<Float>(repeating: a7[p])
        c70 = M.multiplyAdd(x7, b0, c70); c71 = M.multiplyAdd(x7, b1, c71)
    }
    store(c00, c + 0 * ldc); store(c01, c + 0 * ldc + 16)
    store(c10, c + 1 * ldc); store(c11, c + 1 * ldc + 16)
    store(c20, c + 2 * ldc); store(c21, c + 2 * ldc + 16)
    store(c30, c + 3 * ldc); store(c31, c + 3 * ldc + 16)
    store(c40, c + 4 * ldc); store(c41, c + 4 * ldc + 16)
    store(c50, c + 5 * ldc); store(c51, c + 5 * ldc + 16)
    store(c60, c + 6 * ldc); store(c61, c + 6 * ldc + 16)
    store(c70, c + 7 * ldc); store(c71, c + 7 * ldc + 16)
}

/// `C[8 × 16] = A[8 × k] · B[k × 16]`, or `+=` when `accumulate`.
@inlinable @inline(__always)
public func tile8x16<M: MultiplyAdd>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, accumulate: Bool, _: M.Type
) {
    if M.registers == .narrow { return tile8x16Narrow(a, lda, b, ldb, c, ldc, k, accumulate: accumulate, M.self) }
    var c0: SIMD16<Float>
    var c1: SIMD16<Float>
    var c2: SIMD16<Float>
    var c3: SIMD16<Float>
    var c4: SIMD16<Float>
    var c5: SIMD16<Float>
    var c6: SIMD16<Float>
    var c7: SIMD16<Float>
    if accumulate {
        c0 = load(c + 0 * ldc)
        c1 = load(c + 1 * ldc)
        c2 = load(c + 2 * ldc)
        c3 = load(c + 3 * ldc)
        c4 = load(c + 4 * ldc)
        c5 = load(c + 5 * ldc)
        c6 = load(c + 6 * ldc)
        c7 = load(c + 7 * ldc)
    } else {
        c0 = .zero
        c1 = .zero
        c2 = .zero
        c3 = .zero
        c4 = .zero
        c5 = .zero
        c6 = .zero
        c7 = .zero
    }
    let a0 = a + 0 * lda
    let a1 = a + 1 * lda
    let a2 = a + 2 * lda
    let a3 = a + 3 * lda
    let a4 = a + 4 * lda
    let a5 = a + 5 * lda
    let a6 = a + 6 * lda
    let a7 = a + 7 * lda
    var bp = b
    for p in 0..<k {
        let b0 = load(bp)
        bp += ldb
        c0 = M.multiplyAdd(SIMD16<Float>(repeating: a0[p]), b0, c0)
        c1 = M.multiplyAdd(SIMD16<Float>(repeating: a1[p]), b0, c1)
        c2 = M.multiplyAdd(SIMD16<Float>(repeating: a2[p]), b0, c2)
        c3 = M.multiplyAdd(SIMD16<Float>(repeating: a3[p]), b0, c3)
        c4 = M.multiplyAdd(SIMD16<Float>(repeating: a4[p]), b0, c4)
        c5 = M.multiplyAdd(SIMD16<Float>(repeating: a5[p]), b0, c5)
        c6 = M.multiplyAdd(SIMD16<Float>(repeating: a6[p]), b0, c6)
        c7 = M.multiplyAdd(SIMD16<Float>(repeating: a7[p]), b0, c7)
    }
    store(c0, c + 0 * ldc)
    store(c1, c + 1 * ldc)
    store(c2, c + 2 * ldc)
    store(c3, c + 3 * ldc)
    store(c4, c + 4 * ldc)
    store(c5, c + 5 * ldc)
    store(c6, c + 6 * ldc)
    store(c7, c + 7 * ldc)
}

/// `C[8 × n] += A[8 × k] · B[k × n]` for the last `n < 16` columns, one element at a time.
@inlinable @inline(__always)
public func tile8xScalar(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, columns n: Int
) {
    for r in 0..<8 {
        for col in 0..<n {
            var sum = c[r * ldc + col]
            for p in 0..<k { sum += a[r * lda + p] * b[p * ldb + col] }
            c[r * ldc + col] = sum
        }
    }
}
