/// Products with a weight stored in ggml's 32-element blocks (Q8_0, Q4_0, Q4_1, Q5_0), read as the file
/// stores them: each block's integers and half-precision scales become Float in registers, and the
/// products accumulate in Float. Nothing is dequantized into memory beyond one panel of 32 outputs
/// (for products of many rows), so a model keeps the few bits per weight its file has.
///
/// Every function here is generic over the block format (``QuantizedBlock``); the kernel table
/// compiles one row of them per format (``QuantizedFormatKernels``).

/// Row `row` of a block-quantized `[n, k]` matrix in the file's layout, dequantized into `into[0..<k]`.
@inlinable @inline(__always)
func dequantizeRow<B: QuantizedBlock, M: MultiplyAdd>(
    _ weight: UnsafeRawPointer, row: Int, k: Int, into: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    let blocks = k / 32
    var p = weight + row * blocks * B.bytes
    for b in 0..<blocks {
        let (w0, w1, w2, w3) = B.dequantize(p, M.self)
        let out = into + 32 * b
        store8(w0, out); store8(w1, out + 8); store8(w2, out + 16); store8(w3, out + 24)
        p += B.bytes
    }
}

/// `y[r][o] = Σ_j x[r][j] · w[o][j]` for `o` in `outputs` and `r < rows`: `x [rows, k]` row-major, `w`
/// `[n, k]` in blocks of 32 along `k` (`k` a multiple of 32), `y [rows, n]`.
///
/// One row (a decoding step) reads each block once and multiplies it from registers. A few rows
/// dequantize each block of sixteen interleaved weight rows once and take every input row's products
/// from there, the sixteen outputs in lanes; the remainder rows are dequantized one by one into
/// `scratch` (``quantizedRowsScratch(k:rows:)`` floats, in L1). The sums run in the same order
/// whatever the range, so results do not depend on how the outputs are shared among threads.
@inlinable @inline(__always)
public func multiplyQuantizedRows<B: QuantizedBlock, M: MultiplyAdd>(
    x: UnsafePointer<Float>, rows: Int, weight: UnsafeRawPointer, interleaved: InterleavedRows,
    y: UnsafeMutablePointer<Float>, outputs: Range<Int>, n: Int, k: Int, scratch: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    let blocks = k / 32, rowBytes = blocks * B.bytes
    if rows == 1 {
        // The input's sum per block, for the minimums (and Q4_0's offset): as `xSums[b]`, and as
        // the pairs (even·Σx, odd·Σx) that multiply ``QuantizedBlock/fourScales(_:_:)``'s lanes.
        let xSums = scratch, weightedSums = scratch + blocks
        let (even, odd) = B.minimumWeights
        for b in 0..<blocks {
            let xb = x + 32 * b
            xSums[b] = ((load8(xb) + load8(xb + 8)) + (load8(xb + 16) + load8(xb + 24))).sum()
            weightedSums[2 * b] = even * xSums[b]
            weightedSums[2 * b + 1] = odd * xSums[b]
        }
        let hasMinimum = even != 0 || odd != 0
        for o in outputs {
            var p = weight + o * rowBytes
            // Two accumulators, for even and odd blocks: two independent chains.
            var s0 = SIMD8<Float>.zero, s1 = s0, minimums = s0
            var m0: Float = 0, m1: Float = 0
            var b = 0
            // Four blocks at a time share one conversion of their scales.
            while b + 3 < blocks {
                let scales = B.fourScales(p, M.self)
                let xb = x + 32 * b
                s0 = M.multiplyAdd(SIMD8(repeating: scales[0]), B.integerDot(p, xb, M.self), s0)
                s1 = M.multiplyAdd(SIMD8(repeating: scales[2]), B.integerDot(p + B.bytes, xb + 32, M.self), s1)
                s0 = M.multiplyAdd(SIMD8(repeating: scales[4]), B.integerDot(p + 2 * B.bytes, xb + 64, M.self), s0)
                s1 = M.multiplyAdd(SIMD8(repeating: scales[6]), B.integerDot(p + 3 * B.bytes, xb + 96, M.self), s1)
                if hasMinimum { minimums = M.multiplyAdd(scales, load8(weightedSums + 2 * b), minimums) }
                p += 4 * B.bytes
                b += 4
            }
            while b + 1 < blocks {
                B.accumulateDot(p, x + 32 * b, xSum: xSums[b], &s0, &m0, M.self)
                B.accumulateDot(p + B.bytes, x + 32 * b + 32, xSum: xSums[b + 1], &s1, &m1, M.self)
                p += 2 * B.bytes
                b += 2
            }
            if b < blocks { B.accumulateDot(p, x + 32 * b, xSum: xSums[b], &s0, &m0, M.self) }
            // One reduction of the lanes, by halving (`.sum()` reduces lane by lane), then the scalar minimums.
            y[o] = horizontalSum((s0 + s1) + minimums) + (m0 + m1)
        }
        return
    }
    // Rows interleaved by sixteen: the outputs' groups, each block dequantized once for all rows.
    let interleavedEnd = min(outputs.upperBound, max(outputs.lowerBound, quantizedGroupRows * interleaved.groups))
    var o = outputs.lowerBound
    while o < interleavedEnd {
        let g = o / quantizedGroupRows
        let groupOutputs = o..<min(interleavedEnd, quantizedGroupRows * (g + 1))
        multiplyInterleavedGroupRows(x, rows: rows, interleaved, group: g, blocks: blocks,
                                     y: y, n: n, outputs: groupOutputs, scratch: scratch, B.self, M.self)
        o = groupOutputs.upperBound
    }
    // The remainder rows, from the file's layout: each row dequantized once into `scratch`.
    for o in interleavedEnd..<outputs.upperBound {
        dequantizeRow(weight, row: o, k: k, into: scratch, B.self, M.self)
        for r in 0..<rows {
            let xr = x + r * k
            var s0 = SIMD8<Float>.zero, s1 = s0, s2 = s0, s3 = s0
            var j = 0
            while j < k {
                s0 = M.multiplyAdd(load8(xr + j), load8(scratch + j), s0); s1 = M.multiplyAdd(load8(xr + j + 8), load8(scratch + j + 8), s1)
                s2 = M.multiplyAdd(load8(xr + j + 16), load8(scratch + j + 16), s2); s3 = M.multiplyAdd(load8(xr + j + 24), load8(scratch + j + 24), s3)
                j += 32
            }
            y[r * n + o] = ((s0 + s1) + (s2 + s3)).sum()
        }
    }
}

/// Floats of scratch ``multiplyQuantizedRows(x:rows:weight:interleaved:y:outputs:n:k:scratch:_:_:)`` needs.
@inlinable
public func quantizedRowsScratch(k: Int, rows: Int) -> Int { max(k, interleavedGroupRowsScratch(rows: rows)) }

/// Floats of scratch ``multiplyQuantizedPanels(a:rows:weight:interleaved:c:panels:n:k:scratch:_:_:)`` needs.
@inlinable
public func quantizedPanelScratch(k: Int) -> Int { 32 * k + k + 8 * (k + 32) }

/// `C[rows, n] = A[rows, k] · Wᵀ` for the 32-column panels `panels` of C: `A` row-major, `W [n, k]` in
/// blocks of 32 along `k`. Each panel's 32 weight rows are dequantized once into `scratch` (see
/// ``quantizedPanelScratch(k:)``), transposed into the layout of the 8 × 32 micro-kernel, and every
/// 8-row block of `A` is multiplied with it: the dequantization is paid once per 32 outputs, not once
/// per row, and the product runs at the micro-kernel's speed.
@inlinable @inline(__always)
public func multiplyQuantizedPanels<B: QuantizedBlock, M: MultiplyAdd>(
    a: UnsafePointer<Float>, rows: Int, weight: UnsafeRawPointer, interleaved: InterleavedRows,
    c: UnsafeMutablePointer<Float>, panels: Range<Int>, n: Int, k: Int, scratch: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    let panel = scratch, row = scratch + 32 * k, paddedA = row + k, tileC = paddedA + 8 * k
    for p in panels {
        let c0 = p * 32, width = min(32, n - c0)
        var j = 0
        while j < 32 {
            // Sixteen interleaved rows at once, in vectors; the rest row by row.
            let group = (c0 + j) / quantizedGroupRows
            if j % quantizedGroupRows == 0 && group < interleaved.groups {
                dequantizeInterleavedGroup(interleaved, group: group, blocks: k / 32, into: panel + j, stride: 32,
                                           scales: row, B.self, M.self)
                j += quantizedGroupRows
                continue
            }
            if j < width {
                dequantizeRow(weight, row: c0 + j, k: k, into: row, B.self, M.self)
                for kk in 0..<k { panel[kk * 32 + j] = row[kk] }
            } else {
                for kk in 0..<k { panel[kk * 32 + j] = 0 }
            }
            j += 1
        }
        var r0 = 0
        while r0 < rows {
            let count = min(8, rows - r0)
            var aBlock = a + r0 * k
            if count < 8 {
                paddedA.update(repeating: 0, count: 8 * k)
                paddedA.update(from: aBlock, count: count * k)
                aBlock = UnsafePointer(paddedA)
            }
            if count == 8 && width == 32 {
                tile8x32(aBlock, k, panel, 32, c + r0 * n + c0, n, k, accumulate: false, M.self)
            } else {
                tile8x32(aBlock, k, panel, 32, tileC, 32, k, accumulate: false, M.self)
                for r in 0..<count { (c + (r0 + r) * n + c0).update(from: tileC + r * 32, count: width) }
            }
            r0 += 8
        }
    }
}
