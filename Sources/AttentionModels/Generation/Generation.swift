import Attention
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

    /// The next token for `logits` (one row), drawing from `generator` unless greedy.
    public func next(_ logits: ArraySlice<Float>, using generator: inout SplitMix64) -> Int {
        let start = logits.startIndex
        if temperature == 0 { return logits.withUnsafeBufferPointer(Self.firstLargest) }
        // Candidates by decreasing logit (the lower index first on ties), cut by top-k, then
        // softmax at the temperature, cut by top-p. Sorting a whole vocabulary every step costs
        // milliseconds, so with a cut only the tokens within a factor 1e-9 of the most likely are
        // sorted when that provably gives the same candidates: at least top-k of them, or
        // enough probability among them to reach top-p. Otherwise (no cut, or p near 1) all.
        // validate() refuses a topK below 1; here, not throwing, it is brought into 1...count.
        let topK = self.topK.map { $0.clamped(to: 1...Swift.max(1, logits.count)) }
        let top = logits.max() ?? 0
        let scale = 1 / temperature
        func weight(_ i: Int) -> Double { exp((Double(logits[i]) - Double(top)) * scale) }
        func byLogit(_ a: Int, _ b: Int) -> Bool { logits[a] > logits[b] || (logits[a] == logits[b] && a < b) }
        // The sum over every token, which top-p (without top-k) divides by.
        let everything = topK == nil ? logits.indices.reduce(0.0) { $0 + weight($1) } : 0
        let floor = Float(Double(top) - 9 * log(10.0) * temperature)   // weight 1e-9
        if topK == nil, (topP ?? 1) >= 1 {
            // No cut (top-p 1 cuts nothing but rounding's crumbs): the draw walks the tokens by
            // decreasing logit until it has passed u. It almost always stops among those within a
            // factor 1e-9 of the most likely, so those are sorted first, and the others only when u
            // passes them all. (Sorting a whole vocabulary took 30 ms a token for Gemma 3's 262,144,
            // at OpenAI's default temperature of 1.) u is drawn against the sum of every weight.
            var u = generator.nextUnit() * everything, last = start
            for likely in [true, false] {
                var order = logits.indices.filter { (logits[$0] >= floor) == likely }
                order.sort(by: byLogit)
                for i in order {
                    u -= weight(i)
                    if u < 0 { return i - start }
                    last = i
                }
            }
            return last - start   // rounding left u at 0: the last token
        }
        var order: [Int] = []
        if topK != nil || topP != nil {
            order = logits.indices.filter { logits[$0] >= floor }
            let enough: Bool
            if let topK {
                enough = order.count >= min(topK, logits.count)
            } else {
                enough = order.reduce(0.0) { $0 + weight($1) } >= (topP ?? 1) * everything
            }
            if !enough { order = Array(logits.indices) }
        } else {
            order = Array(logits.indices)
        }
        order.sort(by: byLogit)
        if let topK, topK < order.count { order.removeSubrange(topK...) }
        var weights = order.map(weight)
        let total = topK == nil ? everything : weights.reduce(0, +)
        if let topP {
            var cumulative = 0.0, keep = weights.count
            for (n, w) in weights.enumerated() {
                cumulative += w / total
                if cumulative >= topP { keep = n + 1; break }
            }
            weights.removeSubrange(keep...)
        }
        var u = generator.nextUnit() * weights.reduce(0, +)
        for (n, w) in weights.enumerated() {
            u -= w
            if u < 0 { return order[n] - start }
        }
        return order[weights.count - 1] - start
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
