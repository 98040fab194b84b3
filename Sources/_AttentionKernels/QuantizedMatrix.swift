/// Products with a weight stored in ggml's blocks, read as the file stores them, so a model keeps
/// the few bits per weight its file has. For the 32-value formats (``InterleavedQuantizedBlock``)
/// each block's integers and half-precision scales become Float in registers, and nothing is
/// dequantized into memory beyond one panel of 32 outputs (for products of many rows). Other
/// formats (the k-quants' super-blocks) are dequantized one weight row at a time into L1.
///
/// Every function here is generic over the block format; the kernel table compiles one row of them
/// per format (``QuantizedFormatKernels``).

/// Row `row` of a block-quantized `[n, k]` matrix in the file's layout, dequantized into `into[0..<k]`.
@inlinable @inline(__always)
func dequantizeRow<B: QuantizedBlock, M: MultiplyAdd>(
    _ weight: UnsafeRawPointer, row: Int, k: Int, into: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    let blocks = k / B.values
    var p = weight + row * blocks * B.bytes
    for b in 0..<blocks {
        B.dequantize(p, into: into + B.values * b, M.self)
        p += B.bytes
    }
}

/// `Σ x[j]·w[j]` over `j < k` (a multiple of 32), in four chains of eight.
@inlinable @inline(__always)
func rowDot<M: MultiplyAdd>(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, k: Int, _: M.Type) -> Float {
    var s0 = SIMD8<Float>.zero, s1 = s0, s2 = s0, s3 = s0
    var j = 0
    while j < k {
        s0 = M.multiplyAdd(load8(x + j), load8(w + j), s0); s1 = M.multiplyAdd(load8(x + j + 8), load8(w + j + 8), s1)
        s2 = M.multiplyAdd(load8(x + j + 16), load8(w + j + 16), s2); s3 = M.multiplyAdd(load8(x + j + 24), load8(w + j + 24), s3)
        j += 32
    }
    return ((s0 + s1) + (s2 + s3)).sum()
}

/// `y[r][o] = Σ_j x[r][j] · w[o][j]` for `o` in `outputs` and `r < rows`, for any block format:
/// each weight row dequantized once into `scratch` (`k` floats, in L1) and multiplied with every
/// input row there. The sums run in the same order whatever the range.
@inlinable @inline(__always)
public func multiplyDequantizedRows<B: QuantizedBlock, M: MultiplyAdd>(
    x: UnsafePointer<Float>, rows: Int, weight: UnsafeRawPointer,
    y: UnsafeMutablePointer<Float>, outputs: Range<Int>, n: Int, k: Int, scratch: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    for o in outputs {
        dequantizeRow(weight, row: o, k: k, into: scratch, B.self, M.self)
        for r in 0..<rows { y[r * n + o] = rowDot(x + r * k, scratch, k: k, M.self) }
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
public func multiplyQuantizedRows<B: InterleavedQuantizedBlock, M: MultiplyAdd>(
    x: UnsafePointer<Float>, rows: Int, weight: UnsafeRawPointer, interleaved: InterleavedRows,
    y: UnsafeMutablePointer<Float>, outputs: Range<Int>, n: Int, k: Int, scratch: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    let blocks = k / 32, rowBytes = blocks * B.bytes
    if rows == 1 {
        // The input's sum per block, for the minimums (and Q4_0's offset): as `xSums[b]`, and as
        // the pairs (even·Σx, odd·Σx) that multiply ``InterleavedQuantizedBlock/fourScales(_:_:)``'s lanes.
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
    multiplyDequantizedRows(x: x, rows: rows, weight: weight, y: y, outputs: interleavedEnd..<outputs.upperBound, n: n, k: k,
                            scratch: scratch, B.self, M.self)
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
public func multiplyQuantizedPanels<B: InterleavedQuantizedBlock, M: MultiplyAdd>(
    a: UnsafePointer<Float>, rows: Int, weight: UnsafeRawPointer, interleaved: InterleavedRows,
    c: UnsafeMutablePointer<Float>, panels: Range<Int>, n: Int, k: Int, scratch: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    let panel = scratch, row = scratch + 32 * k
    for p in panels {
        let c0 = p * 32
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
            fillPanelColumn(panel, j, from: weight, row: c0 + j, n: n, k: k, scratch: row, B.self, M.self)
            j += 1
        }
        multiplyPanel(a: a, rows: rows, panel: panel, c: c, column: c0, n: n, k: k, scratch: scratch, M.self)
    }
}

/// `C[rows, n] = A[rows, k] · Wᵀ` for the 32-column panels `panels` of C, for any block format:
/// each panel's 32 weight rows dequantized a block at a time, eight rows at once, and transposed
/// into the panel eight by eight (see ``multiplyQuantizedPanels(a:rows:weight:interleaved:c:panels:n:k:scratch:_:_:)``).
@inlinable @inline(__always)
public func multiplyDequantizedPanels<B: QuantizedBlock, M: MultiplyAdd>(
    a: UnsafePointer<Float>, rows: Int, weight: UnsafeRawPointer,
    c: UnsafeMutablePointer<Float>, panels: Range<Int>, n: Int, k: Int, scratch: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    // Eight rows of one block (8 · 256 floats at most) in the scratch after the panel, which
    // the panel's product uses only after the panel is filled (9k + 256 floats, k ≥ the block's values).
    let panel = scratch, rowBlocks = scratch + 32 * k, values = B.values, blocks = k / values
    for p in panels {
        for b in 0..<blocks {
            for slab in 0..<4 {
                for i in 0..<8 {
                    let row = 32 * p + 8 * slab + i
                    if row < n {
                        B.dequantize(weight + (row * blocks + b) * B.bytes, into: rowBlocks + values * i, M.self)
                    } else {
                        (rowBlocks + values * i).update(repeating: 0, count: values)
                    }
                }
                let out = panel + 32 * values * b + 8 * slab
                for e in stride(from: 0, to: values, by: 8) { transpose8x8(rowBlocks + e, stride: values, into: out + 32 * e, stride: 32) }
            }
        }
        multiplyPanel(a: a, rows: rows, panel: panel, c: c, column: 32 * p, n: n, k: k, scratch: scratch, M.self)
    }
}

/// The 8 × 8 floats at `source` (rows `stride` apart) transposed to `destination` (rows `stride`
/// apart there): eight vector loads, shuffles, eight vector stores.
@inlinable @inline(__always)
func transpose8x8(_ source: UnsafePointer<Float>, stride s: Int, into destination: UnsafeMutablePointer<Float>, stride d: Int) {
    let r0 = load8(source), r1 = load8(source + s), r2 = load8(source + 2 * s), r3 = load8(source + 3 * s)
    let r4 = load8(source + 4 * s), r5 = load8(source + 5 * s), r6 = load8(source + 6 * s), r7 = load8(source + 7 * s)
    for c in 0..<8 { store8(SIMD8(r0[c], r1[c], r2[c], r3[c], r4[c], r5[c], r6[c], r7[c]), destination + d * c) }
}

/// Column `j` of a transposed panel (`panel[kk·32 + j]`): weight row `row` dequantized through
/// `scratch` (`k` floats), or zeros past the last row `n − 1`.
@inlinable @inline(__always)
func fillPanelColumn<B: QuantizedBlock, M: MultiplyAdd>(
    _ panel: UnsafeMutablePointer<Float>, _ j: Int, from weight: UnsafeRawPointer, row: Int, n: Int, k: Int,
    scratch: UnsafeMutablePointer<Float>, _: B.Type, _: M.Type
) {
    if row < n {
        dequantizeRow(weight, row: row, k: k, into: scratch, B.self, M.self)
        for kk in 0..<k { panel[kk * 32 + j] = scratch[kk] }
    } else {
        for kk in 0..<k { panel[kk * 32 + j] = 0 }
    }
}

/// Every 8-row block of `A [rows, k]` times one transposed panel of 32 weight rows into columns
/// `column ..< column + 32` of `C [rows, n]` (fewer at the right edge), by the 8 × 32 micro-kernel.
/// `scratch` is the panel's (``quantizedPanelScratch(k:)``): its space after the panel and a row.
@inlinable @inline(__always)
func multiplyPanel<M: MultiplyAdd>(
    a: UnsafePointer<Float>, rows: Int, panel: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, column c0: Int,
    n: Int, k: Int, scratch: UnsafeMutablePointer<Float>, _: M.Type
) {
    let paddedA = scratch + 32 * k + k, tileC = paddedA + 8 * k, width = min(32, n - c0)
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
