/// The narrow targets' (AVX2) `C = A · B + bias` over B packed in 32-column panels: 4 × 24 register
/// tiles, blocked so that each tile reads A and B from L1.
///
/// The 4 × 24 tile needs 7 loads for 12 FMAs (three vectors of B, four broadcasts of A), where the
/// 6 × 16 and 2 × 32 tiles of the 8 × 32 shape need 8 and 6 for 12 and 8: alone on L1-resident data,
/// on Zen 3, about 90% of the FMA peak against under 80%. Its 24 columns cross the 32-column panels,
/// so each tile's columns are first gathered into one contiguous block. The loops, outermost first:
/// ```
/// for each slice of kc ≤ multiplyDepthBlock steps:   A's slice copied, rows past the end zero
///     for each 24-column tile:                        B's kc × 24 block gathered (24 KiB, in L1)
///         for each group of 4 rows:                   C tile (+)= A group (4 KiB) · B block
/// ```
/// so B is read from the panels once per slice and block of rows, and then from L1 by every group.

/// Steps of k per slice: a tile's gathered block of B then takes 24 KiB of L1.
@inlinable public var multiplyDepthBlock: Int { 256 }

/// Floats of scratch ``multiplyRowsNarrow(a:packedB:bias:c:rows:n:k:scratch:_:)`` needs for `rows`
/// rows: the slice of A, a tile's block of B and one 4 × 24 tile for the edges.
@inlinable
public func multiplyRowsNarrowScratch(rows: Int, k: Int) -> Int {
    (((rows + 3) / 4) * 4 + 24) * min(k, multiplyDepthBlock) + 4 * 24
}

/// `C[rows, n] = A[rows, k] · B[k, n] + bias[n]` for a range of rows, on narrow registers. B is packed
/// in panels of 32 columns, `[ceil(n / 32)][k][32]`, the last zero-padded; `scratch` holds
/// ``multiplyRowsNarrowScratch(rows:k:)`` floats. Edge tiles (fewer than 4 rows or 24 columns) run
/// on the scratch tile, so nothing is read or written past the matrices.
@inlinable @inline(__always)
public func multiplyRowsNarrow<M: MultiplyAdd>(
    a: UnsafePointer<Float>, packedB b: UnsafePointer<Float>, bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>,
    rows: Range<Int>, n: Int, k: Int, scratch: UnsafeMutablePointer<Float>, _: M.Type
) {
    let groups = (rows.count + 3) / 4, paddedWidth = (n + 31) & ~31
    let depth = min(k, multiplyDepthBlock)
    let packedA = scratch, tileB = packedA + groups * 4 * depth, edge = tileB + 24 * depth
    if k == 0 {
        for row in rows { (c + row * n).update(repeating: 0, count: n) }
    }
    var k0 = 0
    while k0 < k {
        let kc = min(multiplyDepthBlock, k - k0), accumulate = k0 > 0
        // A's slice, rows past the end zero, so that every group of rows is a full 4 × kc block.
        for g in 0..<groups {
            for r in 0..<4 {
                let row = rows.lowerBound + 4 * g + r, destination = packedA + (4 * g + r) * kc
                if row < rows.upperBound {
                    destination.update(from: a + row * k + k0, count: kc)
                } else {
                    destination.update(repeating: 0, count: kc)
                }
            }
        }
        var c0 = 0
        while c0 < n {
            let width = min(24, n - c0)
            // This tile's 24 columns of the slice, gathered from their panels into one [kc][24] block
            // that stays in L1 while every group of rows reads it; columns past the padded panels
            // (only in a last tile, whose columns there are dropped) are zero.
            if c0 + 16 < paddedWidth {
                let s0 = stripStart(b, column: c0, k: k, k0: k0)
                let s1 = stripStart(b, column: c0 + 8, k: k, k0: k0), s2 = stripStart(b, column: c0 + 16, k: k, k0: k0)
                for p in 0..<kc {
                    let d = tileB + 24 * p
                    store8(load8(s0 + 32 * p), d); store8(load8(s1 + 32 * p), d + 8); store8(load8(s2 + 32 * p), d + 16)
                }
            } else {
                for s in 0..<3 {
                    let column = c0 + 8 * s, destination = tileB + 8 * s
                    if column < paddedWidth {
                        let source = stripStart(b, column: column, k: k, k0: k0)
                        for p in 0..<kc { store8(load8(source + 32 * p), destination + 24 * p) }
                    } else {
                        for p in 0..<kc { store8(.zero, destination + 24 * p) }
                    }
                }
            }
            for g in 0..<groups {
                let r0 = rows.lowerBound + 4 * g, count = min(4, rows.upperBound - r0)
                let target = c + r0 * n + c0
                let ap = UnsafePointer(packedA + g * kc * 4)
                if count == 4 && width == 24 {
                    tile4x24Narrow(ap, kc, UnsafePointer(tileB), 24, target, n, kc, accumulate: accumulate, M.self)
                } else {
                    if accumulate {
                        for r in 0..<count { (edge + 24 * r).update(from: target + r * n, count: width) }
                    }
                    tile4x24Narrow(ap, kc, UnsafePointer(tileB), 24, edge, 24, kc, accumulate: accumulate, M.self)
                    for r in 0..<count { (target + r * n).update(from: edge + 24 * r, count: width) }
                }
            }
            c0 += 24
        }
        k0 += kc
    }
    if let bias {
        for row in rows {
            let y = c + row * n
            for j in 0..<n { y[j] += bias[j] }
        }
    }
}


/// Where the 8-column strip of B's panels at `column` (a multiple of 8) starts at step `k0`.
@inlinable @inline(__always)
func stripStart(_ b: UnsafePointer<Float>, column: Int, k: Int, k0: Int) -> UnsafePointer<Float> {
    b + (column / 32) * k * 32 + k0 * 32 + column % 32
}
