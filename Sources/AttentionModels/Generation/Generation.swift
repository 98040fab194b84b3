import Attention
import _AttentionKernels
import Foundation

/// How the next token is chosen from a row of logits.
public struct Sampling: Sendable, Equatable {
    /// Divides the logits before the softmax; 0 means greedy (the most likely token, the first on ties).
    public var temperature: Double
    /// Keep only the `topK` most likely tokens (nil: all).
    public var topK: Int?
    /// Keep the smallest set of most likely tokens whose probability reaches `topP` (nil: all).
    public var topP: Double?
    /// Seeds the sampler: the same seed gives the same tokens.
    public var seed: UInt64

    /// The most likely token every step.
    public static let greedy = Sampling(temperature: 0)

    /// Settings as given; ``validate()`` checks them (``AutoregressiveModel/generate(prompt:maxTokens:sampling:useCache:cacheStorage:endOfText:options:onToken:)`` does).
    public init(temperature: Double, topK: Int? = nil, topP: Double? = nil, seed: UInt64 = 42) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for a negative or non-finite
    ///   temperature, `topK` below 1, or `topP` outside (0, 1].
    public func validate() throws {
        guard temperature.isFinite, temperature >= 0 else {
            throw AttentionError.invalidArgument(argument: "temperature", reason: "must be finite and at least 0 (0 = greedy), got \(temperature)")
        }
        if let topK, topK < 1 { throw AttentionError.invalidArgument(argument: "topK", reason: "must be at least 1, got \(topK)") }
        if let topP, !(topP > 0 && topP <= 1) { throw AttentionError.invalidArgument(argument: "topP", reason: "must be in (0, 1], got \(topP)") }
    }

    /// How many of the most likely tokens ``next(_:using:)`` can pick from: 1 when greedy, `topK`
    /// when set, nil when any token can be drawn. The logits of the others do not change its choice.
    public var candidateCount: Int? { temperature == 0 ? 1 : topK }

    /// The index of the first largest element of `x` (NaNs never win, unless the first is NaN: then
    /// 0), what `for i in x.indices where x[i] > x[best] { best = i }` from `best = 0` finds, in
    /// vectors of sixteen: a maximum, then its first place. (The loop took 30 µs for SmolLM2's
    /// 49,152 logits, a step of eight sequences 0.2 ms on the generator's thread.)
    static func firstLargest(_ x: UnsafeBufferPointer<Float>) -> Int {
        guard let p = x.baseAddress, !x.isEmpty, !x[0].isNaN else { return 0 }
        let raw = UnsafeRawPointer(p), whole = x.count / 16 * 16
        var top = SIMD16<Float>(repeating: x[0])
        for i in stride(from: 0, to: whole, by: 16) {
            let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            top.replace(with: v, where: v .> top)          // a NaN lane of v never replaces
        }
        var m = top.max()
        for i in whole..<x.count where x[i] > m { m = x[i] }
        let target = SIMD16<Float>(repeating: m)
        for i in stride(from: 0, to: whole, by: 16) where any(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) .== target) {
            for j in i..<(i + 16) where x[j] == m { return j }
        }
        for i in whole..<x.count where x[i] == m { return i }
        return 0
    }

    /// The next token for `logits` (one row), drawing from `generator` unless greedy (a temperature
    /// of 0, or one ``validate()`` refuses: the first largest logit).
    ///
    /// With a temperature, token i has the weight ``weights(_:temperature:)`` gives it, and:
    /// - without a cut (no `topK`, `topP` nil or 1), `u` = a unit draw times the sum of every weight
    ///   (in Double, of each run of sixteen's Float sum), and the draw walks the tokens in index order,
    ///   sixteen at a time and then one by one, until it has passed `u`: a token comes out with
    ///   probability its weight over the sum, and no sort is needed (a vocabulary's sort cost 30 ms a
    ///   token for Gemma 3's 262,144 logits, and in a server the draws of every stream are serial);
    /// - with a cut, the tokens by decreasing logit (the lower index first on ties), the first
    ///   `topK`, then the fewest whose weights reach `topP` of the sum (of all the weights, or of the
    ///   `topK` kept), and the draw walks those. Only the tokens above a threshold (lowered a
    ///   factor 10 of weight at a time) are sorted, when they provably hold the cut.
    public func next(_ logits: ArraySlice<Float>, using generator: inout SplitMix64) -> Int {
        logits.withUnsafeBufferPointer { x in
            guard temperature > 0, temperature.isFinite, !x.isEmpty else { return Self.firstLargest(x) }
            var drawn = 0
            withUnsafeTemporaryAllocation(of: Float.self, capacity: x.count) { w in
                drawn = draw(x, weights: w, using: &generator)
            }
            return drawn
        }
    }

    /// ``next(_:using:)`` with a temperature, `w` scratch for the weights.
    private func draw(_ x: UnsafeBufferPointer<Float>, weights w: UnsafeMutableBufferPointer<Float>, using generator: inout SplitMix64) -> Int {
        let best = Self.firstLargest(x)
        guard x[best].isFinite else { return best }   // an infinite logit takes every draw (NaNs never win)
        let topK = self.topK.map { $0.clamped(to: 1...Swift.max(1, x.count)) }
        // Every token's weight, except under top-k: then only the candidates' (the same values,
        // the exponential being lane by lane), computed below.
        if topK == nil { Self.fillWeights(x, top: x[best], temperature: temperature, into: w) }
        let all = UnsafeBufferPointer(w)
        if topK == nil, (topP ?? 1) >= 1 {
            var u = generator.nextUnit() * Self.weightSum(all)
            return Self.walk(all, to: &u) ?? all.lastIndex { $0 > 0 } ?? best
        }
        let total = topK == nil ? Self.weightSum(all) : 0
        let order = candidates(x, all, top: x[best], topK: topK, total: total)
        var kept: [Double]
        if topK == nil {
            kept = order.map { Double(all[$0]) }
        } else {
            let logits = order.map { x[$0] }
            kept = logits.withUnsafeBufferPointer { candidates in
                Self.fillWeights(candidates, top: x[best], temperature: temperature, into: w)
                return (0..<order.count).map { Double(w[$0]) }
            }
        }
        if let topK, topK < kept.count { kept.removeSubrange(topK...) }
        let keptTotal = topK == nil ? total : kept.reduce(0, +)
        if let topP {
            var cumulative = 0.0, keep = kept.count
            for (n, weight) in kept.enumerated() {
                cumulative += weight / keptTotal
                if cumulative >= topP { keep = n + 1; break }
            }
            kept.removeSubrange(keep...)
        }
        var u = generator.nextUnit() * kept.reduce(0, +)
        for (n, weight) in kept.enumerated() {
            u -= weight
            if u < 0 { return order[n] }
        }
        return order[kept.count - 1]   // rounding left u at 0: the last kept token
    }

    /// The tokens by decreasing logit (the lower index first on ties) that the cut can keep: those
    /// down to the highest threshold `top − j·T·ln 10` (j = 1 ... 9: weights down to 1e-j) above
    /// which lie at least `topK` tokens, or (without `topK`) weights reaching `topP` of `total`;
    /// every token when none does. Each threshold is tried in one pass of sixteen lanes (weights
    /// summed in Float, with a margin); the tokens above the one chosen are then collected, checked
    /// in Double and sorted.
    private func candidates(_ x: UnsafeBufferPointer<Float>, _ w: UnsafeBufferPointer<Float>, top: Float, topK: Int?, total: Double) -> [Int] {
        let tenfold = Float(log(10.0) * temperature)
        let needed = (topP ?? 1) * total
        let byLogit = { (a: Int, b: Int) in x[a] > x[b] || (x[a] == x[b] && a < b) }
        for j in 1...9 {
            let threshold = top - Float(j) * tenfold
            let (count, mass) = Self.countAndMass(x, w, atLeast: threshold, withMass: topK == nil)
            guard topK.map({ count >= $0 }) ?? (Double(mass) >= needed * (1 + 1e-3)) else { continue }
            let above = (0..<x.count).filter { x[$0] >= threshold }
            if topK != nil || above.reduce(0.0, { $0 + Double(w[$1]) }) >= needed * (1 + 1e-5) { return above.sorted(by: byLogit) }
        }
        return Array(0..<x.count).sorted(by: byLogit)
    }

    /// How many of `x` are at least `threshold`, and (with `withMass`) the sum in Float of their
    /// weights (`w` is read only then).
    private static func countAndMass(_ x: UnsafeBufferPointer<Float>, _ w: UnsafeBufferPointer<Float>, atLeast threshold: Float,
                                     withMass: Bool) -> (Int, Float) {
        guard let xs = x.baseAddress, let ws = w.baseAddress else { return (0, 0) }
        let (rx, rw) = (UnsafeRawPointer(xs), UnsafeRawPointer(ws)), t = SIMD16<Float>(repeating: threshold)
        var counts = SIMD16<Int32>.zero, masses = SIMD16<Float>.zero, i = 0
        while i + 16 <= x.count {
            let above = rx.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) .>= t
            counts.replace(with: counts &+ 1, where: above)
            if withMass { masses += rw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self).replacing(with: 0, where: .!above) }
            i += 16
        }
        var count = Int(counts.wrappedSum()), mass = masses.sum()
        for k in i..<x.count where xs[k] >= threshold {
            count += 1
            if withMass { mass += ws[k] }
        }
        return (count, mass)
    }

    /// The weights a draw at `temperature` gives `logits`: wᵢ = exp((xᵢ − max)/T) in Float, as
    /// 2^((xᵢ − max)·(log₂e / T)) by the attention kernels' sixteen-lane exponential (relative error
    /// about 1e-7; exactly 0 where the exponent is below −126.5, and for NaN logits). With an
    /// infinite largest logit, or no temperature (0, negative, not finite), the token greedy
    /// decoding takes weighs 1 and every other 0.
    public static func weights(_ logits: [Float], temperature: Double) -> [Float] {
        logits.withUnsafeBufferPointer { x in
            guard !x.isEmpty else { return [] }
            let best = firstLargest(x)
            guard temperature > 0, temperature.isFinite, x[best].isFinite else {
                return x.indices.map { $0 == best ? Float(1) : 0 }
            }
            return [Float](unsafeUninitializedCapacity: x.count) { w, initialized in
                fillWeights(x, top: x[best], temperature: temperature, into: w)
                initialized = x.count
            }
        }
    }

    /// The sum of `weights` that draws divide by: in Double, of each run of sixteen's Float sum
    /// (summed pairwise, lanes 0 ... 15), run after run, the last run's weights one by one.
    static func weightSum(_ weights: UnsafeBufferPointer<Float>) -> Double {
        var total = 0.0, i = 0
        if let base = weights.baseAddress {
            let raw = UnsafeRawPointer(base)
            while i + 16 <= weights.count {
                total += Double(horizontalSum(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)))
                i += 16
            }
        }
        while i < weights.count {
            total += Double(weights[i])
            i += 1
        }
        return total
    }

    /// The token a draw `u` (in `0 ..< weightSum(w)`) falls on, walking the runs of sixteen as
    /// `weightSum(_:)` sums them, then the tokens of the run it falls in: nil when rounding left `u`
    /// past every token (then the last token of nonzero weight is taken, as within a run). Within a
    /// run whose own tokens' Doubles add up to less than its Float sum, a `u` past them takes the
    /// run's last token of nonzero weight.
    static func walk(_ w: UnsafeBufferPointer<Float>, to u: inout Double) -> Int? {
        var i = 0
        if let base = w.baseAddress {
            let raw = UnsafeRawPointer(base)
            while i + 16 <= w.count {
                let run = Double(horizontalSum(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)))
                if u < run {
                    var last: Int?
                    for j in i..<(i + 16) where w[j] > 0 {
                        u -= Double(w[j])
                        if u < 0 { return j }
                        last = j
                    }
                    return last
                }
                u -= run
                i += 16
            }
        }
        while i < w.count {
            u -= Double(w[i])
            if u < 0 && w[i] > 0 { return i }
            i += 1
        }
        return nil
    }

    /// ``weights(_:temperature:)`` for a finite largest logit `top` and a positive temperature, into `w`.
    static func fillWeights(_ x: UnsafeBufferPointer<Float>, top: Float, temperature: Double, into w: UnsafeMutableBufferPointer<Float>) {
        guard let xs = x.baseAddress, let ws = w.baseAddress else { return }
        // At most the largest Float: a temperature below about 1e-38 would make it infinite, and
        // the most likely token's 0·∞ a NaN (then weight 0) instead of 1.
        let scale = Float(Swift.min(1.442_695_040_888_963_4 / temperature, Double(Float.greatestFiniteMagnitude)))
        let shift = SIMD16<Float>(repeating: top), s = SIMD16<Float>(repeating: scale)
        let raw = UnsafeRawPointer(xs), out = UnsafeMutableRawPointer(ws)
        var i = 0
        // (x − top)·scale ≤ 0 for every x but NaN, whose lanes come out NaN and are zeroed.
        @inline(__always) func weights(_ v: SIMD16<Float>) -> SIMD16<Float> {
            let e = exp2Vector((v - shift) * s, SeparateMultiplyAdd.self)
            return e.replacing(with: 0, where: .!(e .== e))
        }
        while i + 16 <= x.count {
            out.storeBytes(of: weights(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)), toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        if i < x.count {
            var v = SIMD16<Float>(repeating: -.infinity)
            for j in i..<x.count { v[j - i] = xs[j] }
            let e = weights(v)
            for j in i..<x.count { ws[j] = e[j - i] }
        }
    }
}

/// Timings and tokens of one ``AutoregressiveModel/generate(prompt:maxTokens:sampling:useCache:cacheStorage:endOfText:options:onToken:)`` run.
public struct Generation: Sendable {
    /// The prompt's tokens.
    public let promptIDs: [Int]
    /// The new tokens, in order (the end-of-text token included if it stopped there).
    public let generatedIDs: [Int]
    /// Seconds to process the prompt (and produce the first new token's logits).
    public let promptSeconds: Double
    /// Seconds for the remaining steps.
    public let decodeSeconds: Double
    /// Why it stopped.
    public let stopReason: StopReason

    /// Why a generation stopped.
    public enum StopReason: String, Sendable, Equatable {
        /// It produced the end-of-text (or end-of-turn) token it was given.
        case endOfText = "end-of-text"
        /// It produced the `maxTokens` asked for.
        case maxTokens = "max-tokens"
        /// The model's positions (or the caches' capacity) ran out before `maxTokens`.
        case contextFull = "context-full"
    }
}

/// A decoder that ``AutoregressiveModel/generate(prompt:maxTokens:sampling:useCache:cacheStorage:endOfText:options:onToken:)``
/// drives: logits for a whole sequence, and for tokens appended through one KV cache per layer.
/// ``GPT2Model`` and ``LlamaModel`` are two.
public protocol AutoregressiveModel: Sendable {
    /// Logits per position.
    var vocabularySize: Int { get }
    /// The longest sequence the model takes (its learned or trained positions).
    var maximumPositions: Int { get }
    /// Logits for every position of `ids`, `[T, vocabularySize]`.
    func logits(_ ids: [Int], options: AttentionOptions) throws -> Tensor<Float>
    /// Empty caches, one per layer, for up to `capacity` positions.
    func generationCaches(capacity: Int, storage: KVCache.Storage) throws -> [KVCache]
    /// Logits for `ids` after the positions in `caches` (the last row only when `lastOnly`), their
    /// keys and values appended; the caches are unchanged if it throws.
    func logits(appending ids: [Int], to caches: inout [KVCache], lastOnly: Bool, options: AttentionOptions) throws -> Tensor<Float>
    /// The row `sampling` draws the token after `ids` from (their keys and values appended to
    /// `caches`, which are unchanged if it throws): the last position's logits, exact at least for
    /// the ``Sampling/candidateCount`` most likely tokens; a model may leave the others at −∞, which
    /// changes nothing `sampling` picks. The default is the whole row of
    /// ``logits(appending:to:lastOnly:options:)``.
    func nextTokenLogits(appending ids: [Int], to caches: inout [KVCache], sampling: Sampling, options: AttentionOptions) throws -> [Float]
    /// One step of several sequences, each with its own caches: `pieces[i]` appended to `caches[i]`,
    /// and the last position's logits of each (nil where `needed[i]` is false). A model that batches
    /// (``LlamaModel``) reads each weight once for all of them and checks every sequence before any
    /// cache changes; the default runs the sequences one after another through
    /// ``logits(appending:to:lastOnly:options:)``, so a failing sequence leaves those before it appended.
    func nextTokenLogits(appendingEach pieces: [[Int]], to caches: inout [[KVCache]], needed: [Bool]?, options: AttentionOptions) throws -> [[Float]?]
}

extension AutoregressiveModel {
    /// Each sequence through ``logits(appending:to:lastOnly:options:)`` in turn.
    public func nextTokenLogits(appendingEach pieces: [[Int]], to caches: inout [[KVCache]], needed: [Bool]?,
                                options: AttentionOptions) throws -> [[Float]?] {
        try checkBatch(pieces, caches, needed)
        return try pieces.indices.map { i in
            let row = lastRow(of: try logits(appending: pieces[i], to: &caches[i], lastOnly: true, options: options))
            return needed?[i] ?? true ? Array(row) : nil
        }
    }

    /// Checks that a batched step has one set of caches (and one `needed` flag) per sequence.
    func checkBatch(_ pieces: [[Int]], _ caches: [[KVCache]], _ needed: [Bool]?) throws {
        guard caches.count == pieces.count, needed.map({ $0.count == pieces.count }) ?? true else {
            throw AttentionError.invalidArgument(
                argument: "caches", reason: "need one set of caches (and one needed flag) per sequence: \(pieces.count) sequences, \(caches.count) sets of caches")
        }
    }

    /// The whole last row of ``logits(appending:to:lastOnly:options:)``, whatever `sampling` is.
    public func nextTokenLogits(appending ids: [Int], to caches: inout [KVCache], sampling: Sampling, options: AttentionOptions) throws -> [Float] {
        Array(lastRow(of: try logits(appending: ids, to: &caches, lastOnly: true, options: options)))
    }

    /// Continues `prompt` by up to `maxTokens` tokens (fewer if the model's positions run out, or
    /// after the token `endOfText` if one is given), calling `onToken` with each new token.
    ///
    /// With `useCache` (the default) the prompt runs once and each step feeds only the new token
    /// through the layers' KV caches; without it every step recomputes the whole sequence, O(N²).
    /// `options` (implementation, threads) apply to every step's products and attention.
    public func generate(
        prompt: [Int], maxTokens: Int, sampling: Sampling = .greedy, useCache: Bool = true,
        cacheStorage: KVCache.Storage = .float32, endOfText: Int? = nil, options: AttentionOptions = AttentionOptions(),
        onToken: (Int) throws -> Void = { _ in }
    ) throws -> Generation {
        try sampling.validate()
        guard maxTokens >= 0 else { throw AttentionError.invalidArgument(argument: "maxTokens", reason: "must be at least 0, got \(maxTokens)") }
        guard !prompt.isEmpty else { throw AttentionError.invalidArgument(argument: "prompt", reason: "need at least one token") }
        let budget = min(maxTokens, maximumPositions - prompt.count)
        guard budget >= 0 else {
            throw AttentionError.invalidArgument(argument: "prompt", reason: "\(prompt.count) tokens exceed the model's \(maximumPositions) positions")
        }
        var generator = SplitMix64(seed: sampling.seed)
        guard useCache else {
            var sequence: [Int] = []
            return try sample(after: prompt, budget: budget, requested: maxTokens, sampling: sampling, generator: &generator,
                              endOfText: endOfText, onToken: onToken) {
                sequence += $0
                return Array(self.lastRow(of: try self.logits(sequence, options: options)))
            }
        }
        var caches = try generationCaches(capacity: max(1, min(maximumPositions, prompt.count + budget)), storage: cacheStorage)
        return try generate(appending: prompt, to: &caches, maxTokens: budget, requested: maxTokens, sampling: sampling,
                            generator: &generator, endOfText: endOfText, options: options, onToken: onToken)
    }

    /// Continues the positions in `caches` by `ids` and then by up to `maxTokens` new tokens
    /// (fewer if the caches fill up, or after `endOfText`), drawing from `generator`: the loop of
    /// ``generate(prompt:maxTokens:sampling:useCache:cacheStorage:endOfText:options:onToken:)``,
    /// for callers that keep the caches between calls (a conversation, ``ChatSession``).
    ///
    /// On return the caches hold `ids` and every new token but the last (whose keys and values
    /// the next call appends). ``Generation/promptIDs`` is `ids`.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for no `ids`, `ids` that do
    ///   not fit the caches, or what ``logits(appending:to:lastOnly:options:)`` refuses; the
    ///   caches are then as they were before the failing step.
    public func generate(
        appending ids: [Int], to caches: inout [KVCache], maxTokens: Int, sampling: Sampling, generator: inout SplitMix64,
        endOfText: Int? = nil, options: AttentionOptions = AttentionOptions(), onToken: (Int) throws -> Void = { _ in }
    ) throws -> Generation {
        try generate(appending: ids, to: &caches, maxTokens: maxTokens, requested: maxTokens, sampling: sampling, generator: &generator,
                     endOfText: endOfText, options: options, onToken: onToken)
    }

    /// ``generate(appending:to:maxTokens:sampling:generator:endOfText:options:onToken:)`` for a
    /// caller that asked for `requested` tokens (more than `maxTokens` when the model's positions
    /// cut them), so that the stop reason says which limit ended it.
    private func generate(
        appending ids: [Int], to caches: inout [KVCache], maxTokens: Int, requested: Int, sampling: Sampling, generator: inout SplitMix64,
        endOfText: Int?, options: AttentionOptions, onToken: (Int) throws -> Void
    ) throws -> Generation {
        try sampling.validate()
        guard maxTokens >= 0 else { throw AttentionError.invalidArgument(argument: "maxTokens", reason: "must be at least 0, got \(maxTokens)") }
        guard !ids.isEmpty else { throw AttentionError.invalidArgument(argument: "ids", reason: "need at least one token") }
        let start = caches.first?.count ?? 0, capacity = capacity(of: caches)
        guard start + ids.count <= capacity else {
            throw AttentionError.invalidArgument(
                argument: "ids", reason: "\(ids.count) tokens after \(start) exceed the caches' capacity of \(capacity)")
        }
        // Every new token but the last goes through the caches: they can take capacity - start - ids + 1.
        let budget = min(maxTokens, capacity - start - ids.count + 1)
        return try sample(after: ids, budget: budget, requested: requested, sampling: sampling, generator: &generator,
                          endOfText: endOfText, onToken: onToken) {
            try self.nextTokenLogits(appending: $0, to: &caches, sampling: sampling, options: options)
        }
    }

    /// The positions `caches` can hold in all: the smallest capacity among the caches of the whole
    /// history (a sliding-window ring holds any number of positions), or ``maximumPositions`` when
    /// every cache is a ring.
    public func capacity(of caches: [KVCache]) -> Int {
        caches.filter { $0.slidingWindow == nil }.map(\.capacity).min() ?? maximumPositions
    }

    /// The loop both generate methods run: `logits` gets `ids`, then each new token, and returns
    /// the row of logits to sample; it stops after `budget` tokens or at `endOfText`. `requested`:
    /// the tokens asked for (a budget below it was cut by the context).
    private func sample(
        after ids: [Int], budget: Int, requested: Int, sampling: Sampling, generator: inout SplitMix64, endOfText: Int?,
        onToken: (Int) throws -> Void, logits: ([Int]) throws -> [Float]
    ) throws -> Generation {
        var generated: [Int] = []
        let clock = ContinuousClock()
        var started = clock.now, promptSeconds = 0.0
        var pending = ids
        while generated.count < budget {
            let token = sampling.next(try logits(pending)[...], using: &generator)
            if generated.isEmpty {
                promptSeconds = (clock.now - started).seconds
                started = clock.now
            }
            generated.append(token)
            pending = [token]
            try onToken(token)
            if token == endOfText { break }
        }
        let decodeSeconds = generated.isEmpty ? 0 : (clock.now - started).seconds
        let reason: Generation.StopReason = endOfText != nil && generated.last == endOfText ? .endOfText
            : generated.count >= requested ? .maxTokens : .contextFull
        return Generation(promptIDs: ids, generatedIDs: generated, promptSeconds: promptSeconds, decodeSeconds: decodeSeconds,
                          stopReason: reason)
    }

    private func lastRow(of logits: Tensor<Float>) -> ArraySlice<Float> {
        let v = vocabularySize
        return logits.scalars[(logits.shape[0] - 1) * v..<(logits.shape[0] * v)]
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
