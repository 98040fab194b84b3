/// A read-only tensor broadcast to `[B, H, Nq, Nk]` by strides (0 where a dimension repeats).
public struct BroadcastView<Element>: @unchecked Sendable {
    public var base: UnsafePointer<Element>
    public var strides: (Int, Int, Int, Int)

    @inlinable
    public init(base: UnsafePointer<Element>, strides: (Int, Int, Int, Int)) {
        self.base = base
        self.strides = strides
    }

    /// The element for batch `b`, head `h`, query `i`, key `j`.
    @inlinable @inline(__always)
    public subscript(b: Int, h: Int, i: Int, j: Int) -> Element {
        base[b * strides.0 + h * strides.1 + i * strides.2 + j * strides.3]
    }
}

/// Everything the tiled forward kernel needs for one call: pointers, extents, the mask in raw form,
/// and how the work is cut into items. Built and kept alive by the dispatcher in `Attention`.
///
/// Notation as in the FlashAttention papers: Q [B, Hq, Nq, D], K [B, Hkv, Nk, D], V [B, Hkv, Nk, Dv],
/// S = scores, P = probabilities, O = output, L = log-sum-exp. Query head h reads key/value head
/// h / G with G = Hq / Hkv. Inside the kernel scores are in base 2: S₂ = log₂(e) · (scale · q·k + bias).
///
/// Work items: for each (b, key/value head), the G·Nq query rows of its group (row ρ = g·Nq + i)
/// are cut into row blocks, and the keys into `splits` ranges. When `rowsAlignedToHeads` each row
/// block lies within one head (ceil(Nq / Br) blocks per head), otherwise blocks run across heads
/// (few queries per head, as in decoding), so one block of K/V serves several query heads.
public struct ForwardDescriptor: @unchecked Sendable {
    public var B = 0, Hq = 0, Hkv = 0, Nq = 0, Nk = 0, D = 0, Dv = 0
    /// scale · log₂(e).
    public var scaleLog2: Float = 0
    public var q: UnsafePointer<Float>
    /// Keys and values, in elements of `storage`: head `b·Hkv + g` starts `keyRowsPerHead` rows after
    /// the one before it, and batch element `b`'s first key at row `keyRowOffsets[b]` of its heads.
    public var k: UnsafeRawPointer
    public var v: UnsafeRawPointer
    public var o: UnsafeMutablePointer<Float>
    /// The element type of `k` and `v`.
    public var storage = KeyValueStorage.float32
    /// Rows between consecutive heads of K and V: `Nk` for packed tensors, the capacity for a KV cache.
    public var keyRowsPerHead = 0
    /// Per batch element, the row of its first key within each head (a sliding-window cache's window
    /// start), or nil for 0.
    public var keyRowOffsets: UnsafePointer<Int>? = nil
    /// Whether keys are interleaved by sixteen positions (``keyTilePositions``, a KV cache's layout;
    /// `keyRowsPerHead` is then a multiple of 16) rather than one row per key. Values are always rows.
    public var keysInterleaved = false
    /// Per batch element, added to both structural offsets (the bottom-right diagonal of a batch
    /// element with fewer keys than `Nk`), or nil for 0.
    public var diagonalShifts: UnsafePointer<Int>? = nil
    /// Natural-log log-sum-exp [B, Hq, Nq], or nil.
    public var lse: UnsafeMutablePointer<Float>? = nil
    /// Weights [B, Hq, Nq, Nk], or nil (then no Nq × Nk buffer exists anywhere).
    public var weights: UnsafeMutablePointer<Float>? = nil

    /// Query i sees keys in [i + lowerOffset, i + upperOffset] (before key lengths); ±unbounded as
    /// large sentinels that cannot overflow when added to an index.
    public var lowerOffset = -unbounded, upperOffset = unbounded
    /// Real keys per batch element, or nil.
    public var keyLengths: UnsafePointer<Int>? = nil
    /// Boolean masks (true = may attend), all of which must allow a key.
    public var booleanMasks: UnsafeBufferPointer<BroadcastView<Bool>> = UnsafeBufferPointer(start: nil, count: 0)
    /// Additive bias in natural units, or nil.
    public var bias: BroadcastView<Float>? = nil

    /// Br and Bc: query rows per block, keys per block (a multiple of 32).
    public var rowBlock = 64, keyBlock = 128
    public var rowsAlignedToHeads = true
    /// Key ranges per row block; `splitLength` is a multiple of `keyBlock`.
    public var splits = 1, splitLength = 0
    /// K packed transposed per key block, [B·Hkv][keyBlocks][D][Bc], or nil to pack per block on the fly.
    public var packedKeys: UnsafePointer<Float>? = nil
    /// With splits > 1: each split's normalized output [B, Hq, Nq, splits, Dv] and base-2 log-sum-exp
    /// [B, Hq, Nq, splits], merged afterwards.
    public var partialOutput: UnsafeMutablePointer<Float>? = nil
    public var partialLogSumExp: UnsafeMutablePointer<Float>? = nil

    public static let unbounded = Int.max / 4

    @inlinable
    public init(q: UnsafePointer<Float>, k: UnsafeRawPointer, v: UnsafeRawPointer, o: UnsafeMutablePointer<Float>,
                storage: KeyValueStorage = .float32) {
        self.q = q
        self.k = k
        self.v = v
        self.o = o
        self.storage = storage
    }

    /// K and V as Float (the backward pass, which reads only Float32 tensors).
    @inlinable public var floatKeys: UnsafePointer<Float> { k.assumingMemoryBound(to: Float.self) }
    @inlinable public var floatValues: UnsafePointer<Float> { v.assumingMemoryBound(to: Float.self) }

    /// The first key of batch element `b`'s key/value head `kvh`, in bytes from `k` (for `v`: the
    /// same with `Dv`).
    @inlinable @inline(__always)
    public func headOffset(batch b: Int, head kvh: Int, rowLength: Int) -> Int {
        let rows = (b * Hkv + kvh) * keyRowsPerHead + (keyRowOffsets?[b] ?? 0)
        return rows * rowLength * storage.byteCount
    }

    /// Where batch element `b`'s keys of key/value head `kvh` start, in bytes from `k`, and the row
    /// of its first key there: 0 for row-major keys (the offset points at it), the lane of the first
    /// key within its tile for interleaved keys (the offset points at the tile).
    @inlinable @inline(__always)
    public func keyOffset(batch b: Int, head kvh: Int) -> (bytes: Int, firstRow: Int) {
        guard keysInterleaved else { return (headOffset(batch: b, head: kvh, rowLength: D), 0) }
        let row = (b * Hkv + kvh) * keyRowsPerHead + (keyRowOffsets?[b] ?? 0)
        let lane = row % keyTilePositions
        return ((row - lane) * D * storage.byteCount, lane)
    }

    @inlinable public var groupSize: Int { Hq / Hkv }
    @inlinable public var keyBlocks: Int { (Nk + keyBlock - 1) / keyBlock }

    /// Row blocks per (batch, key/value head).
    @inlinable public var rowBlocksPerGroup: Int {
        Self.rowBlocksPerGroup(queries: Nq, groupSize: groupSize, rowBlock: rowBlock, rowsAlignedToHeads: rowsAlignedToHeads)
    }

    /// Row blocks per (batch, key/value head) for a shape and tiling: the one formula the kernel and
    /// the planner share.
    @inlinable
    public static func rowBlocksPerGroup(queries Nq: Int, groupSize G: Int, rowBlock: Int, rowsAlignedToHeads: Bool) -> Int {
        rowsAlignedToHeads ? G * ((Nq + rowBlock - 1) / rowBlock) : (G * Nq + rowBlock - 1) / rowBlock
    }

    /// The number of independent work items.
    @inlinable public var items: Int { B * Hkv * rowBlocksPerGroup * splits }

    /// The rows ρ (= g·Nq + i within the group) of row block `block`.
    @inlinable @inline(__always)
    public func rows(ofBlock block: Int) -> Range<Int> {
        if rowsAlignedToHeads {
            let perHead = (Nq + rowBlock - 1) / rowBlock
            let g = block / perHead, start = (block % perHead) * rowBlock
            return (g * Nq + start)..<(g * Nq + min(Nq, start + rowBlock))
        }
        return (block * rowBlock)..<min(groupSize * Nq, (block + 1) * rowBlock)
    }

    /// The keys of query `i` in batch element `b` allowed by the structural masks, within `keys`.
    @inlinable @inline(__always)
    public func visibleKeys(batch b: Int, query i: Int, within keys: Range<Int>) -> Range<Int> {
        let shift = diagonalShifts?[b] ?? 0
        let lower = max(keys.lowerBound, i + lowerOffset + shift)
        var upper = min(keys.upperBound, i + upperOffset + shift + 1)
        if let keyLengths { upper = min(upper, keyLengths[b]) }
        return lower < upper ? lower..<upper : 0..<0
    }

    /// Floats of scratch space one worker needs.
    @inlinable public var scratchFloats: Int {
        ForwardScratchLayout(rows: rowBlock, D: D, Dv: Dv, keyBlock: keyBlock, storage: storage).floats
    }
}

/// Where each buffer of one worker's forward scratch lies, in floats from its start. The same value
/// sizes the scratch (for a full row block) and carves it (for the rows of one item), so the two
/// cannot disagree.
///
/// | buffer | extent |
/// |--------|--------|
/// | Q tile, scaled into base 2 | `rows × D` |
/// | S, then P | `rows × Bc` |
/// | O accumulator | `rows × Dv` |
/// | m, m', α, l (row statistics) | `statRows` each |
/// | a key block packed transposed, when keys are not packed once | `D × Bc` |
/// | a value block widened to Float, when values are stored in 16 bits | `Bc × Dv` |
public struct ForwardScratchLayout: Equatable, Sendable {
    /// Rows padded to the micro-kernel's 8; row statistics padded to 16 (whole SIMD16 vectors).
    public let rows: Int, statRows: Int
    public let D: Int, Dv: Int, keyBlock: Int
    public let storage: KeyValueStorage

    @inlinable
    public init(rows: Int, D: Int, Dv: Int, keyBlock: Int, storage: KeyValueStorage = .float32) {
        self.rows = (rows + 7) & ~7
        self.statRows = (self.rows + 15) & ~15
        (self.D, self.Dv, self.keyBlock, self.storage) = (D, Dv, keyBlock, storage)
    }

    @inlinable public var queries: Int { 0 }
    @inlinable public var scores: Int { queries + rows * D }
    @inlinable public var output: Int { scores + rows * keyBlock }
    @inlinable public var rowMax: Int { output + rows * Dv }
    @inlinable public var newRowMax: Int { rowMax + statRows }
    @inlinable public var rescale: Int { newRowMax + statRows }
    @inlinable public var rowSum: Int { rescale + statRows }
    @inlinable public var packedKeys: Int { rowSum + statRows }
    @inlinable public var widenedValues: Int { packedKeys + D * keyBlock }
    /// The whole scratch.
    @inlinable public var floats: Int { widenedValues + (storage == .float32 ? 0 : keyBlock * Dv) }
}
