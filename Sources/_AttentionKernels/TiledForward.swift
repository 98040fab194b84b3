import Foundation

/// Per-worker scratch memory for the tiled forward kernel, sized by ``ForwardDescriptor/scratchFloats``.
public final class ForwardScratch: @unchecked Sendable {
    public let floats: UnsafeMutablePointer<Float>
    public let integers: UnsafeMutablePointer<Int>
    public let floatCount: Int

    public init(floats: Int, rows: Int) {
        floatCount = floats
        self.floats = .allocate(capacity: floats)
        self.integers = .allocate(capacity: 2 * rows)
    }

    deinit {
        floats.deallocate()
        integers.deallocate()
    }
}

/// Packs keys `j0 ..< j0 + n` of one key/value head transposed, in panels of `panel` keys:
/// `kt[p][c][jj] = k[panel·p + jj][c]`, `[ceil(n / panel)][D][panel]`, zero-filling the last panel so
/// that the micro-kernel can read whole vectors. Panel `p` starts at `kt + panel · p · D`.
///
/// Panels rather than one `[D][Bc]` matrix: a micro-kernel pass reads 16 to 48 columns of every row,
/// and with rows `Bc` floats apart (512 bytes) those lines all fall in a few L1 sets and evict one
/// another; a panel's rows are consecutive.
@inlinable @inline(__always)
public func packKeysTransposed(
    _ k: UnsafePointer<Float>, D: Int, count n: Int, panel: Int, into kt: UnsafeMutablePointer<Float>
) {
    for p in 0..<((n + panel - 1) / panel) {
        let first = p * panel, width = min(panel, n - first)
        let destination = kt + first * D
        for c in 0..<D {
            let row = destination + c * panel
            for jj in 0..<width { row[jj] = k[(first + jj) * D + c] }
            for jj in width..<panel { row[jj] = 0 }
        }
    }
}

/// Keys per panel of packed K on a target: two 4 × 24 tiles on narrow registers, one 8 × 32 on wide.
@inlinable @inline(__always)
public func keyPanelWidth<M: MultiplyAdd>(_: M.Type) -> Int { M.registers == .narrow ? 48 : 32 }

/// `S = Qt · Kᵀ` for `rowsPadded` rows (a multiple of 8) against `n` keys packed in panels of
/// ``keyPanelWidth(_:)``; writes columns up to the end of the last panel (at most `ldS`).
@inlinable @inline(__always)
func computeScores<M: MultiplyAdd>(
    _ Qt: UnsafePointer<Float>, rows rowsPadded: Int, D: Int, packedKeys Kt: UnsafePointer<Float>, count n: Int,
    into S: UnsafeMutablePointer<Float>, ldS: Int, _: M.Type
) {
    let panel = keyPanelWidth(M.self)
    let panels = (n + panel - 1) / panel
    if M.registers == .narrow {
        for r0 in stride(from: 0, to: rowsPadded, by: 4) {
            for p in 0..<panels {
                let Kp = Kt + p * panel * D, Sp = S + r0 * ldS + p * panel
                tile4x24Narrow(Qt + r0 * D, D, Kp, panel, Sp, ldS, D, accumulate: false, M.self)
                tile4x24Narrow(Qt + r0 * D, D, Kp + 24, panel, Sp + 24, ldS, D, accumulate: false, M.self)
            }
        }
        return
    }
    for r0 in stride(from: 0, to: rowsPadded, by: 8) {
        for p in 0..<panels {
            tile8x32(Qt + r0 * D, D, Kt + p * panel * D, panel, S + r0 * ldS + p * panel, ldS, D, accumulate: false, M.self)
        }
    }
}

/// One work item of the tiled forward pass: a block of query rows against one key range, with an
/// online softmax (FlashAttention-2, Algorithm 1, in base 2).
///
/// For each key block: S = Q·Kᵀ (micro-kernel), hide what the mask hides, then per row
/// m' = max(m, rowmax S), P = 2^(S - m'), l = 2^(m - m')·l + rowsum P, O = 2^(m - m')·O, and
/// O += P·V (micro-kernel). At the end O /= l and L = (m + log₂ l)·ln 2. A row whose every score is
/// hidden keeps m = -inf and l = 0: it outputs 0 and L = -inf.
@inlinable @inline(__always)
public func forwardItem<M: MultiplyAdd>(
    _ d: UnsafePointer<ForwardDescriptor>, item: Int, scratch: ForwardScratch, _ fma: M.Type
) {
    let d = d.pointee
    let (D, Dv, Bc, Nq, G) = (d.D, d.Dv, d.keyBlock, d.Nq, d.groupSize)
    var rest = item
    let split = rest % d.splits; rest /= d.splits
    let rowBlock = rest % d.rowBlocksPerGroup; rest /= d.rowBlocksPerGroup
    let kvh = rest % d.Hkv
    let b = rest / d.Hkv
    let rowRange = d.rows(ofBlock: rowBlock)
    let rows = rowRange.count
    let rowsPadded = (rows + 7) & ~7
    let splitKeys = (split * d.splitLength)..<min(d.Nk, (split + 1) * d.splitLength)

    // Scratch as ForwardScratchLayout lays it out for these rows; the visible key range of each row.
    let layout = ForwardScratchLayout(rows: rows, D: D, Dv: Dv, keyBlock: Bc)
    let statRows = layout.statRows
    let Qt = scratch.floats + layout.queries
    let S = scratch.floats + layout.scores
    let O = scratch.floats + layout.output
    let m = scratch.floats + layout.rowMax
    let mNew = scratch.floats + layout.newRowMax
    let alpha = scratch.floats + layout.rescale
    let l = scratch.floats + layout.rowSum
    let localKeys = scratch.floats + layout.packedKeys
    let rowLo = scratch.integers, rowHi = scratch.integers + rowsPadded

    let kvHead = b * d.Hkv + kvh
    let kBase = d.k + kvHead * d.Nk * D
    let vBase = d.v + kvHead * d.Nk * Dv

    // Load the query rows, scaled into base 2, and find the keys the block can see at all.
    var unionLo = Int.max, unionHi = Int.min
    for r in 0..<statRows {
        m[r] = -.infinity
        mNew[r] = -.infinity
        l[r] = 0
    }
    for r in 0..<rowsPadded {
        (O + r * Dv).update(repeating: 0, count: Dv)
        guard r < rows else {
            (Qt + r * D).update(repeating: 0, count: D)
            rowLo[r] = 0; rowHi[r] = 0
            continue
        }
        let rho = rowRange.lowerBound + r
        let (g, i) = (rho / Nq, rho % Nq)
        let qRow = d.q + ((b * d.Hq + kvh * G + g) * Nq + i) * D
        for c in 0..<D { Qt[r * D + c] = qRow[c] * d.scaleLog2 }
        let visible = d.visibleKeys(batch: b, query: i, within: splitKeys)
        rowLo[r] = visible.lowerBound; rowHi[r] = visible.upperBound
        if !visible.isEmpty {
            unionLo = min(unionLo, visible.lowerBound)
            unionHi = max(unionHi, visible.upperBound)
        }
    }

    // Padding rows must read as zero probabilities in O += P·V whichever path computes S.
    (S + rows * Bc).update(repeating: 0, count: (rowsPadded - rows) * Bc)

    if unionLo < unionHi {
        for t in (unionLo / Bc)...((unionHi - 1) / Bc) {
            let j0 = t * Bc
            let n = min(Bc, d.Nk - j0)
            let padded = (n + 31) & ~31
            // S = Q·Kᵀ for the whole tile: by the micro-kernel on keys packed transposed (once for the
            // whole call, or here), or, for a few rows without packed keys, by dot products.
            if d.packedKeys == nil && rowsPadded <= 8 {
                dotProductScores(Qt, rows: rows, D: D, keys: kBase + j0 * D, count: n, into: S, ldS: Bc, M.self)
            } else {
                let Kt: UnsafePointer<Float>
                if let packed = d.packedKeys {
                    Kt = packed + (kvHead * d.keyBlocks + t) * D * Bc
                } else {
                    packKeysTransposed(kBase + j0 * D, D: D, count: n, panel: keyPanelWidth(M.self), into: localKeys)
                    Kt = UnsafePointer(localKeys)
                }
                computeScores(Qt, rows: rowsPadded, D: D, packedKeys: Kt, count: n, into: S, ldS: Bc, M.self)
            }

            // Mask and row maxima m' = max(m, rowmax S).
            for r in 0..<rows {
                let Sr = S + r * Bc
                let lo = max(rowLo[r] - j0, 0), hi = min(rowHi[r] - j0, n)
                mNew[r] = m[r]
                guard lo < hi else { continue }
                for j in 0..<lo { Sr[j] = -.infinity }
                for j in hi..<padded { Sr[j] = -.infinity }
                if d.bias != nil || d.booleanMasks.count > 0 {
                    let rho = rowRange.lowerBound + r
                    applyBiasAndMasks(d, Sr, batch: b, head: kvh * G + rho / Nq, query: rho % Nq, keys: j0, range: lo..<hi)
                }
                var blockMax = load(Sr)
                for j in stride(from: 16, to: padded, by: 16) { blockMax = lanewiseMax(blockMax, load(Sr + j)) }
                mNew[r] = max(m[r], horizontalMax(blockMax))
            }
            // Rescale factors α = 2^(m - m'), sixteen rows at a time; α = 1 while a row has seen nothing
            // (m' = -inf), where the subtraction would give NaN.
            for r0 in stride(from: 0, to: rows, by: 16) {
                let old = load(m + r0), new = load(mNew + r0)
                let a = exp2Vector(old - new, M.self)
                store(a.replacing(with: 1, where: new .== -.infinity), alpha + r0)
            }
            // P = 2^(S - m'), l = α·l + rowsum P, O = α·O.
            for r in 0..<rows {
                let Sr = S + r * Bc
                let lo = max(rowLo[r] - j0, 0), hi = min(rowHi[r] - j0, n)
                if lo >= hi || mNew[r] == -.infinity {
                    Sr.update(repeating: 0, count: padded)
                    continue
                }
                let shift = SIMD16<Float>(repeating: mNew[r])
                var sum = SIMD16<Float>.zero
                for j in stride(from: 0, to: padded, by: 16) {
                    let p = exp2Vector(load(Sr + j) - shift, M.self)
                    store(p, Sr + j)
                    sum += p
                }
                l[r] = l[r] * alpha[r] + horizontalSum(sum)
                m[r] = mNew[r]
                if alpha[r] != 1 {
                    let Or = O + r * Dv, factor = alpha[r]
                    for c in 0..<Dv { Or[c] *= factor }
                }
            }

            // O += P·V.
            if rowsPadded <= 8 && Dv % 64 == 0 {
                let P = UnsafePointer(S), Vb = vBase + j0 * Dv
                for r0 in stride(from: 0, to: rows, by: 2) {
                    for c0 in stride(from: 0, to: Dv, by: Dv % 128 == 0 ? 128 : 64) {
                        if Dv % 128 == 0 {
                            tile2x128(P + r0 * Bc, Bc, Vb + c0, Dv, O + r0 * Dv + c0, Dv, n, M.self)
                        } else {
                            tile2x64(P + r0 * Bc, Bc, Vb + c0, Dv, O + r0 * Dv + c0, Dv, n, M.self)
                        }
                    }
                }
                continue
            }
            if M.registers == .narrow {
                accumulateProductNarrow(S, Bc, vBase + j0 * Dv, Dv, O, Dv, rows: rowsPadded, cols: Dv, k: n, M.self)
                continue
            }
            for r0 in stride(from: 0, to: rowsPadded, by: 8) {
                let P = UnsafePointer(S + r0 * Bc), Vb = vBase + j0 * Dv, Ob = O + r0 * Dv
                var c0 = 0
                while c0 + 32 <= Dv {
                    tile8x32(P, Bc, Vb + c0, Dv, Ob + c0, Dv, n, accumulate: true, M.self)
                    c0 += 32
                }
                if c0 + 16 <= Dv {
                    tile8x16(P, Bc, Vb + c0, Dv, Ob + c0, Dv, n, accumulate: true, M.self)
                    c0 += 16
                }
                if c0 < Dv { tile8xScalar(P, Bc, Vb + c0, Dv, Ob + c0, Dv, n, columns: Dv - c0) }
            }
        }
    }

    // Write out: normalized output and log-sum-exp (or this split's partial result).
    for r in 0..<rows {
        let rho = rowRange.lowerBound + r
        let (h, i) = (kvh * G + rho / Nq, rho % Nq)
        let row = (b * d.Hq + h) * Nq + i
        let live = l[r] > 0
        let inverse = live ? 1 / l[r] : 0
        let lse2 = live ? m[r] + log2f(l[r]) : -.infinity
        let destination: UnsafeMutablePointer<Float>
        if d.splits > 1, let partial = d.partialOutput, let partialL = d.partialLogSumExp {
            destination = partial + (row * d.splits + split) * Dv
            partialL[row * d.splits + split] = lse2
        } else {
            destination = d.o + row * Dv
            // In Double: the conversion from base 2 should not add to the error of m and l.
            d.lse?[row] = live ? Float((Double(m[r]) + log2(Double(l[r]))) * 0.693_147_180_559_945_3) : -.infinity
        }
        for c in 0..<Dv { destination[c] = O[r * Dv + c] * inverse }
    }

    if let weights = d.weights {
        writeWeights(d, weights, batch: b, kvHead: kvh, rows: rowRange, Qt: Qt, S: S, m: m, l: l,
                     rowLo: rowLo, rowHi: rowHi, localKeys: localKeys, M.self)
    }
}

/// Adds the bias (scaled into base 2) and hides keys that a boolean mask forbids, in `range` of a row.
@inlinable @inline(__always)
func applyBiasAndMasks(
    _ d: ForwardDescriptor, _ Sr: UnsafeMutablePointer<Float>, batch b: Int, head h: Int, query i: Int,
    keys j0: Int, range: Range<Int>
) {
    if let bias = d.bias {
        for j in range { Sr[j] += bias[b, h, i, j0 + j] * 1.442_695_04 }
    }
    for mask in d.booleanMasks {
        for j in range where !mask[b, h, i, j0 + j] { Sr[j] = -.infinity }
    }
}

/// The weights P = 2^(S₂ - L₂), recomputed block by block from the final row statistics
/// (only when the caller asked for them; a single key split is guaranteed then).
@inlinable @inline(__always)
func writeWeights<M: MultiplyAdd>(
    _ d: ForwardDescriptor, _ weights: UnsafeMutablePointer<Float>, batch b: Int, kvHead kvh: Int, rows rowRange: Range<Int>,
    Qt: UnsafeMutablePointer<Float>, S: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
    l: UnsafeMutablePointer<Float>, rowLo: UnsafeMutablePointer<Int>, rowHi: UnsafeMutablePointer<Int>,
    localKeys: UnsafeMutablePointer<Float>, _: M.Type
) {
    let (D, Bc, Nq, Nk, G) = (d.D, d.keyBlock, d.Nq, d.Nk, d.groupSize)
    let rows = rowRange.count, rowsPadded = (rows + 7) & ~7
    let kvHead = b * d.Hkv + kvh
    for t in 0..<d.keyBlocks {
        let j0 = t * Bc, n = min(Bc, Nk - j0)
        let Kt: UnsafePointer<Float>
        if let packed = d.packedKeys {
            Kt = packed + (kvHead * d.keyBlocks + t) * D * Bc
        } else {
            packKeysTransposed(d.k + (kvHead * Nk + j0) * D, D: D, count: n, panel: keyPanelWidth(M.self), into: localKeys)
            Kt = UnsafePointer(localKeys)
        }
        computeScores(Qt, rows: rowsPadded, D: D, packedKeys: Kt, count: n, into: S, ldS: Bc, M.self)
        for r in 0..<rows {
            let rho = rowRange.lowerBound + r
            let (h, i) = (kvh * G + rho / Nq, rho % Nq)
            let out = weights + ((b * d.Hq + h) * Nq + i) * Nk + j0
            let Sr = S + r * Bc
            let lo = max(rowLo[r] - j0, 0), hi = min(rowHi[r] - j0, n)
            out.update(repeating: 0, count: n)
            guard lo < hi, l[r] > 0 else { continue }
            applyBiasAndMasks(d, Sr, batch: b, head: h, query: i, keys: j0, range: lo..<hi)
            let lse2 = m[r] + log2f(l[r])
            for j in lo..<hi where Sr[j] > -.infinity { out[j] = exp2f(Sr[j] - lse2) }
        }
    }
}

/// Merges the key splits of rows `rows` (flat [B, Hq, Nq] indices): L = log₂ Σ 2^Lₛ and
/// O = Σ 2^(Lₛ - L) Oₛ; a row dead in every split stays 0 with L = -inf.
@inlinable @inline(__always)
public func mergeSplits(_ d: UnsafePointer<ForwardDescriptor>, rows: Range<Int>) {
    let d = d.pointee
    guard let partial = d.partialOutput, let partialL = d.partialLogSumExp else { return }
    let (Dv, splits) = (d.Dv, d.splits)
    for row in rows {
        let Ls = partialL + row * splits
        var maximum = -Float.infinity
        for s in 0..<splits { maximum = max(maximum, Ls[s]) }
        let out = d.o + row * Dv
        out.update(repeating: 0, count: Dv)
        guard maximum > -.infinity else {
            d.lse?[row] = -.infinity
            continue
        }
        var total: Float = 0
        for s in 0..<splits { total += exp2f(Ls[s] - maximum) }
        for s in 0..<splits where Ls[s] > -.infinity {
            let weight = exp2f(Ls[s] - maximum) / total
            let Os = partial + (row * splits + s) * Dv
            for c in 0..<Dv { out[c] += weight * Os[c] }
        }
        d.lse?[row] = Float((Double(maximum) + log2(Double(total))) * 0.693_147_180_559_945_3)
    }
}
