/// Micro-kernels for `O += P·V` with few query rows (decoding): each B row (a value vector) is read
/// once per pair of query rows, from first element to last, so the hardware prefetcher streams
/// V from memory at full speed. With the 8-row tiles, a value row would instead be read in
/// 32-column pieces on separate passes, which defeats the prefetcher when V does not fit in cache.
/// While row `p` of B is read, row `p + k` (the next block's) is asked for in L2, for `p` below
/// `ahead`: the rows the caller reads next.

/// `C[2 × 128] += A[2 × k] · B[k × 128]`: whole rows of B, read strictly in order.
@inlinable @inline(__always)
public func tile2x128<M: MultiplyAdd, E: KeyValueElement>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<E>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, prefetching ahead: Int, _: M.Type
) {
    if M.registers == .narrow {
        // Sixteen ymm registers hold 2 × 32 accumulators at most: four passes over the rows of B.
        for c0 in stride(from: 0, to: 128, by: 32) { tile2x32Narrow(a, lda, b + c0, ldb, c + c0, ldc, k, accumulate: true, M.self) }
        return
    }
    var c00 = load(c + 0), c10 = load(c + ldc + 0)
    var c01 = load(c + 16), c11 = load(c + ldc + 16)
    var c02 = load(c + 32), c12 = load(c + ldc + 32)
    var c03 = load(c + 48), c13 = load(c + ldc + 48)
    var c04 = load(c + 64), c14 = load(c + ldc + 64)
    var c05 = load(c + 80), c15 = load(c + ldc + 80)
    var c06 = load(c + 96), c16 = load(c + ldc + 96)
    var c07 = load(c + 112), c17 = load(c + ldc + 112)
    let a0 = a, a1 = a + lda
    var bp = b
    let next = k * ldb
    for p in 0..<k {
        if p < ahead { prefetchDecodeRow(bp + next, columns: 128) }
        let x0 = SIMD16<Float>(repeating: a0[p]), x1 = SIMD16<Float>(repeating: a1[p])
        let b0 = E.load16(bp + 0, M.self)
        c00 = M.multiplyAdd(x0, b0, c00); c10 = M.multiplyAdd(x1, b0, c10)
        let b1 = E.load16(bp + 16, M.self)
        c01 = M.multiplyAdd(x0, b1, c01); c11 = M.multiplyAdd(x1, b1, c11)
        let b2 = E.load16(bp + 32, M.self)
        c02 = M.multiplyAdd(x0, b2, c02); c12 = M.multiplyAdd(x1, b2, c12)
        let b3 = E.load16(bp + 48, M.self)
        c03 = M.multiplyAdd(x0, b3, c03); c13 = M.multiplyAdd(x1, b3, c13)
        let b4 = E.load16(bp + 64, M.self)
        c04 = M.multiplyAdd(x0, b4, c04); c14 = M.multiplyAdd(x1, b4, c14)
        let b5 = E.load16(bp + 80, M.self)
        c05 = M.multiplyAdd(x0, b5, c05); c15 = M.multiplyAdd(x1, b5, c15)
        let b6 = E.load16(bp + 96, M.self)
        c06 = M.multiplyAdd(x0, b6, c06); c16 = M.multiplyAdd(x1, b6, c16)
        let b7 = E.load16(bp + 112, M.self)
        c07 = M.multiplyAdd(x0, b7, c07); c17 = M.multiplyAdd(x1, b7, c17)
        bp += ldb
    }
    store(c00, c + 0); store(c10, c + ldc + 0)
    store(c01, c + 16); store(c11, c + ldc + 16)
    store(c02, c + 32); store(c12, c + ldc + 32)
    store(c03, c + 48); store(c13, c + ldc + 48)
    store(c04, c + 64); store(c14, c + ldc + 64)
    store(c05, c + 80); store(c15, c + ldc + 80)
    store(c06, c + 96); store(c16, c + ldc + 96)
    store(c07, c + 112); store(c17, c + ldc + 112)
}

/// `C[2 × 64] += A[2 × k] · B[k × 64]`: whole rows of B, read strictly in order.
@inlinable @inline(__always)
public func tile2x64<M: MultiplyAdd, E: KeyValueElement>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<E>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, prefetching ahead: Int, _: M.Type
) {
    if M.registers == .narrow {
        for c0 in stride(from: 0, to: 64, by: 32) { tile2x32Narrow(a, lda, b + c0, ldb, c + c0, ldc, k, accumulate: true, M.self) }
        return
    }
    var c00 = load(c + 0), c10 = load(c + ldc + 0)
    var c01 = load(c + 16), c11 = load(c + ldc + 16)
    var c02 = load(c + 32), c12 = load(c + ldc + 32)
    var c03 = load(c + 48), c13 = load(c + ldc + 48)
    let a0 = a, a1 = a + lda
    var bp = b
    let next = k * ldb
    for p in 0..<k {
        if p < ahead { prefetchDecodeRow(bp + next, columns: 64) }
        let x0 = SIMD16<Float>(repeating: a0[p]), x1 = SIMD16<Float>(repeating: a1[p])
        let b0 = E.load16(bp + 0, M.self)
        c00 = M.multiplyAdd(x0, b0, c00); c10 = M.multiplyAdd(x1, b0, c10)
        let b1 = E.load16(bp + 16, M.self)
        c01 = M.multiplyAdd(x0, b1, c01); c11 = M.multiplyAdd(x1, b1, c11)
        let b2 = E.load16(bp + 32, M.self)
        c02 = M.multiplyAdd(x0, b2, c02); c12 = M.multiplyAdd(x1, b2, c12)
        let b3 = E.load16(bp + 48, M.self)
        c03 = M.multiplyAdd(x0, b3, c03); c13 = M.multiplyAdd(x1, b3, c13)
        bp += ldb
    }
    store(c00, c + 0); store(c10, c + ldc + 0)
    store(c01, c + 16); store(c11, c + ldc + 16)
    store(c02, c + 32); store(c12, c + ldc + 32)
    store(c03, c + 48); store(c13, c + ldc + 48)
}

/// `C[4 × 16] += A[4 × k] · B[k × 16]` on narrow registers (eight accumulators): for decoding, where
/// the four rows are query heads sharing a key/value head, so each piece of a value row is loaded and
/// widened once for all of them.
@inlinable @inline(__always)
public func tile4x16Decode<M: MultiplyAdd, E: KeyValueElement>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<E>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, prefetching ahead: Int, _: M.Type
) {
    var c00 = load8(c), c01 = load8(c + 8)
    var c10 = load8(c + ldc), c11 = load8(c + ldc + 8)
    var c20 = load8(c + 2 * ldc), c21 = load8(c + 2 * ldc + 8)
    var c30 = load8(c + 3 * ldc), c31 = load8(c + 3 * ldc + 8)
    let a0 = a, a1 = a + lda, a2 = a1 + lda, a3 = a2 + lda
    var bp = b
    let next = k * ldb
    for p in 0..<k {
        if p < ahead { prefetchDecodeRow(bp + next, columns: 16) }
        let b0 = E.load8(bp, M.self), b1 = E.load8(bp + 8, M.self)
        bp += ldb
        let x0 = SIMD8<Float>(repeating: a0[p])
        c00 = M.multiplyAdd(x0, b0, c00); c01 = M.multiplyAdd(x0, b1, c01)
        let x1 = SIMD8<Float>(repeating: a1[p])
        c10 = M.multiplyAdd(x1, b0, c10); c11 = M.multiplyAdd(x1, b1, c11)
        let x2 = SIMD8<Float>(repeating: a2[p])
        c20 = M.multiplyAdd(x2, b0, c20); c21 = M.multiplyAdd(x2, b1, c21)
        let x3 = SIMD8<Float>(repeating: a3[p])
        c30 = M.multiplyAdd(x3, b0, c30); c31 = M.multiplyAdd(x3, b1, c31)
    }
    store8(c00, c); store8(c01, c + 8)
    store8(c10, c + ldc); store8(c11, c + ldc + 8)
    store8(c20, c + 2 * ldc); store8(c21, c + 2 * ldc + 8)
    store8(c30, c + 3 * ldc); store8(c31, c + 3 * ldc + 8)
}

/// `C[4 × 64] += A[4 × k] · B[k × 64]` on wide registers (sixteen accumulators): for decoding with
/// three or more rows (query heads sharing a key/value head), so each piece of a value row is
/// loaded and widened once for four rows, not once per pair.
@inlinable @inline(__always)
public func tile4x64Decode<M: MultiplyAdd, E: KeyValueElement>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<E>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ k: Int, prefetching ahead: Int, _: M.Type
) {
    let c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc
    var c00 = load(c), c01 = load(c + 16), c02 = load(c + 32), c03 = load(c + 48)
    var c10 = load(c1), c11 = load(c1 + 16), c12 = load(c1 + 32), c13 = load(c1 + 48)
    var c20 = load(c2), c21 = load(c2 + 16), c22 = load(c2 + 32), c23 = load(c2 + 48)
    var c30 = load(c3), c31 = load(c3 + 16), c32 = load(c3 + 32), c33 = load(c3 + 48)
    let a0 = a, a1 = a + lda, a2 = a1 + lda, a3 = a2 + lda
    var bp = b
    let next = k * ldb
    for p in 0..<k {
        if p < ahead { prefetchDecodeRow(bp + next, columns: 64) }
        let b0 = E.load16(bp, M.self), b1 = E.load16(bp + 16, M.self)
        let b2 = E.load16(bp + 32, M.self), b3 = E.load16(bp + 48, M.self)
        bp += ldb
        let x0 = SIMD16<Float>(repeating: a0[p])
        c00 = M.multiplyAdd(x0, b0, c00); c01 = M.multiplyAdd(x0, b1, c01)
        c02 = M.multiplyAdd(x0, b2, c02); c03 = M.multiplyAdd(x0, b3, c03)
        let x1 = SIMD16<Float>(repeating: a1[p])
        c10 = M.multiplyAdd(x1, b0, c10); c11 = M.multiplyAdd(x1, b1, c11)
        c12 = M.multiplyAdd(x1, b2, c12); c13 = M.multiplyAdd(x1, b3, c13)
        let x2 = SIMD16<Float>(repeating: a2[p])
        c20 = M.multiplyAdd(x2, b0, c20); c21 = M.multiplyAdd(x2, b1, c21)
        c22 = M.multiplyAdd(x2, b2, c22); c23 = M.multiplyAdd(x2, b3, c23)
        let x3 = SIMD16<Float>(repeating: a3[p])
        c30 = M.multiplyAdd(x3, b0, c30); c31 = M.multiplyAdd(x3, b1, c31)
        c32 = M.multiplyAdd(x3, b2, c32); c33 = M.multiplyAdd(x3, b3, c33)
    }
    store(c00, c); store(c01, c + 16); store(c02, c + 32); store(c03, c + 48)
    store(c10, c1); store(c11, c1 + 16); store(c12, c1 + 32); store(c13, c1 + 48)
    store(c20, c2); store(c21, c2 + 16); store(c22, c2 + 32); store(c23, c2 + 48)
    store(c30, c3); store(c31, c3 + 16); store(c32, c3 + 32); store(c33, c3 + 48)
}

/// Asks for the `columns` elements at `p` in L2: the same slice of the value row one block of
/// keys ahead, so that requests to memory keep going while the block's products run. The scores
/// phase asks for the next block's keys and values too, in one burst that fills the core's
/// outstanding-miss slots; asking again here, spread over the product, read 8-13% more GB/s in
/// decoding (32/8 heads, D = 128, 65,536 keys, Intel Xeon family 6 model 207).
@inlinable @inline(__always)
func prefetchDecodeRow<E>(_ p: UnsafePointer<E>, columns: Int) {
    prefetchLines(UnsafeRawPointer(p), bytes: columns * MemoryLayout<E>.stride)
}
