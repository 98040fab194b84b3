/// `C[rows, n] = A[rows, k] · B[k, n] + bias[n]` for a range of rows, by the 8 × 32 micro-kernel.
///
/// B comes packed in panels of 32 columns, `[ceil(n / 32)][k][32]`, the last panel zero-padded (see
/// ``packPanels(_:k:n:into:)``): each panel is one contiguous stream, so the micro-kernel reads B in
/// order instead of striding across whole rows. A last block of fewer than 8 rows, and a last panel of
/// fewer than 32 columns, go through `scratch` (at least `8 · (k + 32)` floats), so the micro-kernel
/// never reads or writes past the matrices.
@inlinable @inline(__always)
public func multiplyRows<M: MultiplyAdd>(
    a: UnsafePointer<Float>, packedB b: UnsafePointer<Float>, bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>,
    rows: Range<Int>, n: Int, k: Int, scratch: UnsafeMutablePointer<Float>, _: M.Type
) {
    let panels = (n + 31) / 32
    let paddedA = scratch, tileC = scratch + 8 * k
    var r0 = rows.lowerBound
    while r0 < rows.upperBound {
        let count = min(8, rows.upperBound - r0)
        var aBlock = a + r0 * k
        if count < 8 {
            paddedA.update(repeating: 0, count: 8 * k)
            paddedA.update(from: aBlock, count: count * k)
            aBlock = UnsafePointer(paddedA)
        }
        for p in 0..<panels {
            let c0 = p * 32, width = min(32, n - c0)
            if count == 8 && width == 32 {
                tile8x32(aBlock, k, b + p * k * 32, 32, c + r0 * n + c0, n, k, accumulate: false, M.self)
            } else {
                tile8x32(aBlock, k, b + p * k * 32, 32, tileC, 32, k, accumulate: false, M.self)
                for r in 0..<count { (c + (r0 + r) * n + c0).update(from: tileC + r * 32, count: width) }
            }
        }
        if let bias {
            for r in 0..<count {
                let row = c + (r0 + r) * n
                for j in 0..<n { row[j] += bias[j] }
            }
        }
        r0 += 8
    }
}

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
