import _AttentionKernels
import _KernelIntrinsics

/// The keys and values of one attention layer, kept across the steps of autoregressive decoding.
///
/// A decoder computes the key and value of each new token once, appends them, and lets every later
/// query attend to everything appended so far:
///
/// ```swift
/// var cache = try KVCache(keyValueHeads: 8, headDimension: 128, capacity: 4096, storage: .float16)
/// try cache.append(key: promptKeys, value: promptValues)               // [1, 8, promptLength, 128]
/// var out = try scaledDotProductAttention(query: promptQueries, cache: cache, mask: .causal)
/// for _ in 0..<steps {
///     let (q, k, v) = project(next)                                    // [1, 32, 1, 128], [1, 8, 1, 128] ×2
///     try cache.append(key: k, value: v)
///     out = try scaledDotProductAttention(query: q, cache: cache)      // the new query sees every key
/// }
/// ```
///
/// Layout: keys `[B, Hkv, capacity, D]` and values `[B, Hkv, capacity, Dv]`, in the ``Storage`` chosen
/// when the cache is made. The keys of each head are interleaved by sixteen positions (`[capacity / 16,
/// D, 16]`, capacity rounded up to a multiple of 16), so that a decoding step's dot products
/// accumulate sixteen keys in the lanes of one vector; ``keys`` reads them back in the usual order.
/// `Float16` and bfloat16 halve the memory and the bytes each decoding step reads; the kernels widen
/// them to `Float` in registers and accumulate in `Float`. Appending rounds each `Float` to the nearest
/// stored value (ties to even): relative error at most 2⁻¹¹ for `float16` (which also overflows to
/// infinity beyond 65504, and loses precision below 6.1e-5), 2⁻⁸ for `bfloat16` (the range of `Float`).
///
/// **Batches of different lengths.** Each batch element has its own length (``lengths``): appending a
/// chunk writes each element's positions after its own last one, and `validLengths` says how many
/// positions of a left-padded chunk are real for each element. Attention hides each element's keys
/// past its length and aligns its queries with its own last key, so sequences of different lengths
/// decode together.
///
/// **Sliding window.** With `slidingWindow: W` the cache keeps only the most recent `capacity`
/// positions (a ring buffer; `capacity ≥ W`) and attention over it equals
/// `.causal && .slidingWindow(left: W - 1, right: 0)` over the whole history. Memory is O(capacity),
/// however many steps are decoded. A chunk of `n` positions needs `capacity ≥ W + n - 1`, so that the
/// first query of the chunk still finds its window; decoding one step at a time needs `capacity = W`.
/// (Each position is stored twice, at `p mod capacity` and `p mod capacity + capacity`, so that the
/// window is always one contiguous run of rows: 2 × capacity rows of memory, rounded up to a multiple
/// of 16.)
///
/// `KVCache` is a value: copies share storage until one of them is appended to (copy on write).
/// Every mutating method checks everything first and throws ``AttentionError`` naming the argument
/// and the shapes; the cache is then exactly as it was.
public struct KVCache: Sendable {
    /// How keys and values are stored.
    public enum Storage: String, Sendable, CaseIterable {
        /// IEEE single precision: exact.
        case float32
        /// IEEE half precision (binary16): 2 bytes, 11 significant bits, finite up to 65504.
        case float16
        /// bfloat16: 2 bytes, 8 significant bits, the exponent range of `Float`.
        case bfloat16

        /// Bytes per stored element.
        public var bytesPerElement: Int { kernelStorage.byteCount }

        var kernelStorage: KeyValueStorage {
            switch self {
            case .float32: return .float32
            case .float16: return .float16
            case .bfloat16: return .bfloat16
            }
        }
    }

    /// `B`, `Hkv`, `D` and `Dv`.
    public let batchSize: Int, keyValueHeads: Int, headDimension: Int, valueHeadDimension: Int
    /// Positions the cache holds per batch element.
    public let capacity: Int
    /// How keys and values are stored, chosen when the cache is made.
    public let storage: Storage
    /// `W` for a sliding-window cache, nil for a cache of the whole history.
    public let slidingWindow: Int?
    /// Positions appended so far for each batch element, over the whole history (for a sliding
    /// window, including positions no longer held).
    public private(set) var lengths: [Int]
    private(set) var buffer: Buffer

    /// The longest batch element's length: the position of the next token when all lengths agree.
    public var count: Int { lengths.max() ?? 0 }

    /// Bytes of keys and values the cache allocated.
    public var allocatedBytes: Int { buffer.keyByteCount + buffer.valueByteCount }

    /// Rows of storage per head: `capacity`, or twice that for a sliding window (see above), rounded
    /// up to whole tiles of interleaved keys.
    var rowsPerHead: Int { Self.rowsPerHead(capacity: capacity, slidingWindow: slidingWindow) }

    static func rowsPerHead(capacity: Int, slidingWindow: Int?) -> Int {
        let rows = slidingWindow == nil ? capacity : 2 * capacity
        return (rows + keyTilePositions - 1) / keyTilePositions * keyTilePositions
    }

    /// Creates an empty cache.
    ///
    /// - Parameters:
    ///   - batchSize: `B`, sequences decoded together; default 1.
    ///   - keyValueHeads: `Hkv`; queries may have any multiple of it (grouped-query attention).
    ///   - headDimension: `D` of queries and keys.
    ///   - valueHeadDimension: `Dv`; default `D`.
    ///   - capacity: positions held per batch element.
    ///   - storage: how keys and values are stored; default `.float32`.
    ///   - slidingWindow: `W`, to keep only recent positions (see above); `1...capacity`.
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for an extent below 1, a window
    ///   outside `1...capacity`, or a size beyond what can be addressed.
    public init(
        batchSize: Int = 1, keyValueHeads: Int, headDimension: Int, valueHeadDimension: Int? = nil, capacity: Int,
        storage: Storage = .float32, slidingWindow: Int? = nil
    ) throws {
        let Dv = valueHeadDimension ?? headDimension
        for (name, value) in [("batchSize", batchSize), ("keyValueHeads", keyValueHeads), ("headDimension", headDimension),
                              ("valueHeadDimension", Dv), ("capacity", capacity)] where value < 1 {
            throw AttentionError.invalidArgument(argument: name, reason: "must be at least 1, got \(value)")
        }
        if let window = slidingWindow, !(1...capacity).contains(window) {
            throw AttentionError.invalidArgument(
                argument: "slidingWindow", reason: "must be in 1...\(capacity) (the capacity), got \(window)")
        }
        func bytes(_ dimension: Int) throws -> Int {
            let tooLarge = AttentionError.invalidArgument(
                argument: "capacity",
                reason: "\(batchSize) × \(keyValueHeads) heads × \(capacity) positions × \(dimension) elements × \(storage.bytesPerElement) bytes is beyond what can be addressed or this machine's memory")
            // A sliding window's 2 × capacity rows, rounded up to whole tiles, must not overflow either.
            guard capacity <= (Int.max - keyTilePositions) / 2 else { throw tooLarge }
            var total = 1
            for factor in [Self.rowsPerHead(capacity: capacity, slidingWindow: slidingWindow), batchSize, keyValueHeads,
                           dimension, storage.bytesPerElement] {
                let (product, overflow) = total.multipliedReportingOverflow(by: factor)
                guard !overflow else { throw tooLarge }
                total = product
            }
            guard total <= physicalMemoryBytes else { throw tooLarge }
            return total
        }
        // Sized before anything is allocated, the lengths included: each extent is the caller's.
        let (keyBytes, valueBytes) = (try bytes(headDimension), try bytes(Dv))
        self.batchSize = batchSize
        self.keyValueHeads = keyValueHeads
        self.headDimension = headDimension
        self.valueHeadDimension = Dv
        self.capacity = capacity
        self.storage = storage
        self.slidingWindow = slidingWindow
        self.lengths = Array(repeating: 0, count: batchSize)
        self.buffer = Buffer(keyBytes: keyBytes, valueBytes: valueBytes)
    }

    /// Positions batch element `b` holds now: its length, or at most `capacity` with a sliding window.
    func held(_ b: Int) -> Int { min(lengths[b], capacity) }

    /// The row (within each head) of batch element `b`'s first held position.
    func firstRow(_ b: Int) -> Int { slidingWindow == nil ? 0 : (lengths[b] - held(b)) % capacity }

    /// The largest chunk a sliding-window cache can append (or attend with) at once,
    /// `capacity − W + 1`; nil for a cache of the whole history.
    public var largestChunk: Int? { slidingWindow.map { capacity - $0 + 1 } }

    // MARK: appending

    /// Asks the CPU to bring close the memory that the next ``append(key:value:validLengths:)`` of
    /// `count` positions and the attention after it will touch: the cache lines the new keys and
    /// values are stored into (for writing), then the keys and values held, up to `readBudget` bytes
    /// in all (the nearest cache level beyond L1 holds them). Hints only: nothing is checked or changed,
    /// and a cache about to overflow is not an error here.
    ///
    /// A decoding step calls it for a layer's cache before computing that layer's keys and values,
    /// so that the fetches overlap the projections' reads. Without it, each append waited for the
    /// `D` cache lines one position's key is spread over in the interleaved layout (lines a step's
    /// weights had evicted), and attention over a short history waited for its keys and values one
    /// miss at a time on a single thread.
    public func prefetch(appending count: Int = 1, readBudget: Int = 256 << 10) {
        let (H, D, Dv, rows, size) = (keyValueHeads, headDimension, valueHeadDimension, rowsPerHead, storage.bytesPerElement)
        let keys = UnsafeRawPointer(buffer.keys), values = UnsafeRawPointer(buffer.values)
        for b in 0..<batchSize {
            for p in 0..<max(0, min(count, capacity)) {
                let position = lengths[b] + p
                let row = slidingWindow == nil ? position : position % capacity
                guard row < capacity else { break }
                for h in 0..<H {
                    let destination = (b * H + h) * rows + row
                    // One position's key: an element in each of `D` rows of its tile.
                    for c in 0..<D {
                        attention_prefetch_for_writing(keys + interleavedKeyIndex(row: destination, column: c, D: D) * size)
                    }
                    Self.prefetchLines(values, bytes: (destination * Dv * size)..<((destination + 1) * Dv * size), forWriting: true)
                }
            }
        }
        // The held rows of each head from its first, up to the budget: their tiles of keys, and
        // their values.
        let rowBytes = (D + Dv) * size * batchSize * H
        let heldRows = min((0..<batchSize).map(held).max() ?? 0, max(0, readBudget) / max(1, rowBytes))
        guard heldRows > 0 else { return }
        for b in 0..<batchSize {
            for h in 0..<H {
                let start = (b * H + h) * rows + firstRow(b)
                let (firstTile, endTile) = (start / keyTilePositions, (start + heldRows - 1) / keyTilePositions + 1)
                let tileBytes = keyTilePositions * D * size
                Self.prefetchLines(keys, bytes: (firstTile * tileBytes)..<(endTile * tileBytes), forWriting: false)
                Self.prefetchLines(values, bytes: (start * Dv * size)..<((start + heldRows) * Dv * size), forWriting: false)
            }
        }
    }

    /// Prefetches every cache line (of 64 bytes) that bytes `bytes` from `base` fall in.
    private static func prefetchLines(_ base: UnsafeRawPointer, bytes: Range<Int>, forWriting: Bool) {
        guard !bytes.isEmpty else { return }
        let first = base + bytes.lowerBound, misalignment = Int(bitPattern: first) & 63
        for offset in stride(from: -misalignment, to: bytes.count, by: 64) {
            if forWriting { attention_prefetch_for_writing(first + offset) } else { attention_prefetch_l2(first + offset) }
        }
    }

    /// Appends the keys and values of `n` new positions to every batch element, after each one's
    /// last position.
    ///
    /// - Parameters:
    ///   - key: `[B, Hkv, n, D]` (or `[Hkv, n, D]`, `[n, D]` when the leading extents are 1).
    ///   - value: `[B, Hkv, n, Dv]`, likewise.
    ///   - validLengths: for a padded chunk, how many of the `n` positions are real for each batch
    ///     element (`0...n`, one per element): its *last* `validLengths[b]`, padded on the left as
    ///     batched generation pads prompts, so that the real queries of the same chunk are aligned
    ///     bottom-right with the real keys. Default: all `n`.
    /// - Throws: ``AttentionError`` when a shape does not match the cache's, the chunk is empty,
    ///   `validLengths` is malformed, or a batch element would pass the capacity (for a sliding window:
    ///   the chunk is longer than `capacity - W + 1`). Nothing is appended then.
    public mutating func append(key: Tensor<Float>, value: Tensor<Float>, validLengths: [Int]? = nil) throws {
        let n = try checkChunk(key, argument: "key", dimension: headDimension)
        let nv = try checkChunk(value, argument: "value", dimension: valueHeadDimension)
        guard n == nv else {
            throw AttentionError.shapeMismatch(
                argument: "value", shape: value.shape, other: "key", otherShape: key.shape,
                reason: "key and value must hold the same number of positions (\(n) and \(nv))")
        }
        if let validLengths {
            guard validLengths.count == batchSize else {
                throw AttentionError.invalidArgument(
                    argument: "validLengths", reason: "\(validLengths.count) lengths given for a batch of \(batchSize) (one per batch element)")
            }
            if let bad = validLengths.firstIndex(where: { !(0...n).contains($0) }) {
                throw AttentionError.invalidArgument(
                    argument: "validLengths",
                    reason: "length \(validLengths[bad]) of batch element \(bad) is outside 0...\(n) (the positions in the chunk)")
            }
        }
        // Batch element b's new positions (no array of them: a decoding step appends to every layer).
        let counts = { (b: Int) in validLengths?[b] ?? n }
        for b in 0..<batchSize {
            if let largest = largestChunk, let window = slidingWindow, counts(b) > largest {
                throw AttentionError.invalidShape(
                    argument: "key", shape: key.shape,
                    reason: "a chunk of \(counts(b)) positions does not fit a sliding-window cache of capacity \(capacity) and window \(window): the first query's window would be overwritten; append at most \(largest) at once, or make the capacity at least \(window + counts(b) - 1)")
            }
            if slidingWindow == nil, lengths[b] + counts(b) > capacity {
                throw AttentionError.invalidShape(
                    argument: "key", shape: key.shape,
                    reason: "appending \(counts(b)) positions to batch element \(b), which holds \(lengths[b]), passes the capacity \(capacity)")
            }
        }
        if !isKnownUniquelyReferenced(&buffer) { buffer = buffer.copy() }
        let (B, H, D, Dv) = (batchSize, keyValueHeads, headDimension, valueHeadDimension)
        key.scalars.withUnsafeBufferPointer { k in
            value.scalars.withUnsafeBufferPointer { v in
                for b in 0..<B {
                    for h in 0..<H {
                        for p in 0..<counts(b) {
                            let position = lengths[b] + p
                            let source = (b * H + h) * n + (n - counts(b)) + p
                            // A sliding window stores each position twice (see above).
                            for copy in 0..<(slidingWindow == nil ? 1 : 2) {
                                let row = slidingWindow == nil ? position : position % capacity + copy * capacity
                                let destination = (b * H + h) * rowsPerHead + row
                                buffer.storeKey(k, from: source * D, count: D, row: destination, storage)
                                buffer.storeValue(v, from: source * Dv, count: Dv, at: destination * Dv, storage)
                            }
                        }
                    }
                }
            }
        }
        for b in 0..<B { lengths[b] += counts(b) }
    }

    /// Validates a chunk's shape against the cache and returns its number of positions.
    private func checkChunk(_ tensor: Tensor<Float>, argument: String, dimension: Int) throws -> Int {
        let shape = tensor.shape
        guard (2...4).contains(shape.count) else {
            throw AttentionError.invalidShape(
                argument: argument, shape: shape, reason: "expected [B, Hkv, n, D] (or [Hkv, n, D], [n, D])")
        }
        // [B, Hkv, n, D] with the missing leading extents 1, read without building arrays (a decoding
        // step appends to every layer's cache).
        let rank = shape.count
        let (b, h, n, d) = (rank == 4 ? shape[0] : 1, rank >= 3 ? shape[rank - 3] : 1, shape[rank - 2], shape[rank - 1])
        guard n >= 1 else { throw AttentionError.emptySequence(argument: argument, shape: shape) }
        if (b, h, d) != (batchSize, keyValueHeads, dimension) {
            let full = [b, h, n, d], expected = [batchSize, keyValueHeads, n, dimension]
            let names = ["batch size", "key/value heads", "", argument == "key" ? "head dimension" : "value head dimension"]
            let axis = (0..<4).first { full[$0] != expected[$0] } ?? 0
            throw AttentionError.invalidShape(
                argument: argument, shape: shape,
                reason: "the cache holds [B, Hkv, n, \(argument == "key" ? "D" : "Dv")] = \(expected.shapeDescription) with n the positions appended; its \(names[axis]) is \(expected[axis]), not \(full[axis])")
        }
        return n
    }

    // MARK: resizing

    /// A copy with room for `capacity` positions per batch element: the same lengths, storage and
    /// stored keys and values, bit for bit, so attention over it gives the same results. For a cache
    /// that grows with its sequence (a server's slot: ``capacity`` sized to what the sequence holds
    /// rather than to the longest it may get) or shrinks back. A cache spreads its heads `capacity`
    /// positions apart: a few positions in a large cache are scattered over memory, which made a
    /// batched decoding step's attention 40% slower on an AMD Zen 4 (eight sequences of about 40
    /// positions, caches of 4,096 against 64).
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for a sliding-window cache (its
    ///   ring keeps the capacity it was made with), a capacity below the positions held (``count``),
    ///   or one beyond what ``init(batchSize:keyValueHeads:headDimension:valueHeadDimension:capacity:storage:slidingWindow:)`` accepts.
    public func resized(capacity newCapacity: Int) throws -> KVCache {
        guard slidingWindow == nil else {
            throw AttentionError.invalidArgument(argument: "capacity", reason: "a sliding-window cache keeps its capacity of \(capacity) positions")
        }
        guard newCapacity >= count else {
            throw AttentionError.invalidArgument(argument: "capacity", reason: "must hold the \(count) positions appended, got \(newCapacity)")
        }
        var copy = try KVCache(batchSize: batchSize, keyValueHeads: keyValueHeads, headDimension: headDimension,
                               valueHeadDimension: valueHeadDimension, capacity: newCapacity, storage: storage)
        copy.lengths = lengths
        // Each head's first rows, whole tiles of interleaved keys: the same bytes at the new head stride.
        let rows = (count + keyTilePositions - 1) / keyTilePositions * keyTilePositions
        let size = storage.bytesPerElement, (from, to) = (rowsPerHead, copy.rowsPerHead)
        for head in 0..<(batchSize * keyValueHeads) where rows > 0 {
            (copy.buffer.keys + head * to * headDimension * size)
                .copyMemory(from: buffer.keys + head * from * headDimension * size, byteCount: rows * headDimension * size)
            (copy.buffer.values + head * to * valueHeadDimension * size)
                .copyMemory(from: buffer.values + head * from * valueHeadDimension * size, byteCount: rows * valueHeadDimension * size)
        }
        return copy
    }

    // MARK: removing

    /// Forgets every position; the capacity stays allocated.
    public mutating func removeAll() {
        for b in 0..<batchSize { lengths[b] = 0 }
    }

    /// Rolls every batch element back to at most `length` positions (for example the tokens a draft
    /// model proposed and the target model rejected). Appending afterwards equals never having
    /// appended the positions removed.
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for a negative length, or, with a
    ///   sliding window, when the window of the next position is no longer held.
    public mutating func truncate(to length: Int) throws {
        try truncate(to: lengths.map { min($0, length) }, argument: "length", requested: length)
    }

    /// Rolls batch element `b` back to `lengths[b]` positions (each at most its current length).
    public mutating func truncate(to lengths: [Int]) throws {
        guard lengths.count == batchSize else {
            throw AttentionError.invalidArgument(
                argument: "lengths", reason: "\(lengths.count) lengths given for a batch of \(batchSize) (one per batch element)")
        }
        if let bad = lengths.indices.first(where: { lengths[$0] > self.lengths[$0] }) {
            throw AttentionError.invalidArgument(
                argument: "lengths", reason: "batch element \(bad) holds \(self.lengths[bad]) positions; it cannot be truncated to \(lengths[bad])")
        }
        try truncate(to: lengths, argument: "lengths", requested: nil)
    }

    private mutating func truncate(to newLengths: [Int], argument: String, requested: Int?) throws {
        if let bad = newLengths.firstIndex(where: { $0 < 0 }) {
            throw AttentionError.invalidArgument(argument: argument, reason: "must not be negative, got \(requested ?? newLengths[bad])")
        }
        if let window = slidingWindow {
            // The ring holds positions oldest ..< length; the next query (at position L) needs
            // L - W + 1 ..< L, so L - W + 1 must not precede the oldest position held. (Rows of the
            // positions before it now hold positions removed: the window hides them.)
            for b in 0..<batchSize where newLengths[b] < lengths[b] {
                let oldestHeld = max(0, lengths[b] - capacity)
                if oldestHeld > 0 && newLengths[b] < oldestHeld + window - 1 {
                    throw AttentionError.invalidArgument(
                        argument: argument,
                        reason: "batch element \(b) no longer holds the window of position \(newLengths[b]) (it holds positions \(oldestHeld)..<\(lengths[b]), window \(window)): truncate to at least \(oldestHeld + window - 1)")
                }
            }
        }
        lengths = newLengths
    }

    // MARK: reading

    /// The keys held, widened to Float: `[B, Hkv, Nk, D]` with `Nk` the most positions any batch
    /// element holds, oldest first; rows past an element's length are 0. (A copy, for inspection and
    /// tests: attention reads the storage itself.)
    public var keys: Tensor<Float> { materialize(keys: true) }

    /// The values held, widened to Float: `[B, Hkv, Nk, Dv]`, like ``keys``.
    public var values: Tensor<Float> { materialize(keys: false) }

    /// Positions attention sees: the most any batch element holds.
    var keyLength: Int { (0..<batchSize).map(held).max() ?? 0 }

    private func materialize(keys: Bool) -> Tensor<Float> {
        let (B, H, Nk) = (batchSize, keyValueHeads, keyLength)
        let dimension = keys ? headDimension : valueHeadDimension
        var scalars = [Float](repeating: 0, count: B * H * Nk * dimension)
        for b in 0..<B {
            for h in 0..<H {
                for j in 0..<held(b) {
                    let row = (b * H + h) * rowsPerHead + firstRow(b) + j
                    let destination = ((b * H + h) * Nk + j) * dimension
                    for c in 0..<dimension {
                        let index = keys ? interleavedKeyIndex(row: row, column: c, D: dimension) : row * dimension + c
                        scalars[destination + c] = buffer.load(index, keys: keys, storage)
                    }
                }
            }
        }
        return Tensor(uncheckedShape: [B, H, Nk, dimension], scalars: scalars)
    }
}

extension KVCache {
    /// The raw storage of keys and values; shared between copies of a cache until one is written.
    final class Buffer: @unchecked Sendable {
        let keys: UnsafeMutableRawPointer, values: UnsafeMutableRawPointer
        let keyByteCount: Int, valueByteCount: Int

        init(keyBytes: Int, valueBytes: Int) {
            keyByteCount = keyBytes
            valueByteCount = valueBytes
            // Zeroed: the kernels read whole blocks of keys and values, including rows a mask hides
            // (past a batch element's length), where an uninitialized NaN would poison 0 · v.
            keys = .allocate(byteCount: keyBytes, alignment: 64)
            keys.initializeMemory(as: UInt8.self, repeating: 0, count: keyBytes)
            values = .allocate(byteCount: valueBytes, alignment: 64)
            values.initializeMemory(as: UInt8.self, repeating: 0, count: valueBytes)
        }

        deinit {
            keys.deallocate()
            values.deallocate()
        }

        func copy() -> Buffer {
            let copy = Buffer(keyBytes: keyByteCount, valueBytes: valueByteCount)
            copy.keys.copyMemory(from: keys, byteCount: keyByteCount)
            copy.values.copyMemory(from: values, byteCount: valueByteCount)
            return copy
        }

        /// Stores `count` Floats from `source[offset...]` at element `index` of the values, rounded.
        func storeValue(_ source: UnsafeBufferPointer<Float>, from offset: Int, count: Int, at index: Int, _ storage: Storage) {
            let base = values
            switch storage {
            case .float32:
                let destination = base.assumingMemoryBound(to: Float.self) + index
                for c in 0..<count { destination[c] = source[offset + c] }
            case .float16:
                let destination = base.assumingMemoryBound(to: HalfBits.self) + index
                for c in 0..<count { destination[c] = HalfBits(source[offset + c]) }
            case .bfloat16:
                let destination = base.assumingMemoryBound(to: BFloat16Bits.self) + index
                for c in 0..<count { destination[c] = BFloat16Bits(source[offset + c]) }
            }
        }

        /// Stores the `count` (= D) Floats of one key from `source[offset...]` at `row` of the
        /// interleaved keys, rounded.
        func storeKey(_ source: UnsafeBufferPointer<Float>, from offset: Int, count: Int, row: Int, _ storage: Storage) {
            let first = interleavedKeyIndex(row: row, column: 0, D: count)
            switch storage {
            case .float32:
                let destination = keys.assumingMemoryBound(to: Float.self) + first
                for c in 0..<count { destination[c * keyTilePositions] = source[offset + c] }
            case .float16:
                let destination = keys.assumingMemoryBound(to: HalfBits.self) + first
                for c in 0..<count { destination[c * keyTilePositions] = HalfBits(source[offset + c]) }
            case .bfloat16:
                let destination = keys.assumingMemoryBound(to: BFloat16Bits.self) + first
                for c in 0..<count { destination[c * keyTilePositions] = BFloat16Bits(source[offset + c]) }
            }
        }

        /// Element `index` of keys or values, widened.
        func load(_ index: Int, keys fromKeys: Bool, _ storage: Storage) -> Float {
            let base = UnsafeRawPointer(fromKeys ? keys : values)
            switch storage {
            case .float32: return base.assumingMemoryBound(to: Float.self)[index]
            case .float16: return base.assumingMemoryBound(to: HalfBits.self)[index].floatValue
            case .bfloat16: return base.assumingMemoryBound(to: BFloat16Bits.self)[index].floatValue
            }
        }
    }
}
