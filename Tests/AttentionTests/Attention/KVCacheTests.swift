import Attention
import AttentionTestSupport
import Foundation
import Testing
import _AttentionKernels

/// The KV cache against one full forward pass: decoding step by step, chunked prefill, batches of
/// different lengths, the sliding window, truncation, 16-bit storage, and every error leaving the
/// cache as it was. Tolerance rule as everywhere: the cache's error against the Double reference (on
/// the keys and values as stored) is at most twice that of a naive Float computation.
@Suite("KV cache")
struct KVCacheTests {
    static var instructionSets: [KernelInstructionSet] { KernelInstructionSet.allCases.filter(\.isSupported) }

    /// Positions `range` of a `[B, H, N, C]` tensor.
    static func positions(_ t: Tensor<Float>, _ range: Range<Int>) throws -> Tensor<Float> {
        let (B, H, N, C) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        var out: [Float] = []
        out.reserveCapacity(B * H * range.count * C)
        for head in 0..<(B * H) { out += t.scalars[((head * N + range.lowerBound) * C)..<((head * N + range.upperBound) * C)] }
        return try Tensor(shape: [B, H, range.count, C], scalars: out)
    }

    /// Writes `part` ([B, H, n, C]) into positions `start...` of `whole`.
    static func place(_ part: Tensor<Float>, into whole: inout [Float], shape: [Int], at start: Int) {
        let (B, H, n, C) = (part.shape[0], part.shape[1], part.shape[2], part.shape[3])
        for head in 0..<(B * H) {
            let destination = (head * shape[2] + start) * C
            whole.replaceSubrange(destination..<(destination + n * C), with: part.scalars[(head * n * C)..<((head + 1) * n * C)])
        }
    }

    /// Checks `output` against the reference and the naive Float computation over all of q, k, v.
    static func expectWithinRule(_ output: [Float], q: Tensor<Float>, k: Tensor<Float>, v: Tensor<Float>,
                                 mask: AttentionMask, _ comment: String) throws {
        let (error, naiveError, _) = try errorsAgainstReference(output, query: q, key: k, value: v, mask: mask)
        #expect(error <= max(2 * naiveError, Double(4 * Float.ulpOfOne)), "\(comment): error \(error), naive \(naiveError)")
        #expect(!output.contains { $0.isNaN }, "\(comment): NaN")
    }

    struct Case: CustomStringConvertible, Sendable {
        var storage: KVCache.Storage
        var D: Int
        var Dv: Int
        /// Query heads over two key/value heads: 2 per group decodes two rows at a time, 3 four rows
        /// with one padding row, 7 two groups of four rows.
        var Hq = 4
        var description: String { "\(storage) D\(D) Dv\(Dv) Hq\(Hq)" }
    }

    static let storageCases: [Case] = KVCache.Storage.allCases.flatMap { storage in
        [Case(storage: storage, D: 64, Dv: 128), Case(storage: storage, D: 59, Dv: 40),
         Case(storage: storage, D: 48, Dv: 64, Hq: 6), Case(storage: storage, D: 5, Dv: 24, Hq: 14)]
    }

    @Test("Decoding step by step, and chunked prefill, equal one causal forward over the whole sequence",
          arguments: storageCases, instructionSets)
    func decodingEqualsFullForward(_ c: Case, isa: KernelInstructionSet) throws {
        let (B, Hq, Hkv, N, prompt) = (2, c.Hq, 2, 130, 90)
        var g = SplitMix64(seed: UInt64(c.D * 131 + c.Dv))
        let q = try Tensor<Float>.randomNormal(shape: [B, Hq, N, c.D], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [B, Hkv, N, c.D], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [B, Hkv, N, c.Dv], using: &g)
        let options = AttentionOptions(implementation: .tiled(isa), threads: 2)

        // A prompt as one chunk (the tiled path), then single steps (the decode path).
        var cache = try KVCache(batchSize: B, keyValueHeads: Hkv, headDimension: c.D, valueHeadDimension: c.Dv,
                                capacity: 140, storage: c.storage)
        var output = [Float](repeating: 0, count: B * Hq * N * c.Dv)
        try cache.append(key: Self.positions(k, 0..<prompt), value: Self.positions(v, 0..<prompt))
        let prefill = try scaledDotProductAttention(query: Self.positions(q, 0..<prompt), cache: cache, mask: .causal, options: options)
        #expect(prefill.path.implementation == .tiled(isa))
        Self.place(prefill.output, into: &output, shape: [B, Hq, N, c.Dv], at: 0)
        for t in prompt..<N {
            try cache.append(key: Self.positions(k, t..<(t + 1)), value: Self.positions(v, t..<(t + 1)))
            let step = try scaledDotProductAttention(query: Self.positions(q, t..<(t + 1)), cache: cache, options: options)
            Self.place(step.output, into: &output, shape: [B, Hq, N, c.Dv], at: t)
        }
        #expect(cache.count == N && cache.lengths == [N, N])
        // Float32: the rule against the reference. 16 bits: the keys and values as stored are the inputs
        // rounded to nearest, and attention over them is bit for bit what the Float32 cache computes
        // on those rounded values (the kernels widen exactly and change nothing else).
        let (storedK, storedV) = (cache.keys, cache.values)
        if c.storage == .float32 {
            #expect(storedK.scalars == k.scalars && storedV.scalars == v.scalars)
            try Self.expectWithinRule(output, q: q, k: storedK, v: storedV, mask: .causal, "\(c) on \(isa)")
            return
        }
        let bound: Float = c.storage == .float16 ? 0x1p-11 : 0x1p-8
        #expect(zip(storedK.scalars, k.scalars).allSatisfy { abs($0 - $1) <= bound * abs($1) + 0x1p-24 })
        #expect(zip(storedV.scalars, v.scalars).allSatisfy { abs($0 - $1) <= bound * abs($1) + 0x1p-24 })
        var float = try KVCache(batchSize: B, keyValueHeads: Hkv, headDimension: c.D, valueHeadDimension: c.Dv, capacity: 140)
        var floatOutput = [Float](repeating: 0, count: B * Hq * N * c.Dv)
        try float.append(key: Self.positions(storedK, 0..<prompt), value: Self.positions(storedV, 0..<prompt))
        let floatPrefill = try scaledDotProductAttention(query: Self.positions(q, 0..<prompt), cache: float, mask: .causal, options: options)
        Self.place(floatPrefill.output, into: &floatOutput, shape: [B, Hq, N, c.Dv], at: 0)
        for t in prompt..<N {
            try float.append(key: Self.positions(storedK, t..<(t + 1)), value: Self.positions(storedV, t..<(t + 1)))
            let step = try scaledDotProductAttention(query: Self.positions(q, t..<(t + 1)), cache: float, options: options)
            Self.place(step.output, into: &floatOutput, shape: [B, Hq, N, c.Dv], at: t)
        }
        #expect(output == floatOutput, "\(c) on \(isa): max difference \(maxAbsDifference(output, floatOutput))")
        #expect(!output.contains { $0.isNaN })
    }

    @Test("A chunk of queries equals the same queries one by one", arguments: KVCache.Storage.allCases)
    func chunkedPrefillEqualsOneByOne(_ storage: KVCache.Storage) throws {
        var g = SplitMix64(seed: 5)
        let (Hq, Hkv, D, N) = (6, 3, 64, 70)
        let q = try Tensor<Float>.randomNormal(shape: [1, Hq, N, D], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [1, Hkv, N, D], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [1, Hkv, N, D], using: &g)
        var chunked = try KVCache(keyValueHeads: Hkv, headDimension: D, capacity: N, storage: storage)
        var single = chunked
        var chunkOutput = [Float](repeating: 0, count: Hq * N * D), singleOutput = chunkOutput
        for (start, end) in [(0, 30), (30, 31), (31, 70)] {
            try chunked.append(key: Self.positions(k, start..<end), value: Self.positions(v, start..<end))
            let r = try scaledDotProductAttention(query: Self.positions(q, start..<end), cache: chunked, mask: .causal)
            Self.place(r.output, into: &chunkOutput, shape: [1, Hq, N, D], at: start)
        }
        for t in 0..<N {
            try single.append(key: Self.positions(k, t..<(t + 1)), value: Self.positions(v, t..<(t + 1)))
            let r = try scaledDotProductAttention(query: Self.positions(q, t..<(t + 1)), cache: single)
            Self.place(r.output, into: &singleOutput, shape: [1, Hq, N, D], at: t)
        }
        #expect(chunked.keys.scalars == single.keys.scalars)
        #expect(maxAbsDifference(chunkOutput, singleOutput) < 1e-5)
    }

    @Test("Sequences of different lengths decode together as if each were alone", arguments: instructionSets)
    func batchOfDifferentLengths(isa: KernelInstructionSet) throws {
        var g = SplitMix64(seed: 9)
        let (Hq, Hkv, D) = (4, 1, 64)
        let prompts = [5, 12, 1], steps = 7, B = prompts.count
        let q = try Tensor<Float>.randomNormal(shape: [B, Hq, 12 + steps, D], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [B, Hkv, 12 + steps, D], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [B, Hkv, 12 + steps, D], using: &g)
        let options = AttentionOptions(implementation: .tiled(isa), threads: 2)
        var cache = try KVCache(batchSize: B, keyValueHeads: Hkv, headDimension: D, capacity: 32)
        // The prompts as one chunk padded on the left: row i of element b is its position i - 12 + prompts[b].
        func leftPadded(_ t: Tensor<Float>) throws -> Tensor<Float> {
            var out: [Float] = []
            for b in 0..<B { for h in 0..<t.shape[1] { for i in 0..<12 { for c in 0..<D {
                let position = i - 12 + prompts[b]
                out.append(position >= 0 ? t[b, h, position, c] : 1e3)   // padding: anything finite
            } } } }
            return try Tensor(shape: [B, t.shape[1], 12, D], scalars: out)
        }
        try cache.append(key: leftPadded(k), value: leftPadded(v), validLengths: prompts)
        #expect(cache.lengths == prompts)
        let prefill = try scaledDotProductAttention(query: leftPadded(q), cache: cache, mask: .causal,
                                                    returning: .logSumExp, options: options)
        var stepOutputs: [Tensor<Float>] = []
        for s in 0..<steps {
            // Each element's next token is its own position prompts[b] + s: gather it.
            func next(_ t: Tensor<Float>) throws -> Tensor<Float> {
                var out: [Float] = []
                for b in 0..<B { for h in 0..<t.shape[1] { for c in 0..<D { out.append(t[b, h, prompts[b] + s, c]) } } }
                return try Tensor(shape: [B, t.shape[1], 1, D], scalars: out)
            }
            try cache.append(key: next(k), value: next(v))
            stepOutputs.append(try scaledDotProductAttention(query: next(q), cache: cache, options: options).output)
        }
        #expect(cache.lengths == prompts.map { $0 + steps })
        for b in 0..<B {
            // Element b alone: its own positions 0 ..< prompts[b] + steps, causal.
            let n = prompts[b] + steps
            func alone(_ t: Tensor<Float>) throws -> Tensor<Float> {
                var out: [Float] = []
                for h in 0..<t.shape[1] { for j in 0..<n { for c in 0..<D { out.append(t[b, h, j, c]) } } }
                return try Tensor(shape: [1, t.shape[1], n, D], scalars: out)
            }
            let reference = try referenceScaledDotProductAttention(query: alone(q), key: alone(k), value: alone(v), mask: .causal)
            for h in 0..<Hq {
                // Prompt rows: query i of the chunk is element b's position i - 12 + prompts[b].
                for i in 0..<12 {
                    let position = i - 12 + prompts[b]
                    for c in 0..<D {
                        let got = prefill.output[b, h, i, c]
                        let want = position >= 0 ? Float(reference.output[0, h, position, c]) : 0
                        #expect(abs(got - want) < 2e-5, "prompt b\(b) h\(h) i\(i)")
                        if abs(got - want) >= 2e-5 { return }
                    }
                    if position < 0 { #expect(try #require(prefill.logSumExp)[b, h, i] == -.infinity) }
                }
                for s in 0..<steps {
                    for c in 0..<D {
                        let want = Float(reference.output[0, h, prompts[b] + s, c])
                        #expect(abs(stepOutputs[s][b, h, 0, c] - want) < 2e-5, "step \(s) b\(b) h\(h)")
                    }
                }
            }
        }
    }

    @Test("A sliding-window cache equals the windowed causal mask over the whole history",
          arguments: [(8, 8, 1), (8, 12, 5), (5, 9, 3), (7, 21, 1)], KVCache.Storage.allCases)
    func slidingWindow(_ shape: (window: Int, capacity: Int, chunk: Int), _ storage: KVCache.Storage) throws {
        for isa in Self.instructionSets { try slidingWindow(shape, storage, isa: isa) }
    }

    /// One case of ``slidingWindow(_:_:)``: windows start at every row of the ring, so the interleaved
    /// keys' tiles are entered and left part-way.
    func slidingWindow(_ shape: (window: Int, capacity: Int, chunk: Int), _ storage: KVCache.Storage,
                       isa: KernelInstructionSet) throws {
        var g = SplitMix64(seed: UInt64(shape.window * 10 + shape.capacity))
        let (Hq, Hkv, D, N) = (4, 2, 64, 61)
        let q = try Tensor<Float>.randomNormal(shape: [1, Hq, N, D], using: &g)
        let k = try Tensor<Float>.randomNormal(shape: [1, Hkv, N, D], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [1, Hkv, N, D], using: &g)
        var cache = try KVCache(keyValueHeads: Hkv, headDimension: D, capacity: shape.capacity, storage: storage,
                                slidingWindow: shape.window)
        var output = [Float](repeating: 0, count: Hq * N * D)
        var storedK = [Float](repeating: 0, count: Hkv * N * D), storedV = storedK
        var start = 0
        while start < N {
            let end = min(N, start + shape.chunk)
            try cache.append(key: Self.positions(k, start..<end), value: Self.positions(v, start..<end))
            let r = try scaledDotProductAttention(query: Self.positions(q, start..<end), cache: cache, mask: .causal,
                                                  options: AttentionOptions(implementation: .tiled(isa)))
            Self.place(r.output, into: &output, shape: [1, Hq, N, D], at: start)
            // The newest positions as stored (for the rounded reference).
            let held = cache.keys, heldV = cache.values, n = held.shape[2]
            Self.place(try Self.positions(held, (n - (end - start))..<n), into: &storedK, shape: [1, Hkv, N, D], at: start)
            Self.place(try Self.positions(heldV, (n - (end - start))..<n), into: &storedV, shape: [1, Hkv, N, D], at: start)
            start = end
        }
        #expect(cache.count == N)
        // Keys and values, each 2 × capacity rows per head in whole tiles of 16 positions.
        let rows = (2 * shape.capacity + 15) / 16 * 16
        #expect(cache.allocatedBytes == 2 * Hkv * rows * D * storage.bytesPerElement)
        let mask = AttentionMask.causal && .slidingWindow(left: shape.window - 1, right: 0)
        try Self.expectWithinRule(output, q: q, k: Tensor(shape: [1, Hkv, N, D], scalars: storedK),
                                  v: Tensor(shape: [1, Hkv, N, D], scalars: storedV), mask: mask,
                                  "window \(shape) \(storage) on \(isa)")
    }

    @Test("Truncating and appending again equals never having appended", arguments: [nil, 6] as [Int?])
    func truncateThenAppend(window: Int?) throws {
        var g = SplitMix64(seed: 21)
        let (Hkv, D) = (2, 16)
        let k = try Tensor<Float>.randomNormal(shape: [1, Hkv, 40, D], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [1, Hkv, 40, D], using: &g)
        let q = try Tensor<Float>.randomNormal(shape: [1, 4, 1, D], using: &g)
        var direct = try KVCache(keyValueHeads: Hkv, headDimension: D, capacity: window == nil ? 40 : 10, slidingWindow: window)
        var rolledBack = direct
        // rolledBack: 0..<20, 4 rejected drafts (20..<24 of other data), truncated to 20, then 20..<30.
        for t in 0..<20 { try direct.append(key: Self.positions(k, t..<(t + 1)), value: Self.positions(v, t..<(t + 1))) }
        for t in 0..<20 { try rolledBack.append(key: Self.positions(k, t..<(t + 1)), value: Self.positions(v, t..<(t + 1))) }
        for t in 30..<34 { try rolledBack.append(key: Self.positions(v, t..<(t + 1)), value: Self.positions(k, t..<(t + 1))) }
        try rolledBack.truncate(to: 20)
        #expect(rolledBack.count == 20)
        for t in 20..<30 {
            try direct.append(key: Self.positions(k, t..<(t + 1)), value: Self.positions(v, t..<(t + 1)))
            try rolledBack.append(key: Self.positions(k, t..<(t + 1)), value: Self.positions(v, t..<(t + 1)))
            let a = try scaledDotProductAttention(query: q, cache: direct)
            let b = try scaledDotProductAttention(query: q, cache: rolledBack)
            #expect(a.output.scalars == b.output.scalars, "step \(t)")
        }
        if window != nil {
            // 30 positions held in a ring of 10 with window 6: position 25's window starts at 20, the oldest held.
            var tooFar = rolledBack
            #expect(thrownError { try tooFar.truncate(to: 24) } == .invalidArgument("length"))
            #expect(tooFar.count == 30)
            try tooFar.truncate(to: 25)
        }
        rolledBack.removeAll()
        #expect(rolledBack.count == 0)
        #expect(thrownError { try scaledDotProductAttention(query: q, cache: rolledBack) } == .emptySequence("cache"))
    }

    @Test("A resized cache holds the same keys and values bit for bit, attends alike and appends on; rings and too small a capacity are refused",
          arguments: KVCache.Storage.allCases)
    func resized(storage: KVCache.Storage) throws {
        var g = SplitMix64(seed: 0x5E5)
        let (B, Hkv, D, Dv) = (2, 3, 16, 8)
        let k = try Tensor<Float>.randomNormal(shape: [B, Hkv, 60, D], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [B, Hkv, 60, Dv], using: &g)
        let q = try Tensor<Float>.randomNormal(shape: [B, 6, 1, D], using: &g)
        var small = try KVCache(batchSize: B, keyValueHeads: Hkv, headDimension: D, valueHeadDimension: Dv, capacity: 37, storage: storage)
        // 37 positions, batch element 1 holding 29 of them (left-padded chunk): not a whole tile, lengths differ.
        try small.append(key: Self.positions(k, 0..<37), value: Self.positions(v, 0..<37), validLengths: [37, 29])
        for capacity in [37, 40, 100, 1000] {
            var grown = try small.resized(capacity: capacity)
            #expect(grown.capacity == capacity && grown.lengths == small.lengths && grown.storage == storage)
            #expect(grown.keys.scalars == small.keys.scalars && grown.values.scalars == small.values.scalars, "\(capacity)")
            #expect(try scaledDotProductAttention(query: q, cache: grown).output.scalars
                    == scaledDotProductAttention(query: q, cache: small).output.scalars, "\(capacity)")
            // It appends after the positions it holds, as the original would (where the original has room).
            guard capacity >= 40 else { continue }
            var original = try small.resized(capacity: 60)
            try grown.append(key: Self.positions(k, 37..<40), value: Self.positions(v, 37..<40))
            try original.append(key: Self.positions(k, 37..<40), value: Self.positions(v, 37..<40))
            #expect(try scaledDotProductAttention(query: q, cache: grown).output.scalars
                    == scaledDotProductAttention(query: q, cache: original).output.scalars, "\(capacity)")
        }
        // Shrunk to what it holds, and an empty cache resized.
        #expect(try small.resized(capacity: 1000).resized(capacity: 37).keys.scalars == small.keys.scalars)
        #expect(try KVCache(keyValueHeads: 1, headDimension: 4, capacity: 8).resized(capacity: 2).count == 0)
        #expect(thrownError { try small.resized(capacity: 36) } == .invalidArgument("capacity"))
        #expect(thrownError { try small.resized(capacity: Int.max) } == .invalidArgument("capacity"))
        let ring = try KVCache(keyValueHeads: 1, headDimension: 4, capacity: 8, slidingWindow: 4)
        #expect(thrownError { try ring.resized(capacity: 16) } == .invalidArgument("capacity"))
    }

    @Test("Prefetching is only a hint: any count and budget, on any storage, ring, empty or full cache, leaves the cache as it was and attends alike",
          arguments: KVCache.Storage.allCases)
    func prefetchChangesNothing(storage: KVCache.Storage) throws {
        var g = SplitMix64(seed: 0xFE7C)
        let (B, Hkv, D, Dv) = (2, 3, 59, 40)   // odd widths: rows of 16-bit keys and values straddle cache lines
        let k = try Tensor<Float>.randomNormal(shape: [B, Hkv, 30, D], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [B, Hkv, 30, Dv], using: &g)
        let q = try Tensor<Float>.randomNormal(shape: [B, 6, 1, D], using: &g)
        for window in [nil, 7] as [Int?] {
            let capacity = window == nil ? 30 : 12
            var cache = try KVCache(batchSize: B, keyValueHeads: Hkv, headDimension: D, valueHeadDimension: Dv, capacity: capacity,
                                    storage: storage, slidingWindow: window)
            cache.prefetch(appending: 1)   // empty
            // Then 5 positions (batch element 1 holding 3), then one at a time until full (or around the ring).
            try cache.append(key: Self.positions(k, 0..<5), value: Self.positions(v, 0..<5), validLengths: [5, 3])
            for t in 5..<30 {
                let before = (cache.keys.scalars, cache.values.scalars, cache.lengths)
                let attended = try scaledDotProductAttention(query: q, cache: cache).output.scalars
                for (count, budget) in [(1, 256 << 10), (0, 0), (-3, -1), (16, Int.max), (Int.max, 64), (capacity, 1)] {
                    cache.prefetch(appending: count, readBudget: budget)
                }
                #expect(cache.keys.scalars == before.0 && cache.values.scalars == before.1 && cache.lengths == before.2, "\(window as Any) \(t)")
                #expect(try scaledDotProductAttention(query: q, cache: cache).output.scalars == attended, "\(window as Any) \(t)")
                guard window != nil || cache.lengths[0] < capacity else { break }
                try cache.append(key: Self.positions(k, t..<(t + 1)), value: Self.positions(v, t..<(t + 1)))
            }
            // Full (or a ring that has wrapped): still only a hint.
            cache.prefetch(appending: 3)
            #expect(window != nil || cache.lengths == [30, 28])
        }
    }

    /// One case of the single-query kernel: `G` query heads per key/value head, keys held per batch
    /// element (two elements of different lengths), an optional ring, the mask's reach.
    struct SingleQueryCase: CustomStringConvertible, Sendable {
        var D: Int, Dv: Int, G: Int, lengths: [Int]
        var window: Int? = nil, capacity: Int = 80, left: Int? = nil
        var description: String { "D\(D) Dv\(Dv) G\(G) lengths \(lengths) window \(window.map(String.init) ?? "-") left \(left.map(String.init) ?? "-")" }
    }

    static let singleQueryCases: [SingleQueryCase] = [
        SingleQueryCase(D: 64, Dv: 64, G: 3, lengths: [48, 48]),
        SingleQueryCase(D: 64, Dv: 64, G: 3, lengths: [1, 33]),
        SingleQueryCase(D: 5, Dv: 16, G: 1, lengths: [17, 16]),
        SingleQueryCase(D: 72, Dv: 48, G: 5, lengths: [15, 0]),
        SingleQueryCase(D: 128, Dv: 128, G: 2, lengths: [40, 39]),
        SingleQueryCase(D: 64, Dv: 64, G: 8, lengths: [31, 2], left: 6),
        SingleQueryCase(D: 64, Dv: 64, G: 2, lengths: [70, 45], window: 20, capacity: 24),
        SingleQueryCase(D: 40, Dv: 32, G: 3, lengths: [9, 61], window: 7, capacity: 7, left: 3),
    ]

    @Test("One query per head over a cache (a decoding step) runs in one pass and equals the reference: groups of 1 to 8 heads, partial tiles, rings, elements holding nothing",
          arguments: singleQueryCases, KVCache.Storage.allCases)
    func singleQueryPass(_ c: SingleQueryCase, _ storage: KVCache.Storage) throws {
        var g = SplitMix64(seed: UInt64(c.D * 7 + c.Dv * 3 + c.G))
        let (B, Hkv) = (2, 2), Hq = c.G * Hkv, most = c.lengths.max()!
        var cache = try KVCache(batchSize: B, keyValueHeads: Hkv, headDimension: c.D, valueHeadDimension: c.Dv,
                                capacity: c.capacity, storage: storage, slidingWindow: c.window)
        // Appended a position at a time, each element only while it has positions left (left-padded
        // chunks of one: validLengths 0 or 1), so that a ring wraps as decoding wraps it.
        for step in 0..<most {
            let k = try Tensor<Float>.randomNormal(shape: [B, Hkv, 1, c.D], using: &g)
            let v = try Tensor<Float>.randomNormal(shape: [B, Hkv, 1, c.Dv], using: &g)
            try cache.append(key: k, value: v, validLengths: c.lengths.map { step >= most - $0 ? 1 : 0 })
        }
        let q = try Tensor<Float>.randomNormal(shape: [B, Hq, 1, c.D], using: &g)
        let mask: AttentionMask = c.left.map { .causal && .slidingWindow(left: $0, right: 0) } ?? .none
        // The keys and values as stored, oldest first: element b holds its first `held` rows, and sees
        // the last `reach` of them (the ring's window and the mask's).
        let (keys, values, Nk) = (cache.keys, cache.values, cache.keys.shape[2])
        let reach = min(c.window ?? Int.max, c.left.map { $0 + 1 } ?? Int.max)
        for isa in Self.instructionSets {
            let options = AttentionOptions(implementation: .tiled(isa), threads: 1)
            let fast = try scaledDotProductAttention(query: q, cache: cache, mask: mask, options: options)
            #expect(fast.path.detail.hasPrefix("one query per head"), "\(c) \(storage) on \(isa): \(fast.path)")
            // The path does not depend on the threads allowed (a batched step runs each sequence on one).
            let twoThreads = try scaledDotProductAttention(query: q, cache: cache, mask: mask,
                                                           options: AttentionOptions(implementation: .tiled(isa), threads: 2))
            #expect(twoThreads.output.scalars == fast.output.scalars)
            #expect(fast.output.shape == [B, Hq, 1, c.Dv])
            // Asking for the log-sum-exp takes the tiled forward.
            let tiled = try scaledDotProductAttention(query: q, cache: cache, mask: mask, returning: .logSumExp, options: options)
            #expect(tiled.path.plan != nil)
            #expect(maxAbsDifference(fast.output.scalars, tiled.output.scalars) < 1e-5, "\(c) \(storage) on \(isa)")
            for b in 0..<B {
                let mine = Array(fast.output.scalars[(b * Hq * c.Dv)..<((b + 1) * Hq * c.Dv)])
                let held = min(c.lengths[b], c.capacity)
                guard held > 0 else {
                    #expect(mine.allSatisfy { $0 == 0 }, "\(c) \(storage) on \(isa): an element holding nothing")
                    continue
                }
                // Element b alone, against the Double reference.
                func element(_ t: Tensor<Float>, rows: Int) throws -> Tensor<Float> {
                    let C = t.shape[3], perHead = t.shape[2] * C
                    var out: [Float] = []
                    for h in 0..<t.shape[1] {
                        let start = (b * t.shape[1] + h) * perHead
                        out += t.scalars[start..<(start + rows * C)]
                    }
                    return try Tensor(shape: [1, t.shape[1], rows, C], scalars: out)
                }
                let qb = try Tensor(shape: [1, Hq, 1, c.D], scalars: Array(q.scalars[(b * Hq * c.D)..<((b + 1) * Hq * c.D)]))
                let windowed: AttentionMask = reach < held ? .slidingWindow(left: reach - 1, right: 0) : .none
                try Self.expectWithinRule(mine, q: qb, k: element(keys, rows: held), v: element(values, rows: held), mask: windowed,
                                          "\(c) \(storage) on \(isa), element \(b)")
                #expect(held <= Nk)
            }
        }
    }

    @Test("Masks, bias, weights and log-sum-exp over a cache equal attention over its keys and values")
    func masksBiasAndOutputs() throws {
        var g = SplitMix64(seed: 33)
        let (B, Hq, Hkv, D, Nq, Nk) = (2, 4, 2, 32, 3, 50)
        let k = try Tensor<Float>.randomNormal(shape: [B, Hkv, Nk, D], using: &g)
        let v = try Tensor<Float>.randomNormal(shape: [B, Hkv, Nk, D], using: &g)
        let q = try Tensor<Float>.randomNormal(shape: [B, Hq, Nq, D], using: &g)
        let bias = try Tensor<Float>.randomNormal(shape: [Hq, Nq, Nk], using: &g)
        let hidden = try Tensor<Float>.randomUniform(shape: [B, 1, Nq, Nk], using: &g).map { $0 < 0.7 }
        var cache = try KVCache(batchSize: B, keyValueHeads: Hkv, headDimension: D, capacity: 64)
        try cache.append(key: k, value: v)
        let mask = AttentionMask.causal && .slidingWindow(left: 20, right: 0) && .boolean(hidden) && .keyLengths([50, 30])
        let viaCache = try scaledDotProductAttention(query: q, cache: cache, mask: mask, bias: bias, returning: .all)
        let direct = try scaledDotProductAttention(query: q, key: k, value: v, mask: mask, bias: bias, returning: .all)
        #expect(maxAbsDifference(viaCache.output.scalars, direct.output.scalars) < 1e-6)
        #expect(maxAbsDifference(try #require(viaCache.weights).scalars, try #require(direct.weights).scalars) < 1e-6)
        #expect(maxAbsDifference(try #require(viaCache.logSumExp).scalars, try #require(direct.logSumExp).scalars) < 1e-6)
        let reference = try scaledDotProductAttention(query: q, cache: cache, mask: mask, bias: bias,
                                                      options: AttentionOptions(implementation: .reference))
        #expect(reference.path.implementation == .reference)
        #expect(maxAbsDifference(reference.output.scalars, direct.output.scalars) < 1e-5)
        // Lower ranks: one sequence, one head.
        var single = try KVCache(keyValueHeads: 1, headDimension: D, capacity: 8)
        let five = try Tensor<Float>.randomNormal(shape: [5, D], using: &g)
        try single.append(key: five, value: five)
        let one = try scaledDotProductAttention(query: Tensor(shape: [D], scalars: Array(q.scalars[0..<D])), cache: single)
        #expect(one.output.shape == [D])
    }

    @Test("Bad input is a typed error naming the argument, and leaves the cache as it was")
    func errors() throws {
        var g = SplitMix64(seed: 1)
        var cache = try KVCache(batchSize: 2, keyValueHeads: 2, headDimension: 8, capacity: 4, storage: .float16)
        let k3 = try Tensor<Float>.randomNormal(shape: [2, 2, 3, 8], using: &g)
        try cache.append(key: k3, value: k3)
        let before = (cache.keys.scalars, cache.values.scalars, cache.lengths)
        func expectError(_ fragment: String, _ body: () throws -> Void) {
            do {
                try body()
                Issue.record("expected an error mentioning \(fragment)")
            } catch let error as AttentionError {
                #expect(error.description.contains(fragment), "\(error)")
            } catch {
                Issue.record("unexpected error \(error)")
            }
            #expect(cache.keys.scalars == before.0 && cache.values.scalars == before.1 && cache.lengths == before.2)
        }
        expectError("passes the capacity 4") { try cache.append(key: k3, value: k3) }
        expectError("key/value heads is 2, not 3") {
            try cache.append(key: Tensor(repeating: 0, shape: [2, 3, 1, 8]), value: Tensor(repeating: 0, shape: [2, 3, 1, 8]))
        }
        expectError("head dimension is 8, not 7") {
            try cache.append(key: Tensor(repeating: 0, shape: [2, 2, 1, 7]), value: Tensor(repeating: 0, shape: [2, 2, 1, 8]))
        }
        expectError("batch size is 2, not 1") {
            try cache.append(key: Tensor(repeating: 0, shape: [1, 2, 1, 8]), value: Tensor(repeating: 0, shape: [1, 2, 1, 8]))
        }
        expectError("attention needs at least one element") {
            try cache.append(key: Tensor(repeating: 0, shape: [2, 2, 0, 8]), value: Tensor(repeating: 0, shape: [2, 2, 0, 8]))
        }
        expectError("same number of positions") {
            try cache.append(key: Tensor(repeating: 0, shape: [2, 2, 1, 8]), value: Tensor(repeating: 0, shape: [2, 2, 2, 8]))
        }
        expectError("validLengths") {
            try cache.append(key: Tensor(repeating: 0, shape: [2, 2, 1, 8]), value: Tensor(repeating: 0, shape: [2, 2, 1, 8]), validLengths: [1, 2])
        }
        expectError("lengths") { try cache.truncate(to: [1, 5]) }
        expectError("must not be negative") { try cache.truncate(to: -1) }
        let q = try Tensor<Float>.randomNormal(shape: [2, 4, 1, 8], using: &g)
        _ = try scaledDotProductAttention(query: q, cache: cache)
        expectError("the query's head dimension is 7 and the cache's 8") {
            _ = try scaledDotProductAttention(query: Tensor(repeating: 0, shape: [2, 4, 1, 7]), cache: cache)
        }
        expectError("the query's batch size is 1 and the cache's 2") {
            _ = try scaledDotProductAttention(query: Tensor(repeating: 0, shape: [1, 4, 1, 8]), cache: cache)
        }
        expectError("query has 3 heads and key/value have 2") {
            _ = try scaledDotProductAttention(query: Tensor(repeating: 0, shape: [2, 3, 1, 8]), cache: cache)
        }
        expectError("bottom-right") { _ = try scaledDotProductAttention(query: q, cache: cache, mask: .causal(.topLeft)) }

        var ring = try KVCache(keyValueHeads: 1, headDimension: 4, capacity: 6, slidingWindow: 4)
        let chunk = try Tensor<Float>.randomNormal(shape: [1, 1, 4, 4], using: &g)
        #expect(thrownError { try ring.append(key: chunk, value: chunk) } == .invalidShape("key"))   // at most 6 - 4 + 1 = 3
        #expect(ring.count == 0)
        try ring.append(key: Self.positions(chunk, 0..<3), value: Self.positions(chunk, 0..<3))
        #expect(thrownError { try scaledDotProductAttention(query: chunk, cache: ring) } == .invalidShape("query"))
        #expect(thrownError { try KVCache(keyValueHeads: 1, headDimension: 4, capacity: 3, slidingWindow: 4) } == .invalidArgument("slidingWindow"))
        #expect(thrownError { try KVCache(keyValueHeads: 0, headDimension: 4, capacity: 3) } == .invalidArgument("keyValueHeads"))
        #expect(thrownError { try KVCache(keyValueHeads: 1 << 30, headDimension: 1 << 30, capacity: 1 << 30) } == .invalidArgument("capacity"))
        // Rounding Int.max rows up to whole tiles of keys (or doubling them for a window) would overflow.
        #expect(thrownError { try KVCache(keyValueHeads: 1, headDimension: 1, capacity: .max) } == .invalidArgument("capacity"))
        #expect(thrownError { try KVCache(keyValueHeads: 1, headDimension: 1, capacity: .max, slidingWindow: 1) } == .invalidArgument("capacity"))
    }

    @Test("The README's decode loop runs as printed")
    func readmeDecodeLoop() throws {
        var cache = try KVCache(keyValueHeads: 8, headDimension: 128, capacity: 4096, storage: .float16)
        let prompt = try Tensor<Float>.randomNormal(shape: [1, 8, 20, 128], seed: 1)
        try cache.append(key: prompt, value: prompt)
        let queries = try Tensor<Float>.randomNormal(shape: [1, 32, 20, 128], seed: 2)
        var out = try scaledDotProductAttention(query: queries, cache: cache, mask: .causal)
        for step in 0..<100 {
            let kv = try Tensor<Float>.randomNormal(shape: [1, 8, 1, 128], seed: UInt64(3 + step))
            try cache.append(key: kv, value: kv)
            out = try scaledDotProductAttention(query: try Tensor<Float>.randomNormal(shape: [1, 32, 1, 128], seed: 9), cache: cache)
        }
        #expect(cache.count == 120)
        #expect(out.output.shape == [1, 32, 1, 128])
        #expect(cache.allocatedBytes == 2 * 8 * 4096 * 128 * 2)
    }

    @Test("Half and bfloat16 conversions round to nearest even and widen exactly")
    func conversions() throws {
        #if !(os(macOS) && arch(x86_64))
        for bits in UInt16.min...UInt16.max {
            let expected = Float(Float16(bitPattern: bits))
            let widened = HalfBits.widen(SIMD8(repeating: bits))[0], scalar = HalfBits(bitPattern: bits).floatValue
            #expect(widened.bitPattern == expected.bitPattern || (widened.isNaN && expected.isNaN), "bits \(bits)")
            #expect(scalar.bitPattern == widened.bitPattern, "bits \(bits): one element widened on its own")
            if widened.bitPattern != expected.bitPattern && !(widened.isNaN && expected.isNaN) { return }
            if scalar.bitPattern != widened.bitPattern { return }
        }
        var g = SplitMix64(seed: 3)
        var samples: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e9, -1e9, .infinity, -.infinity, 6.1e-5, 5.96e-8,
                                2.98e-8, 2.99e-8, 1e-10, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        for _ in 0..<20_000 {
            let raw = UInt32(truncatingIfNeeded: g.next())
            samples.append(Float(bitPattern: raw))
        }
        for x in samples where !x.isNaN {
            #expect(HalfBits(x).bitPattern == Float16(x).bitPattern, "\(x)")
            if HalfBits(x).bitPattern != Float16(x).bitPattern { return }
        }
        #expect(HalfBits(.nan).floatValue.isNaN)
        #endif
        // bfloat16: the nearer of the two neighbours, ties to the even one.
        var g2 = SplitMix64(seed: 4)
        for _ in 0..<20_000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: g2.next()))
            guard x.isFinite else { continue }
            // Magnitudes: truncation is the lower neighbour, one bfloat16 ulp more the upper (which may
            // be 2^128, i.e. infinity).
            let low = abs(Double(Float(bitPattern: x.bitPattern & 0xFFFF_0000)))
            let exponent = Int((x.bitPattern >> 23) & 0xFF)
            let ulp = exponent == 0 ? 0x1p-133 : pow(2, Double(exponent - 127 - 7))
            let (dl, dh) = (abs(Double(x)) - low, low + ulp - abs(Double(x)))
            let lowBits = UInt16(x.bitPattern >> 16)
            let want = dl < dh ? lowBits : dl > dh ? lowBits &+ 1 : (lowBits & 1 == 0 ? lowBits : lowBits &+ 1)
            #expect(BFloat16Bits(x).bitPattern == want, "\(x)")
            if BFloat16Bits(x).bitPattern != want { return }
        }
        #expect(BFloat16Bits(.nan).floatValue.isNaN)
    }
}
