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

    /// The next token for `logits` (one row), drawing from `generator` unless greedy.
    public func next(_ logits: ArraySlice<Float>, using generator: inout SplitMix64) -> Int {
        let start = logits.startIndex
        if temperature == 0 {
            var best = start
            for i in logits.indices where logits[i] > logits[best] { best = i }
            return best - start
        }
        // Candidates by decreasing logit, cut by top-k, then softmax at the temperature, cut by top-p.
        var order = Array(logits.indices)
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if let topK, topK < order.count { order.removeSubrange(topK...) }
        let top = Double(logits[order[0]])
        var weights = order.map { exp((Double(logits[$0]) - top) / temperature) }
        let total = weights.reduce(0, +)
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
}

extension AutoregressiveModel {
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
        var caches = useCache ? try generationCaches(capacity: max(1, min(maximumPositions, prompt.count + budget)), storage: cacheStorage) : []
        var sequence = prompt, generated: [Int] = []
        let clock = ContinuousClock()
        var started = clock.now, promptSeconds = 0.0
        var pending = prompt
        while generated.count < budget {
            let logits = useCache ? try self.logits(appending: pending, to: &caches, lastOnly: true, options: options)
                : try self.logits(sequence, options: options)
            let v = vocabularySize
            let lastRow = logits.scalars[(logits.shape[0] - 1) * v..<(logits.shape[0] * v)]
            let token = sampling.next(lastRow, using: &generator)
            if generated.isEmpty {
                promptSeconds = (clock.now - started).seconds
                started = clock.now
            }
            generated.append(token)
            sequence.append(token)
            pending = [token]
            try onToken(token)
            if token == endOfText { break }
        }
        let decodeSeconds = generated.isEmpty ? 0 : (clock.now - started).seconds
        return Generation(promptIDs: prompt, generatedIDs: generated, promptSeconds: promptSeconds, decodeSeconds: decodeSeconds)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
