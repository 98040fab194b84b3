/// `C[rows, n] = A[rows, k] · B[k, n] + bias[n]` for a range of rows, by the 8 × 32 micro-kernel.
///
/// B comes packed in panels of 32 columns, `[ceil(n / 32)][k][32]`, the last panel zero-padded (see
/// ``packPanels(_:k:n:into:)``): each panel is one contiguous stream, so the micro-kernel reads B in
/// order instead of striding across whole rows.
///
/// The whole tiles run k in slices of ``multiplySliceLength``: a slice of one panel (16 KiB) stays in
/// L1 while every 8-row block of the range runs against it, so B is read from the outer caches once
/// per range rather than once per 8 rows (a model's weight, megabytes, does not fit in L2). A tile's
/// accumulators are stored and reloaded as Float between slices, so the sums are the same, bit for
/// bit, as over the whole k at once. A last block of fewer than 8 rows and a last panel of fewer than
/// 32 columns run over the whole k through `scratch` (at least `8 · (k + 32)` floats), so the
/// micro-kernel never reads or writes past the matrices.
@inlinable @inline(__always)
public func multiplyRows<M: MultiplyAdd>(
    a: UnsafePointer<Float>, packedB b: UnsafePointer<Float>, bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>,
    rows: Range<Int>, n: Int, k: Int, scratch: UnsafeMutablePointer<Float>, _: M.Type
) {
    let panels = (n + 31) / 32, wholePanels = n / 32
    let wholeBlocks = rows.count / 8
    var k0 = 0
    while k0 < k {
        let kc = min(multiplySliceLength, k - k0)
        for p in 0..<wholePanels {
            let slice = b + (p * k + k0) * 32
            for block in 0..<wholeBlocks {
                let r0 = rows.lowerBound + 8 * block
                tile8x32(a + r0 * k + k0, k, slice, 32, c + r0 * n + p * 32, n, kc, accumulate: k0 > 0, M.self)
            }
        }
        k0 += kc
    }
    let paddedA = scratch, tileC = scratch + 8 * k
    for r0 in stride(from: rows.lowerBound, to: rows.upperBound, by: 8) {
        let count = min(8, rows.upperBound - r0)
        var aBlock = a + r0 * k
        if count < 8 {
            paddedA.update(repeating: 0, count: 8 * k)
            paddedA.update(from: aBlock, count: count * k)
            aBlock = UnsafePointer(paddedA)
        }
        for p in (count < 8 ? 0 : wholePanels)..<panels {
            let c0 = p * 32, width = min(32, n - c0)
            tile8x32(aBlock, k, b + p * k * 32, 32, tileC, 32, k, accumulate: false, M.self)
            for r in 0..<count { (c + (r0 + r) * n + c0).update(from: tileC + r * 32, count: width) }
        }
    }
    if let bias {
        for r in rows {
            let row = c + r * n
            for j in 0..<n { row[j] += bias[j] }
        }
    }
}

/// The length of the k slices of ``multiplyRows(a:packedB:bias:c:rows:n:k:scratch:_:)``: 128 × 32
/// floats of B (16 KiB) beside eight rows of A fit in the L1 of every CPU the kernels target.
@inlinable public var multiplySliceLength: Int { 128 }

/// Packs row-major `w[n][k]` (a linear layer's weight, output-major) as `B = wᵀ` in panels of 32
/// columns: `packed[p][kk][j] = w[32p + j][kk]`, zero where `32p + j >= n`. `packed` holds
/// `ceil(n / 32) · k · 32` floats.
@inlinable
public func packPanels(_ w: UnsafePointer<Float>, k: Int, n: Int, into packed: UnsafeMutablePointer<Float>) {
    let panels = (n + 31) / 32
    for p in 0..<panels {
        for kk in 0..<k {
            let destination = packed + (p * k + kk) * 32
            for j in 0..<32 {
                let column = p * 32 + j
                destination[j] = column < n ? w[column * k + kk] : 0
            }
        }
    }
}

/// Packs row-major `b[k][n]` (the right-hand matrix itself, not a weight to transpose) in the same
/// panels as ``packPanels(_:k:n:into:)``: `packed[p][kk][j] = b[kk][32p + j]`, zero where `32p + j >= n`.
@inlinable
public func packRowMajorPanels(_ b: UnsafePointer<Float>, k: Int, n: Int, into packed: UnsafeMutablePointer<Float>) {
    let panels = (n + 31) / 32
    for p in 0..<panels {
        let width = min(32, n - p * 32)
        for kk in 0..<k {
            let destination = packed + (p * k + kk) * 32
            destination.update(from: b + kk * n + p * 32, count: width)
            (destination + width).update(repeating: 0, count: 32 - width)
        }
    }
}

/// `C[rows, n] = A[rows, k] · B[k, n] + bias[n]` for a few rows (a decoding step: one token, or a
/// few) over the packed panels `panels` only, so that threads can share one product by columns.
/// Each panel is streamed once per pair of rows: the product is bound by reading B, not by
/// arithmetic, so the 8-row tiles of ``multiplyRows(a:packedB:bias:c:rows:n:k:scratch:_:)`` would
/// do up to eight times the work for nothing.
@inlinable @inline(__always)
public func multiplyFewRows<M: MultiplyAdd>(
    a: UnsafePointer<Float>, packedB b: UnsafePointer<Float>, bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>,
    rows: Range<Int>, panels: Range<Int>, n: Int, k: Int, _: M.Type
) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { tile in
        guard let tile = tile.baseAddress else { return }
        var r0 = rows.lowerBound
        while r0 < rows.upperBound {
            let pair = r0 + 1 < rows.upperBound
            let a0 = a + r0 * k, a1 = pair ? a0 + k : a0
            for p in panels {
                var bp = b + p * k * 32
                var c00 = SIMD8<Float>.zero, c01 = c00, c02 = c00, c03 = c00
                var c10 = SIMD8<Float>.zero, c11 = c00, c12 = c00, c13 = c00
                for kk in 0..<k {
                    let b0 = load8(bp), b1 = load8(bp + 8), b2 = load8(bp + 16), b3 = load8(bp + 24)
                    bp += 32
                    let x0 = SIMD8<Float>(repeating: a0[kk]), x1 = SIMD8<Float>(repeating: a1[kk])
                    c00 = M.multiplyAdd(x0, b0, c00); c01 = M.multiplyAdd(x0, b1, c01)
                    c02 = M.multiplyAdd(x0, b2, c02); c03 = M.multiplyAdd(x0, b3, c03)
                    c10 = M.multiplyAdd(x1, b0, c10); c11 = M.multiplyAdd(x1, b1, c11)
                    c12 = M.multiplyAdd(x1, b2, c12); c13 = M.multiplyAdd(x1, b3, c13)
                }
                store8(c00, tile); store8(c01, tile + 8); store8(c02, tile + 16); store8(c03, tile + 24)
                store8(c10, tile + 32); store8(c11, tile + 40); store8(c12, tile + 48); store8(c13, tile + 56)
                let c0 = p * 32, width = min(32, n - c0)
                for r in 0..<(pair ? 2 : 1) {
                    let row = c + (r0 + r) * n + c0, t = tile + 32 * r
                    if let bias {
                        for j in 0..<width { row[j] = t[j] + bias[c0 + j] }
                    } else {
                        row.update(from: t, count: width)
                    }
                }
            }
            r0 += 2
        }
    }
}
