/// The tiled backward pass (FlashAttention-2's algorithm 2): probabilities are recomputed block by
/// block from the saved log-sum-exp, so, as in the forward pass, no `Nq × Nk` buffer exists.
///
/// One item per (b, key/value head, key block): for every query row of the group's heads that can see
/// the block, `S = Q·Kᵀ`, `P = 2^(S₂ - L₂)`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP - Δ)` with
/// `Δ = rowsum(dO ⊙ O)`; then `dV += Pᵀ·dO` and `dK += scale · dSᵀ·Q` for the block's keys, which the
/// item owns, and `dQ += scale · dS·K` into its worker's own dQ buffer (summed over workers at the end),
/// so no two threads ever write the same memory. With a bias, `dBias += dS` at the bias's own
/// (broadcast) index, also into the worker's own buffer.
///
/// The key-side products run transposed, `dVᵀ += dOᵀ·P` and `dKᵀ += Qᵀ·dS`, from copies of Q and dO
/// transposed once per call (``transposedQuery``, ``transposedOutputGradient``): P and dS are then
/// read in the layout they were computed in, where transposing them for every (query block, key block)
/// pair cost about a sixth of the backward's time. dKᵀ and dVᵀ are transposed back once per item.
public struct BackwardDescriptor: @unchecked Sendable {
    public var forward: ForwardDescriptor
    public var dO: UnsafePointer<Float>
    /// Forward output and natural log-sum-exp.
    public var output: UnsafePointer<Float>
    public var logSumExp: UnsafePointer<Float>
    public var dQ: UnsafeMutablePointer<Float>
    public var dK: UnsafeMutablePointer<Float>
    public var dV: UnsafeMutablePointer<Float>
    /// The softmax scale: dK = scale · dSᵀ·Q and dQ = scale · dS·K.
    public var scale: Float
    /// Q per (b, head) transposed, `[B·Hq][paddedD][transposedStride]`, zero in the padding (see
    /// ``transposeForBackward(_:rows:columns:stride:into:)``).
    public var transposedQuery: UnsafePointer<Float>
    /// dO per (b, head) transposed, `[B·Hq][paddedDv][transposedStride]`, zero in the padding.
    public var transposedOutputGradient: UnsafePointer<Float>

    @inlinable
    public init(forward: ForwardDescriptor, dO: UnsafePointer<Float>, output: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>,
                dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>, scale: Float,
                transposedQuery: UnsafePointer<Float>, transposedOutputGradient: UnsafePointer<Float>) {
        self.forward = forward
        self.dO = dO
        self.output = output
        self.logSumExp = logSumExp
        self.dQ = dQ
        self.dK = dK
        self.dV = dV
        self.scale = scale
        self.transposedQuery = transposedQuery
        self.transposedOutputGradient = transposedOutputGradient
    }

    @inlinable public var queryBlocksPerHead: Int { (forward.Nq + forward.rowBlock - 1) / forward.rowBlock }
    @inlinable public var keyItems: Int { forward.B * forward.Hkv * forward.keyBlocks }
    /// `features` rounded up to the micro-kernels' eight rows: the rows of a transposed copy.
    @inlinable public static func paddedFeatures(_ features: Int) -> Int { (features + 7) & ~7 }
    /// The query head dimension rounded up to eight.
    @inlinable public var paddedD: Int { Self.paddedFeatures(forward.D) }
    /// The value head dimension rounded up to eight.
    @inlinable public var paddedDv: Int { Self.paddedFeatures(forward.Dv) }
    /// The row length of the transposed copies: the query rows rounded up to 8, and one cache line
    /// more where that would be a multiple of 512 bytes, whose rows would all share a few of L1's sets.
    @inlinable public static func transposedStride(rows: Int) -> Int {
        let padded = (rows + 7) & ~7
        return padded % 128 == 0 ? padded + 16 : padded
    }
    /// ``transposedStride(rows:)`` for this problem's query rows.
    @inlinable public var transposedStride: Int { Self.transposedStride(rows: forward.Nq) }

    /// Floats of scratch one worker needs.
    @inlinable public var scratchFloats: Int {
        let d = forward, rows = (d.rowBlock + 7) & ~7, bc = d.keyBlock
        return rows * d.D + rows * d.Dv + 2 * rows * bc + paddedD * bc + paddedDv * bc
            + (d.D + d.Dv) * bc + rows * d.D + 2 * rows + 64
    }
}

/// Copies one head's `[rows][columns]` into `[paddedColumns][stride]` (columns rounded up to 8, `stride`
/// from ``BackwardDescriptor/transposedStride(rows:)``), zero in the padding: the layout of
/// ``BackwardDescriptor/transposedQuery``.
@inlinable
public func transposeForBackward(
    _ source: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int, into target: UnsafeMutablePointer<Float>
) {
    let paddedColumns = BackwardDescriptor.paddedFeatures(columns)
    // One key panel as wide as the row: the keys' transposed packing, zero from `rows` to `stride`.
    packKeysTransposed(source, D: columns, count: rows, panel: stride, into: target)
    (target + columns * stride).update(repeating: 0, count: (paddedColumns - columns) * stride)
}

/// `C[rows × cols] += A[rows × k] · B[k × cols]`, rows a multiple of 8, any cols.
@inlinable @inline(__always)
func accumulateProduct<M: MultiplyAdd>(
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, rows: Int, cols: Int, k: Int, _: M.Type
) {
    if M.registers == .narrow {
        return accumulateProductNarrow(a, lda, b, ldb, c, ldc, rows: rows, cols: cols, k: k, M.self)
    }
    for r0 in stride(from: 0, to: rows, by: 8) {
        var c0 = 0
        while c0 + 32 <= cols {
            tile8x32(a + r0 * lda, lda, b + c0, ldb, c + r0 * ldc + c0, ldc, k, accumulate: true, M.self)
            c0 += 32
        }
        if c0 + 16 <= cols {
            tile8x16(a + r0 * lda, lda, b + c0, ldb, c + r0 * ldc + c0, ldc, k, accumulate: true, M.self)
            c0 += 16
        }
        if c0 < cols { tile8xScalar(a + r0 * lda, lda, b + c0, ldb, c + r0 * ldc + c0, ldc, k, columns: cols - c0) }
    }
}

/// For one block of query rows (of one head) and one block of keys: P and dS, each `[rowsPadded × Bc]`.
/// `Qraw` holds the rows unscaled, `dOt` their output gradients, `delta` Δ and `lse2` L·log₂e per row.
@inlinable @inline(__always)
func probabilitiesAndScoreGradients<M: MultiplyAdd>(
    _ d: ForwardDescriptor, batch b: Int, head h: Int, rows rowRange: Range<Int>, keys j0: Int, count n: Int,
    Qraw: UnsafePointer<Float>, dOt: UnsafePointer<Float>, delta: UnsafePointer<Float>, lse2: UnsafePointer<Float>,
    Kt: UnsafePointer<Float>, Vt: UnsafePointer<Float>, P: UnsafeMutablePointer<Float>, dS: UnsafeMutablePointer<Float>, _: M.Type
) {
    let (D, Dv, Bc) = (d.D, d.Dv, d.keyBlock)
    let rows = rowRange.count, rowsPadded = (rows + 7) & ~7, padded = (n + 31) & ~31
    for r0 in stride(from: 0, to: rowsPadded, by: 8) {
        for c0 in stride(from: 0, to: padded, by: 32) {
            tile8x32(Qraw + r0 * D, D, Kt + c0 * D, 32, P + r0 * Bc + c0, Bc, D, accumulate: false, M.self)
            tile8x32(dOt + r0 * Dv, Dv, Vt + c0 * Dv, 32, dS + r0 * Bc + c0, Bc, Dv, accumulate: false, M.self)
        }
    }
    for r in 0..<rowsPadded {
        let Pr = P + r * Bc, dSr = dS + r * Bc
        let i = rowRange.lowerBound + r
        let visible = r < rows ? d.visibleKeys(batch: b, query: i, within: j0..<(j0 + n)) : 0..<0
        guard !visible.isEmpty, lse2[r] > -.infinity else {
            Pr.update(repeating: 0, count: padded)
            dSr.update(repeating: 0, count: padded)
            continue
        }
        let lo = visible.lowerBound - j0, hi = visible.upperBound - j0
        // Without bias or boolean masks the scores are scaled as the exponent is formed (one pass
        // over the row, not two); with them, scaled first, as the bias and masks apply to the
        // scaled scores. Keys outside the visible range get P = dS = 0 afterwards either way.
        var factor = SIMD16<Float>(repeating: d.scaleLog2)
        if d.bias != nil || d.booleanMasks.count > 0 {
            for j in 0..<padded { Pr[j] *= d.scaleLog2 }
            applyBiasAndMasks(d, Pr, batch: b, head: h, query: i, keys: j0, range: lo..<hi)
            factor = SIMD16<Float>(repeating: 1)
        }
        let shift = SIMD16<Float>(repeating: lse2[r]), dl = SIMD16<Float>(repeating: delta[r])
        for j in stride(from: 0, to: padded, by: 16) {
            let p = exp2Vector(M.multiplyAdd(load(Pr + j), factor, -shift), M.self)
            store(p, Pr + j)
            store(p * (load(dSr + j) - dl), dSr + j)
        }
        Pr.update(repeating: 0, count: lo)
        dSr.update(repeating: 0, count: lo)
        (Pr + hi).update(repeating: 0, count: padded - hi)
        (dSr + hi).update(repeating: 0, count: padded - hi)
    }
}

/// Loads rows `rowRange` of head `h` (unscaled queries, output gradients, Δ and L₂) into tiles.
@inlinable @inline(__always)
func loadQueryRows(
    _ bd: BackwardDescriptor, batch b: Int, head h: Int, rows rowRange: Range<Int>,
    Qraw: UnsafeMutablePointer<Float>, dOt: UnsafeMutablePointer<Float>, delta: UnsafeMutablePointer<Float>,
    lse2: UnsafeMutablePointer<Float>
) {
    let d = bd.forward
    let (D, Dv) = (d.D, d.Dv)
    let rows = rowRange.count, rowsPadded = (rows + 7) & ~7
    for r in 0..<rowsPadded {
        guard r < rows else {
            (Qraw + r * D).update(repeating: 0, count: D)
            (dOt + r * Dv).update(repeating: 0, count: Dv)
            delta[r] = 0
            lse2[r] = -.infinity
            continue
        }
        let row = (b * d.Hq + h) * d.Nq + rowRange.lowerBound + r
        (Qraw + r * D).update(from: d.q + row * D, count: D)
        (dOt + r * Dv).update(from: bd.dO + row * Dv, count: Dv)
        let dOrow = bd.dO + row * Dv, Orow = bd.output + row * Dv
        var partial = SIMD16<Float>(repeating: 0)
        var c = 0
        while c + 16 <= Dv {
            partial += load(dOrow + c) * load(Orow + c)
            c += 16
        }
        var dot = horizontalSum(partial)
        while c < Dv {
            dot += dOrow[c] * Orow[c]
            c += 1
        }
        delta[r] = dot
        lse2[r] = bd.logSumExp[row] * 1.442_695_04
    }
}

/// dK and dV for one key block of one key/value head, and its contributions to dQ, added into
/// `dQBuffer` (`[B, Hq, Nq, D]`, this worker's own), and to the bias gradient, added into `dBiasBuffer`
/// (the bias's size, this worker's own) when the problem has a bias.
@inlinable @inline(__always)
public func backwardKeyItem<M: MultiplyAdd>(
    _ bd: UnsafePointer<BackwardDescriptor>, item: Int, scratch: ForwardScratch, dQBuffer: UnsafeMutablePointer<Float>,
    dBiasBuffer: UnsafeMutablePointer<Float>?, _: M.Type
) {
    let bd = bd.pointee, d = bd.forward
    let (D, Dv, Bc, Br, G) = (d.D, d.Dv, d.keyBlock, d.rowBlock, d.groupSize)
    let t = item % d.keyBlocks, kvh = (item / d.keyBlocks) % d.Hkv, b = item / (d.keyBlocks * d.Hkv)
    let j0 = t * Bc, n = min(Bc, d.Nk - j0)
    let rowsMax = (Br + 7) & ~7
    var p = scratch.floats
    func take(_ count: Int) -> UnsafeMutablePointer<Float> { defer { p += count }; return p }
    let (paddedD, paddedDv, stride) = (bd.paddedD, bd.paddedDv, bd.transposedStride)
    let Qraw = take(rowsMax * D), dOt = take(rowsMax * Dv), P = take(rowsMax * Bc), dS = take(rowsMax * Bc)
    // dKᵀ and dVᵀ: a row per head dimension, a column per key of the block.
    let dKt = take(paddedD * Bc), dVt = take(paddedDv * Bc)
    let Kt = take(D * Bc), Vt = take(Dv * Bc), delta = take(rowsMax), lse2 = take(rowsMax), dQt = take(rowsMax * D)
    let kvHead = b * d.Hkv + kvh
    packKeysTransposed(d.floatKeys + (kvHead * d.Nk + j0) * D, D: D, count: n, panel: 32, into: Kt)
    packKeysTransposed(d.floatValues + (kvHead * d.Nk + j0) * Dv, D: Dv, count: n, panel: 32, into: Vt)
    dKt.update(repeating: 0, count: paddedD * Bc)
    dVt.update(repeating: 0, count: paddedDv * Bc)
    for g in 0..<G {
        let h = kvh * G + g
        for qb in 0..<bd.queryBlocksPerHead {
            let rowRange = (qb * Br)..<min(d.Nq, (qb + 1) * Br)
            // Skip query blocks that see none of these keys. Both ends of the structural visible range
            // grow with the query index, so the block sees at most keys lo(first row) ..< hi(last row).
            let lowest = max(0, rowRange.lowerBound + d.lowerOffset)
            var highest = min(d.Nk, rowRange.upperBound - 1 + d.upperOffset + 1)
            if let lengths = d.keyLengths { highest = min(highest, lengths[b]) }
            if highest <= j0 || lowest >= j0 + n { continue }
            // Keys from `seen` on are hidden from every row of the block (the causal diagonal, key
            // lengths): their scores, probabilities and products are skipped.
            let seen = min(n, highest - j0), columns = (seen + 31) & ~31
            let rowsPadded = (rowRange.count + 7) & ~7
            loadQueryRows(bd, batch: b, head: h, rows: rowRange, Qraw: Qraw, dOt: dOt, delta: delta, lse2: lse2)
            probabilitiesAndScoreGradients(d, batch: b, head: h, rows: rowRange, keys: j0, count: seen, Qraw: Qraw, dOt: dOt,
                                           delta: delta, lse2: lse2, Kt: Kt, Vt: Vt, P: P, dS: dS, M.self)
            if let dBias = dBiasBuffer, let bias = d.bias {
                // dS is ∂L/∂(scale·q·k + bias): summed into the bias's own entry (stride 0 where it broadcasts).
                let st = bias.strides
                for r in 0..<rowRange.count {
                    let row = dBias + b * st.0 + h * st.1 + (rowRange.lowerBound + r) * st.2 + j0 * st.3
                    for j in 0..<seen { row[j * st.3] += dS[r * Bc + j] }
                }
            }
            // dVᵀ += dOᵀ·P and dKᵀ += Qᵀ·dS for the first `columns` keys, over this block's (padded)
            // query rows; P and dS are zero past the visible keys and in the padding rows, Qᵀ and dOᵀ
            // zero in theirs.
            let head = b * d.Hq + h
            let dOT = bd.transposedOutputGradient + head * paddedDv * stride + rowRange.lowerBound
            let QT = bd.transposedQuery + head * paddedD * stride + rowRange.lowerBound
            accumulateProduct(dOT, stride, P, Bc, dVt, Bc, rows: paddedDv, cols: columns, k: rowsPadded, M.self)
            accumulateProduct(QT, stride, dS, Bc, dKt, Bc, rows: paddedD, cols: columns, k: rowsPadded, M.self)
            dQt.update(repeating: 0, count: rowsPadded * D)
            accumulateProduct(dS, Bc, d.floatKeys + (kvHead * d.Nk + j0) * D, D, dQt, D, rows: rowsPadded, cols: D, k: seen, M.self)
            let scale16 = SIMD16<Float>(repeating: bd.scale)
            for r in 0..<rowRange.count {
                let destination = dQBuffer + ((b * d.Hq + h) * d.Nq + rowRange.lowerBound + r) * D, source = dQt + r * D
                var c = 0
                while c + 16 <= D {
                    store(load(destination + c) + scale16 * load(source + c), destination + c)
                    c += 16
                }
                while c < D {
                    destination[c] += bd.scale * source[c]
                    c += 1
                }
            }
        }
    }
    for j in 0..<n {
        let row = kvHead * d.Nk + j0 + j
        for c in 0..<D { bd.dK[row * D + c] = bd.scale * dKt[c * Bc + j] }
        for c in 0..<Dv { bd.dV[row * Dv + c] = dVt[c * Bc + j] }
    }
}
