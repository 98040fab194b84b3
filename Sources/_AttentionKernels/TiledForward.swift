import Foundation

/// Per-worker scratch memory for the tiled forward kernel, sized by ``ForwardDescriptor/scratchFloats``.
public final class ForwardScratch: @unchecked Sendable {
    public let floats: UnsafeMutablePointer<Float>
    public let integers: UnsafeMutablePointer<Int>
    public let floatCount: Int

    public init(floats: Int, rows: Int) {
        floatCount = floats
        // One allocation: the integers after the floats, at the next 8-byte boundary.
        let integerOffset = (floats * MemoryLayout<Float>.stride + 7) & ~7
        let memory = UnsafeMutableRawPointer.allocate(byteCount: integerOffset + 2 * rows * MemoryLayout<Int>.stride, alignment: 64)
        self.floats = memory.bindMemory(to: Float.self, capacity: floats)
        self.integers = (memory + integerOffset).bindMemory(to: Int.self, capacity: 2 * rows)
    }

    deinit {
        UnsafeMutableRawPointer(floats).deallocate()
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
public func packKeysTransposed<E: KeyValueElement>(
    _ k: UnsafePointer<E>, D: Int, count n: Int, panel: Int, into kt: UnsafeMutablePointer<Float>
) {
    for p in 0..<((n + panel - 1) / panel) {
        let first = p * panel, width = min(panel, n - first)
        let destination = kt + first * D
        for c in 0..<D {
            let row = destination + c * panel
            for jj in 0..<width { row[jj] = k[(first + jj) * D + c].floatValue }
            for jj in width..<panel { row[jj] = 0 }
        }
    }
}

/// ``packKeysTransposed(_:D:count:panel:into:)`` for keys interleaved by sixteen positions
/// (``keyTilePositions``, a KV cache's layout), key `j` at row `firstRow + j` of `tiles`. A panel
/// that starts on a tile boundary and is full copies whole 16-key pieces of tile rows, widened as
/// vectors.
@inlinable @inline(__always)
public func packInterleavedKeysTransposed<E: KeyValueElement, M: MultiplyAdd>(
    _ tiles: UnsafePointer<E>, firstRow: Int, D: Int, count n: Int, panel: Int, into kt: UnsafeMutablePointer<Float>,
    _: M.Type
) {
    let tile = keyTilePositions
    for p in 0..<((n + panel - 1) / panel) {
        let first = p * panel, width = min(panel, n - first), row0 = firstRow + first
        let destination = kt + first * D
        if width == panel && panel % tile == 0 && row0 % tile == 0 {
            let source = tiles + row0 * D   // the panel's first tile: rows are whole tiles from here
            for c in 0..<D {
                for piece in 0..<(panel / tile) {
                    let widened = E.load16(source + piece * tile * D + c * tile, M.self)
                    UnsafeMutableRawPointer(destination + c * panel + piece * tile).storeBytes(of: widened, as: SIMD16<Float>.self)
                }
            }
            continue
        }
        for c in 0..<D {
            let row = destination + c * panel
            for jj in 0..<width { row[jj] = tiles[interleavedKeyIndex(row: row0 + jj, column: c, D: D)].floatValue }
            for jj in width..<panel { row[jj] = 0 }
        }
    }
}

/// `S = Qt · Kᵀ` for `rowsPadded` rows (a multiple of 8) against `n` keys packed in panels of
/// ``RegisterShape/keyPanelWidth``; writes columns up to the end of the last panel (at most `ldS`).
@inlinable @inline(__always)
func computeScores<M: MultiplyAdd>(
    _ Qt: UnsafePointer<Float>, rows rowsPadded: Int, D: Int, packedKeys Kt: UnsafePointer<Float>, count n: Int,
    into S: UnsafeMutablePointer<Float>, ldS: Int, _: M.Type
) {
    let panel = M.registers.keyPanelWidth
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
