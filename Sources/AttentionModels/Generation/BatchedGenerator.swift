import Attention
import Foundation

/// Generates for many requests at once: the sequences in flight advance together, one step of the
/// model for all of them, so that each weight is read once per step for every sequence (continuous
/// batching). A request joins between steps when a slot is free and leaves as soon as it ends or
/// its consumer stops listening; its prompt runs in chunks of ``Configuration/prefillChunk`` tokens,
/// a chunk a step, beside the others' single tokens.
///
/// Each slot has its own key/value caches, sized to its sequence: a request's caches start at
/// ``initialSlotCapacity`` positions (or its first prompt chunk's) and double as it grows, up to
/// ``Configuration/capacity`` (`KVCache.resized(capacity:)`). Caches of the whole capacity spread
/// each sequence's few keys over megabytes: on an AMD Zen 4 that made a step's attention over eight
/// short sequences 40% slower than over caches of their size. A model whose caches include
/// sliding-window rings (Gemma 3) keeps caches of the whole capacity, allocated once and reused.
///
/// A request's prompt always runs in the same chunks, and int8 products give each row what that row alone gives (each row's input is rounded on its own,
/// the sums are integers): with int8 products on every matrix (SmolLM2's Q4_1 and Q8_0), a
/// request's tokens do not depend on what runs beside it, bit for bit; the tests check it. Float
/// products (`--precision float32`, Gemma 3's `attn_v`) round a little differently for another
/// number of rows, which can move a token where two are nearly tied.
///
/// The model runs on a thread of its own (the steps are long, blocking computations); ``submit(_:)``
/// may be called from anywhere and returns the request's tokens as an asynchronous stream.
///
/// ```swift
/// let generator = try BatchedGenerator(model: llama, configuration: .init(slots: 8, capacity: 2048))
/// for try await event in try generator.submit(.init(prompt: ids, maxTokens: 64, stopTokens: [eos])) {
///     if case let .token(id) = event { print(try tokenizer.decode([id]), terminator: "") }
/// }
/// generator.shutdown()
/// ```
public final class BatchedGenerator: @unchecked Sendable {
    /// How many sequences run together, how long each can be, and how much may wait.
    public struct Configuration: Sendable {
        /// Sequences decoded together (each a slot with its own caches).
        public var slots: Int
        /// Positions per slot: the longest prompt plus answer (at most the model's positions).
        public var capacity: Int
        /// Requests that may wait for a slot; ``submit(_:)`` refuses more (``SubmitError/queueFull(limit:)``).
        public var queueLimit: Int
        /// Prompt tokens a sequence runs per step: a long prompt takes several steps, so that the
        /// other sequences' next tokens are not held up for all of it.
        public var prefillChunk: Int
        /// How the caches store keys and values.
        public var storage: KVCache.Storage
        /// The products' and attention's options (threads, precision) for every step.
        public var options: AttentionOptions

        /// A configuration; ``BatchedGenerator/init(model:configuration:)`` checks it.
        public init(slots: Int = 8, capacity: Int, queueLimit: Int = 64, prefillChunk: Int = 128,
                    storage: KVCache.Storage = .float32, options: AttentionOptions = AttentionOptions()) {
            self.slots = slots
            self.capacity = capacity
            self.queueLimit = queueLimit
            self.prefillChunk = prefillChunk
            self.storage = storage
            self.options = options
        }
    }

    /// What to generate.
    public struct Request: Sendable {
        /// The prompt's tokens (at least one; fewer than the slots' capacity).
        public var prompt: [Int]
        /// The most tokens to generate.
        public var maxTokens: Int
        /// How each token is chosen (its seed makes a sampled answer repeatable).
        public var sampling: Sampling
        /// Tokens that end the answer (end of text, end of turn); the stopping token is delivered.
        public var stopTokens: Set<Int>

        /// A request of `prompt` for up to `maxTokens` tokens.
        public init(prompt: [Int], maxTokens: Int, sampling: Sampling = .greedy, stopTokens: Set<Int> = []) {
            self.prompt = prompt
            self.maxTokens = maxTokens
            self.sampling = sampling
            self.stopTokens = stopTokens
        }
    }

    /// What a request's stream delivers: each new token, then how it ended.
    public enum Event: Sendable {
        /// A new token.
        case token(Int)
        /// The end: the request's ``Generation`` (`promptSeconds` counts from the submission, the
        /// wait for a slot included: the time to the first token).
        case finished(Generation)
    }

    /// Why ``submit(_:)`` refused a request.
    public enum SubmitError: Error, Equatable, CustomStringConvertible {
        /// As many requests as ``Configuration/queueLimit`` wait already.
        case queueFull(limit: Int)
        /// The request cannot run: `argument` and why.
        case invalid(argument: String, reason: String)
        /// ``shutdown()`` was called.
        case shutDown

        /// What went wrong, for a message.
        public var description: String {
            switch self {
            case let .queueFull(limit): "\(limit) requests are waiting already; try again later"
            case let .invalid(argument, reason): "\(argument): \(reason)"
            case .shutDown: "the generator is shutting down"
            }
        }
    }

    /// Counts for a `/metrics` page or a log line.
    public struct Statistics: Sendable, Equatable {
        /// Requests waiting for a slot.
        public var queued = 0
        /// Requests in slots (prefilling or decoding).
        public var running = 0
        /// Steps run so far.
        public var steps = 0
        /// Tokens generated so far, over all requests.
        public var generatedTokens = 0
        /// Prompt tokens run so far.
        public var promptTokens = 0
        /// Requests finished (ended, or cancelled by their consumer).
        public var finished = 0
    }

    /// What one step did, for a step-latency histogram.
    public struct StepReport: Sendable {
        /// Sequences in the step.
        public let sequences: Int
        /// Prompt tokens it ran.
        public let promptTokens: Int
        /// Tokens it generated.
        public let newTokens: Int
        /// Its length: the model's step, sampling and delivery.
        public let duration: Duration
    }

    /// The most slots a generator has: each may hold caches for the whole capacity.
    public static let maximumSlots = 1024

    /// Positions a slot's caches hold when a request takes it (see the type's discussion), or the
    /// request's first prompt chunk if longer; at most ``Configuration/capacity``.
    public static let initialSlotCapacity = 64

    /// The model.
    public let model: any AutoregressiveModel
    /// The configuration it runs with.
    public let configuration: Configuration

    private struct Waiting {
        let id: Int
        let request: Request
        let continuation: AsyncThrowingStream<Event, any Error>.Continuation
        let submitted: ContinuousClock.Instant
    }

    /// A request in a slot: what the loop thread alone reads and writes.
    private struct Running {
        let waiting: Waiting
        var fed = 0                     // prompt tokens already in the caches
        var generated: [Int] = []
        var generator: SplitMix64
        var firstToken: ContinuousClock.Instant?
        var budget: Int
    }

    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [Waiting] = []
    private var cancelled: Set<Int> = []
    private var stopping = false
    private var nextID = 0
    private var statistics = Statistics()
    private var thread: Thread?
    private var stepObserver: (@Sendable (StepReport) -> Void)?

    /// A generator of `model`'s tokens with `configuration.slots` slots, whose thread starts now and
    /// runs (keeping the generator alive) until ``shutdown()``.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for a slot count, queue limit or
    ///   prefill chunk below 1, more than ``maximumSlots`` slots, a capacity outside 1 through the model's positions, or options this
    ///   CPU cannot run; what the model throws for its caches.
    public init(model: any AutoregressiveModel, configuration: Configuration) throws {
        for (name, value) in [("slots", configuration.slots), ("queueLimit", configuration.queueLimit), ("prefillChunk", configuration.prefillChunk)] where value < 1 {
            throw AttentionError.invalidArgument(argument: name, reason: "must be at least 1, got \(value)")
        }
        guard configuration.slots <= Self.maximumSlots else {
            throw AttentionError.invalidArgument(argument: "slots", reason: "must be at most \(Self.maximumSlots), got \(configuration.slots)")
        }
        guard (1...model.maximumPositions).contains(configuration.capacity) else {
            throw AttentionError.invalidArgument(
                argument: "capacity", reason: "must be in 1...\(model.maximumPositions) (the model's positions), got \(configuration.capacity)")
        }
        try configuration.options.validate(for: Float.self)
        self.model = model
        self.configuration = configuration
        // Caches of the whole capacity are made here, so that a capacity beyond memory is refused
        // now; a model without rings then gets caches of each sequence's size (see above).
        let whole = try model.generationCaches(capacity: configuration.capacity, storage: configuration.storage)
        let grows = whole.allSatisfy { $0.slidingWindow == nil }
        let caches = try (0..<configuration.slots).map { slot in
            grows ? [] : slot == 0 ? whole : try model.generationCaches(capacity: configuration.capacity, storage: configuration.storage)
        }
        // The thread takes the caches from a box it empties: a reference kept in the closure made
        // each cache's first append copy its storage (Gemma 3, eight slots: 0.7 GB more resident,
        // 0.6 s to the first token).
        let handoff = Handoff(caches)
        let thread = Thread { [self] in run(caches: handoff.take(), grows: grows) }
        thread.name = "attention-batched-generator"
        self.thread = thread
        thread.start()
    }

    /// Queues `request` and returns its events: each new token, then ``Event/finished(_:)``. Ending
    /// the iteration early (or cancelling its task) cancels the request and frees its slot before
    /// the next step.
    /// - Throws: ``SubmitError/invalid(argument:reason:)`` for no prompt, a prompt the slots cannot
    ///   hold with one new token, a negative `maxTokens`, a token outside the vocabulary or bad
    ///   sampling settings; ``SubmitError/queueFull(limit:)``; ``SubmitError/shutDown``.
    public func submit(_ request: Request) throws(SubmitError) -> AsyncThrowingStream<Event, any Error> {
        try check(request)
        let (stream, continuation) = AsyncThrowingStream<Event, any Error>.makeStream()
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { throw .shutDown }
        guard queue.count < configuration.queueLimit else { throw .queueFull(limit: configuration.queueLimit) }
        let id = nextID
        nextID += 1
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.cancel(id) }
        }
        queue.append(Waiting(id: id, request: request, continuation: continuation, submitted: ContinuousClock().now))
        statistics.queued = queue.count
        condition.signal()
        return stream
    }

    /// Calls `observer` after every step, on the generator's thread (it must return quickly),
    /// instead of the observer given before.
    public func observeSteps(_ observer: @escaping @Sendable (StepReport) -> Void) {
        condition.lock()
        stepObserver = observer
        condition.unlock()
    }

    /// The counts now.
    public var currentStatistics: Statistics {
        condition.lock()
        defer { condition.unlock() }
        return statistics
    }

    /// Cancels every queued and running request (their streams end with `CancellationError`) and
    /// stops the thread after the step it is in; later submissions are refused. Waits for the thread.
    public func shutdown() {
        condition.lock()
        stopping = true
        let thread = self.thread
        condition.signal()
        condition.unlock()
        guard let thread, thread != Thread.current else { return }
        while !thread.isFinished { usleep(1_000) }
    }

    private func check(_ request: Request) throws(SubmitError) {
        let prompt = request.prompt
        guard !prompt.isEmpty else { throw .invalid(argument: "prompt", reason: "need at least one token") }
        let room = min(configuration.capacity, model.maximumPositions - 1)
        guard prompt.count <= room else {
            throw .invalid(argument: "prompt", reason: "\(prompt.count) tokens leave no room for an answer in \(configuration.capacity) positions")
        }
        guard request.maxTokens >= 0 else { throw .invalid(argument: "maxTokens", reason: "must be at least 0, got \(request.maxTokens)") }
        if let bad = prompt.first(where: { !(0..<model.vocabularySize).contains($0) }) {
            throw .invalid(argument: "prompt", reason: "token id \(bad) is outside the vocabulary of \(model.vocabularySize)")
        }
        do {
            try request.sampling.validate()
        } catch let AttentionError.invalidArgument(argument, reason) {
            throw .invalid(argument: argument, reason: reason)
        } catch {
            throw .invalid(argument: "sampling", reason: "\(error)")
        }
    }

    private func cancel(_ id: Int) {
        condition.lock()
        cancelled.insert(id)
        condition.signal()
        condition.unlock()
    }

    /// The loop: admit, step, deliver, until ``shutdown()``.
    private func run(caches: consuming [[KVCache]], grows: Bool) {
        var slots = [Running?](repeating: nil, count: configuration.slots)
        let clock = ContinuousClock()
        while true {
            // Between steps: drop what was cancelled, fill free slots from the queue.
            condition.lock()
            while !stopping && queue.isEmpty && slots.allSatisfy({ $0 == nil }) { condition.wait() }
            if stopping {
                let everyone = queue.map(\.continuation) + slots.compactMap { $0?.waiting.continuation }
                queue = []
                statistics.queued = 0
                statistics.running = 0
                condition.unlock()
                for continuation in everyone { continuation.finish(throwing: CancellationError()) }
                return
            }
            var admitted: [Int] = []
            for s in slots.indices where slots[s].map({ cancelled.contains($0.waiting.id) }) ?? false {
                cancelled.remove(slots[s]!.waiting.id)
                slots[s] = nil
                statistics.finished += 1
            }
            let dropped = queue.filter { cancelled.contains($0.id) }
            queue.removeAll { cancelled.contains($0.id) }
            cancelled.subtract(dropped.map(\.id))
            statistics.finished += dropped.count
            for s in slots.indices where slots[s] == nil && !queue.isEmpty {
                let waiting = queue.removeFirst()
                let r = waiting.request
                let budget = min(r.maxTokens, configuration.capacity - r.prompt.count + 1, model.maximumPositions - r.prompt.count)
                slots[s] = Running(waiting: waiting, generator: SplitMix64(seed: r.sampling.seed), budget: budget)
                admitted.append(s)
            }
            statistics.queued = queue.count
            statistics.running = slots.count { $0 != nil }
            condition.unlock()
            // A slot's caches are emptied once, when a request takes it (made anew for it below, if they grow).
            for s in admitted { for layer in caches[s].indices { caches[s][layer].removeAll() } }

            // Events go out after the step's counts are recorded, so that a consumer who has seen
            // its request end finds it counted. Requests with nothing to generate end at once.
            var outbox: [(AsyncThrowingStream<Event, any Error>.Continuation, Event)] = []
            var ended: [Int] = []
            for s in slots.indices where slots[s]?.budget == 0 {
                ended.append(slots[s]!.waiting.id)
                outbox.append(end(&slots[s], reason: slots[s]!.waiting.request.maxTokens == 0 ? .maxTokens : .contextFull, clock: clock))
            }
            let active = slots.indices.filter { slots[$0] != nil }
            guard !active.isEmpty else {
                record(ended: ended, promptTokens: 0, newTokens: 0, running: 0, stepped: false)
                send(outbox)
                continue
            }

            // One step: a prompt chunk for each sequence still prefilling, the last token for the others.
            var pieces: [[Int]] = [], needed: [Bool] = []
            for s in active {
                let running = slots[s]!, prompt = running.waiting.request.prompt
                if running.fed < prompt.count {
                    let end = running.fed + min(prompt.count - running.fed, configuration.prefillChunk)
                    pieces.append(Array(prompt[running.fed..<end]))
                    needed.append(end == prompt.count)
                } else {
                    pieces.append([running.generated.last!])
                    needed.append(true)
                }
            }
            let stepStart = clock.now
            var stepCaches = active.map { caches[$0] }
            for s in active { caches[s] = [] }                  // moved out: appending does not copy them
            let rows: [[Float]?]
            do {
                if grows {
                    for (n, s) in active.enumerated() { try fit(&stepCaches[n], toHold: pieces[n].count, anew: admitted.contains(s)) }
                }
                rows = try model.nextTokenLogits(appendingEach: pieces, to: &stepCaches, needed: needed, options: configuration.options)
            } catch {
                // A model that refuses a checked request is a bug; end every request in the step with it.
                for (n, s) in active.enumerated() {
                    caches[s] = stepCaches[n]
                    ended.append(slots[s]!.waiting.id)
                    slots[s]!.waiting.continuation.finish(throwing: error)
                    slots[s] = nil
                }
                record(ended: ended, promptTokens: 0, newTokens: 0, running: 0, stepped: true)
                continue
            }
            for (n, s) in active.enumerated() { caches[s] = stepCaches[n] }

            // Deliver: a token for each sequence that has logits, and the ends.
            var promptTokens = 0, newTokens = 0
            for (n, s) in active.enumerated() {
                promptTokens += slots[s]!.fed < slots[s]!.waiting.request.prompt.count ? pieces[n].count : 0
                slots[s]!.fed = min(slots[s]!.waiting.request.prompt.count, slots[s]!.fed + pieces[n].count)
                guard let row = rows[n] else { continue }
                let request = slots[s]!.waiting.request
                let token = request.sampling.next(row[...], using: &slots[s]!.generator)
                if slots[s]!.firstToken == nil { slots[s]!.firstToken = clock.now }
                slots[s]!.generated.append(token)
                newTokens += 1
                outbox.append((slots[s]!.waiting.continuation, .token(token)))
                let reason: Generation.StopReason? = request.stopTokens.contains(token) ? .endOfText
                    : slots[s]!.generated.count < slots[s]!.budget ? nil
                    : slots[s]!.generated.count >= request.maxTokens ? .maxTokens : .contextFull
                if let reason {
                    ended.append(slots[s]!.waiting.id)
                    outbox.append(end(&slots[s], reason: reason, clock: clock))
                }
            }
            let observer = record(ended: ended, promptTokens: promptTokens, newTokens: newTokens, running: slots.count { $0 != nil }, stepped: true)
            // Observed before the events go out, as the counts are recorded: a consumer who has seen
            // its request end finds the step in both.
            observer?(StepReport(sequences: active.count, promptTokens: promptTokens, newTokens: newTokens, duration: clock.now - stepStart))
            send(outbox)
        }
    }

    /// The slots' caches on their way to the generator's thread, which takes them whole.
    private final class Handoff: @unchecked Sendable {
        private var caches: [[KVCache]]
        init(_ caches: [[KVCache]]) { self.caches = caches }
        /// The caches, leaving none here.
        func take() -> [[KVCache]] {
            defer { caches = [] }
            return caches
        }
    }

    /// Makes `caches` (a model's without rings) hold `more` positions after theirs. With `anew` (a
    /// request just took the slot; they are empty): caches of ``initialSlotCapacity`` positions, or
    /// `more`, unless they are that size already. Else, when they are full: copies with room for
    /// twice as many, or enough. At most the configured capacity, which every request fits
    /// (``submit(_:)`` checks).
    private func fit(_ caches: inout [KVCache], toHold more: Int, anew: Bool) throws {
        let length = caches.first?.count ?? 0, held = caches.first?.capacity ?? 0
        if anew || caches.isEmpty {
            let capacity = min(configuration.capacity, max(Self.initialSlotCapacity, more))
            if capacity != held { caches = try model.generationCaches(capacity: capacity, storage: configuration.storage) }
            return
        }
        guard length + more > held else { return }
        let capacity = min(configuration.capacity, max(length + more, 2 * held))
        caches = try caches.map { try $0.resized(capacity: capacity) }
    }

    private func send(_ outbox: [(AsyncThrowingStream<Event, any Error>.Continuation, Event)]) {
        for (continuation, event) in outbox {
            continuation.yield(event)
            if case .finished = event { continuation.finish() }
        }
    }

    /// Adds a step's counts to ``currentStatistics``; requests that `ended` no longer need cancelling.
    /// Returns the step observer.
    @discardableResult
    private func record(ended: [Int], promptTokens: Int, newTokens: Int, running: Int, stepped: Bool) -> (@Sendable (StepReport) -> Void)? {
        condition.lock()
        defer { condition.unlock() }
        if stepped { statistics.steps += 1 }
        statistics.promptTokens += promptTokens
        statistics.generatedTokens += newTokens
        statistics.finished += ended.count
        statistics.running = running
        cancelled.subtract(ended)
        return stepObserver
    }

    /// Frees `slot` (which must hold a request) and returns its last event: how it ended, by `reason`.
    private func end(_ slot: inout Running?, reason: Generation.StopReason, clock: ContinuousClock)
        -> (AsyncThrowingStream<Event, any Error>.Continuation, Event) {
        let running = slot!
        let now = clock.now, first = running.firstToken ?? now
        let generation = Generation(
            promptIDs: running.waiting.request.prompt, generatedIDs: running.generated,
            promptSeconds: (first - running.waiting.submitted).seconds, decodeSeconds: (now - first).seconds, stopReason: reason)
        slot = nil
        return (running.waiting.continuation, .finished(generation))
    }
}
