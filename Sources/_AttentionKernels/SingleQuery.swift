/// Attention of one new query per head over a KV cache, for a decoding step: per key/value head, its
/// group of query heads' scores over the interleaved keys (``interleavedKeyScores(_:rows:D:tiles:tileCount:firstColumn:count:into:ldS:prefetch:_:)``),
/// their softmax over every visible key at once, and the values streamed once for the whole group
/// (``tile4x64Decode(_:_:_:_:_:_:_:prefetching:_:)``). One pass over the keys and one over the
/// values, without the tiled forward's key blocks, running maxima and per-item bookkeeping: for the
/// few dozen to few hundred keys of a decoding step those cost more than the products (the tiled
/// path spent under half of a 9-head, 48-key call in its kernels: AMD Zen 4, `perf`).
///
/// The same semantics as the tiled forward over a cache: scores `q·k · scale`, exponentials in base 2
/// (``exp2Vector(_:_:)``), a row whose scores are all -inf (or that sees no key) outputs zeros.

/// One call's pointers and extents: queries `[B, Hq, D]`, keys interleaved by sixteen positions
/// (`[B·Hkv, rowsPerHead / 16, D, 16]`, a ``KVCache``'s layout) and values `[B·Hkv, rowsPerHead, Dv]` in
/// `storage`, outputs `[B, Hq, Dv]`; batch element `b` sees rows `firstRows[b] ..< firstRows[b] + counts[b]`
/// of each of its heads.
@frozen
public struct SingleQueryDescriptor {
    public var query: UnsafePointer<Float>
    public var keys: UnsafeRawPointer, values: UnsafeRawPointer
    public var output: UnsafeMutablePointer<Float>
    public var firstRows: UnsafePointer<Int>, counts: UnsafePointer<Int>
    public var Hq: Int, Hkv: Int, D: Int, Dv: Int, rowsPerHead: Int
    /// The softmax scale times log2(e).
    public var scaleLog2: Float
    public var storage: KeyValueStorage

    @inlinable
    public init(query: UnsafePointer<Float>, keys: UnsafeRawPointer, values: UnsafeRawPointer, output: UnsafeMutablePointer<Float>,
                firstRows: UnsafePointer<Int>, counts: UnsafePointer<Int>, Hq: Int, Hkv: Int, D: Int, Dv: Int, rowsPerHead: Int,
                scaleLog2: Float, storage: KeyValueStorage) {
        (self.query, self.keys, self.values, self.output) = (query, keys, values, output)
        (self.firstRows, self.counts) = (firstRows, counts)
        (self.Hq, self.Hkv, self.D, self.Dv, self.rowsPerHead) = (Hq, Hkv, D, Dv, rowsPerHead)
        (self.scaleLog2, self.storage) = (scaleLog2, storage)
    }

    /// Whether these kernels take value heads of `Dv`: whole pieces of sixteen.
    @inlinable public static func supports(valueHeadDimension Dv: Int) -> Bool { Dv % 16 == 0 }

    /// Floats of scratch one item needs for `keys` visible keys: the group's scaled queries, scores,
    /// unnormalized outputs and row sums, in groups of four rows.
    @inlinable public static func scratch(groupSize G: Int, D: Int, Dv: Int, keys n: Int) -> Int {
        (G + 3) / 4 * 4 * (D + (n + 15) / 16 * 16 + Dv + 1)
    }
}

/// The outputs of key/value head `pair` (`b·Hkv + h`): its `Hq / Hkv` query heads. `scratch` holds
/// ``SingleQueryDescriptor/scratch(groupSize:D:Dv:keys:)`` Floats for the batch element's count.
@inlinable @inline(__always)
public func singleQueryItem<M: MultiplyAdd>(_ descriptor: UnsafePointer<SingleQueryDescriptor>, pair: Int,
                                            scratch: UnsafeMutablePointer<Float>, _: M.Type) {
    switch descriptor.pointee.storage {
    case .float32: singleQueryItem(descriptor.pointee, pair: pair, scratch: scratch, Float.self, M.self)
    case .float16: singleQueryItem(descriptor.pointee, pair: pair, scratch: scratch, HalfBits.self, M.self)
    case .bfloat16: singleQueryItem(descriptor.pointee, pair: pair, scratch: scratch, BFloat16Bits.self, M.self)
    }
}

@inlinable @inline(__always)
func singleQueryItem<E: KeyValueElement, M: MultiplyAdd>(_ d: SingleQueryDescriptor, pair: Int, scratch: UnsafeMutablePointer<Float>,
                                                         _: E.Type, _: M.Type) {
    let (D, Dv) = (d.D, d.Dv)
    let G = d.Hq / d.Hkv, b = pair / d.Hkv, n = d.counts[b]
    // Query heads h·G ..< (h + 1)·G of element b are rows pair·G ... of [B·Hq, ·].
    let output = d.output + pair * G * Dv
    guard n > 0 else {
        output.update(repeating: 0, count: G * Dv)
        return
    }
    let rows = (G + 3) / 4 * 4, ldS = (n + 15) / 16 * 16
    let Q = scratch, S = Q + rows * D, O = S + rows * ldS, L = O + rows * Dv
    for r in 0..<rows {
        let scaled = Q + r * D
        guard r < G else {
            scaled.update(repeating: 0, count: D)
            continue
        }
        let query = d.query + (pair * G + r) * D, factor = d.scaleLog2
        for c in 0..<D { scaled[c] = query[c] * factor }
    }
    // The visible rows of this head, and the tiles of keys they fall in.
    let first = pair * d.rowsPerHead + d.firstRows[b]
    let firstTile = first / keyTilePositions, tiles = (first + n - 1) / keyTilePositions + 1 - firstTile
    let keys = d.keys.assumingMemoryBound(to: E.self) + firstTile * keyTilePositions * D
    let values = d.values.assumingMemoryBound(to: E.self) + first * Dv
    // Two tiles at a time, each pair asking for the value rows of its keys: the values arrive while
    // the scores run.
    var t = 0
    while t < tiles {
        let step = min(2, tiles - t), column = (firstTile + t) * keyTilePositions - first
        let lo = max(0, column), hi = min(n, column + step * keyTilePositions)
        let ahead = PrefetchRanges(values + lo * Dv, bytes: (hi - lo) * Dv * MemoryLayout<E>.stride, values, bytes: 0)
        interleavedKeyScores(Q, rows: rows, D: D, tiles: keys + t * keyTilePositions * D, tileCount: step, firstColumn: column,
                             count: n, into: S, ldS: ldS, prefetch: ahead, M.self)
        t += step
    }
    // Softmax numerators in place of the scores; padding rows and columns weigh nothing.
    for r in 0..<rows {
        let row = S + r * ldS
        L[r] = 0
        guard r < G else {
            row.update(repeating: 0, count: ldS)
            continue
        }
        for j in n..<ldS { row[j] = -.infinity }
        var largest = load(row)
        for j in stride(from: 16, to: ldS, by: 16) { largest = lanewiseMax(largest, load(row + j)) }
        let m = horizontalMax(largest)
        guard m != -.infinity else {
            row.update(repeating: 0, count: ldS)
            continue
        }
        let shift = SIMD16<Float>(repeating: m)
        var sum = SIMD16<Float>.zero
        for j in stride(from: 0, to: ldS, by: 16) {
            let p = exp2Vector(load(row + j) - shift, M.self)
            store(p, row + j)
            sum += p
        }
        L[r] = horizontalSum(sum)
    }
    O.update(repeating: 0, count: rows * Dv)
    for r0 in stride(from: 0, to: rows, by: 4) {
        let P = UnsafePointer(S + r0 * ldS), Or = O + r0 * Dv
        if M.registers == .wide && Dv % 64 == 0 {
            for c0 in stride(from: 0, to: Dv, by: 64) {
                tile4x64Decode(P, ldS, values + c0, Dv, Or + c0, Dv, n, prefetching: 0, M.self)
            }
        } else {
            for c0 in stride(from: 0, to: Dv, by: 16) {
                tile4x16Decode(P, ldS, values + c0, Dv, Or + c0, Dv, n, prefetching: 0, M.self)
            }
        }
    }
    for r in 0..<G {
        let inverse = L[r] > 0 ? 1 / L[r] : 0
        let source = O + r * Dv, destination = output + r * Dv
        for c in 0..<Dv { destination[c] = source[c] * inverse }
    }
}
