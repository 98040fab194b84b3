import Attention
import Foundation

/// A conversation with a chat model whose key/value caches outlive each answer.
///
/// Every turn renders the whole conversation through the model's chat template (as transformers'
/// `apply_chat_template` does), tokenizes it, and compares the ids with those already in the
/// caches: the common prefix stays (earlier turns are not recomputed), the caches are cut back to
/// it, and only the rest runs through the model before the answer is generated. The prefix is
/// usually everything but the new message; it can be shorter where the template writes an answer
/// otherwise than it was generated (the end-of-turn token and the newline after it), or where
/// the answer's text tokenizes otherwise than its tokens.
///
/// ```swift
/// var chat = try ChatSession(model: llama, tokenizer: tokenizer, template: template, endOfTurn: eos, capacity: 2048)
/// let first = try chat.reply(to: "What does attention compute?", maxTokens: 200) { token in … }
/// let second = try chat.reply(to: "And in one sentence?", maxTokens: 60)
/// // second.reusedTokens: the first turn's tokens, read from the caches.
/// ```
public struct ChatSession {
    /// One answer: its tokens and text, and what it cost.
    public struct Turn: Sendable {
        /// The answer's tokens, the end-of-turn token included if it stopped there.
        public let generatedIDs: [Int]
        /// The answer's text (without the end-of-turn token).
        public let text: String
        /// Tokens of the rendered conversation already in the caches (not recomputed).
        public let reusedTokens: Int
        /// Tokens of the rendered conversation that ran through the model this turn.
        public let newTokens: Int
        /// Seconds for the new tokens (and the answer's first token).
        public let promptSeconds: Double
        /// Seconds for the answer's remaining tokens.
        public let decodeSeconds: Double
        /// Whether the answer ended at the end-of-turn token (not at `maxTokens` or a full cache).
        public let finished: Bool
    }

    /// The model.
    public let model: any AutoregressiveModel
    /// Its tokenizer.
    public let tokenizer: any TextTokenizer
    /// The chat template that renders the conversation.
    public let template: ChatTemplate
    /// The token that ends an answer (SmolLM2: `<|im_end|>`, the file's `eos_token_id`).
    public let endOfTurn: Int?
    /// The messages so far: the system message if one was given, then user and assistant in turn.
    public private(set) var messages: [ChatTemplate.Message]
    /// The tokens whose keys and values the caches hold.
    public private(set) var cachedIDs: [Int] = []
    /// The most tokens a conversation can reach (the caches' capacity).
    public let capacity: Int
    private var caches: [KVCache]
    private var generator: SplitMix64
    private let initialMessages: [ChatTemplate.Message]

    /// A conversation, empty but for `system` (if given), with caches for `capacity` tokens
    /// (allocated now; pages are touched only as the conversation grows) stored as `storage`.
    /// `seed` seeds the sampler across every turn.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` if `capacity` is outside
    ///   1 through the model's positions.
    public init(model: any AutoregressiveModel, tokenizer: any TextTokenizer, template: ChatTemplate, endOfTurn: Int?,
                system: String? = nil, capacity: Int, storage: KVCache.Storage = .float32, seed: UInt64 = 42) throws {
        guard (1...model.maximumPositions).contains(capacity) else {
            throw AttentionError.invalidArgument(argument: "capacity", reason: "must be in 1...\(model.maximumPositions) (the model's positions), got \(capacity)")
        }
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.endOfTurn = endOfTurn
        self.capacity = capacity
        initialMessages = system.map { [ChatTemplate.Message(role: "system", content: $0)] } ?? []
        messages = initialMessages
        caches = try model.generationCaches(capacity: capacity, storage: storage)
        generator = SplitMix64(seed: seed)
    }

    /// The conversation rendered through the template as it would be for a next message,
    /// `message` (with the generation prompt), and its ids.
    public func rendered(adding message: String) throws -> (text: String, ids: [Int]) {
        let text = try template.render(messages + [ChatTemplate.Message(role: "user", content: message)], addGenerationPrompt: true)
        return (text, tokenizer.encode(text))
    }

    /// Answers `message`: renders the conversation with it, runs the tokens not yet in the caches,
    /// and generates up to `maxTokens` tokens (fewer at the end-of-turn token or when the caches are
    /// full), calling `onToken` with each. The message and the answer join ``messages``.
    /// - Throws: `AttentionError.invalidArgument(argument: "message", …)` if the conversation with
    ///   `message` no longer fits the caches (start again with ``reset()``), or what the model
    ///   or `onToken` throws; ``messages`` are then as they were (the caches keep what they
    ///   hold, and ``cachedIDs`` says what that is).
    public mutating func reply(
        to message: String, maxTokens: Int, sampling: Sampling = .greedy, options: AttentionOptions = AttentionOptions(),
        onToken: (Int) throws -> Void = { _ in }
    ) throws -> Turn {
        let ids = try rendered(adding: message).ids
        guard ids.count < capacity else {
            throw AttentionError.invalidArgument(
                argument: "message", reason: "the conversation with it is \(ids.count) tokens and the caches hold \(capacity); reset() starts over")
        }
        var reused = zip(ids, cachedIDs).prefix { $0 == $1 }.count
        if reused == ids.count { reused -= 1 }          // at least one token must run, for the logits
        // The caches are moved out (so that appending does not copy them) and always put back
        // with cachedIDs saying exactly what they hold, whether the turn finishes or throws.
        var caches = self.caches
        self.caches = []
        // A windowed layer's ring can roll back only so far (a few hundred positions); past that,
        // the conversation runs again from its first token.
        var truncated = caches
        do {
            for layer in truncated.indices { try truncated[layer].truncate(to: reused) }
        } catch {
            reused = 0
            for layer in truncated.indices { truncated[layer].removeAll() }
        }
        caches = truncated
        var fed = Array(ids[..<reused])
        defer {
            self.caches = caches
            cachedIDs = Array(fed.prefix(caches.first?.count ?? 0))
        }
        fed = ids
        let run = try model.generate(
            appending: Array(ids[reused...]), to: &caches, maxTokens: maxTokens, sampling: sampling, generator: &generator,
            endOfText: endOfTurn, options: options
        ) { token in
            fed.append(token)
            try onToken(token)
        }
        let answer = run.generatedIDs.filter { $0 != endOfTurn }
        let text = try tokenizer.decode(answer)
        messages += [ChatTemplate.Message(role: "user", content: message), ChatTemplate.Message(role: "assistant", content: text)]
        return Turn(generatedIDs: run.generatedIDs, text: text, reusedTokens: reused, newTokens: ids.count - reused,
                    promptSeconds: run.promptSeconds, decodeSeconds: run.decodeSeconds,
                    finished: endOfTurn != nil && run.generatedIDs.last == endOfTurn)
    }

    /// Forgets every message but the system message, and empties the caches.
    public mutating func reset() {
        messages = initialMessages
        cachedIDs = []
        for layer in caches.indices { caches[layer].removeAll() }
    }
}
