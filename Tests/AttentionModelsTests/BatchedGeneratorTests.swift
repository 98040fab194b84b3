import Attention
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// Batched decoding on SmolLM2-135M-Instruct's GGUF file: a step of several sequences gives each
/// what it gets alone, and the generator's answers do not depend on who else is running.
@Suite("Batched generation", .serialized, .timeLimit(.minutes(5)))
struct BatchedGeneratorTests {
    static func model() throws -> LlamaModel { try SmolLM2Tests.model(.asStored) }

    /// Prompts of awkward lengths: 1 token, a few, over one prefill chunk of 128.
    static func prompts() throws -> [[Int]] {
        let tokenizer = try ByteLevelBPETokenizer(gguf: SmolLM2Tests.file.get())
        let long = String(repeating: "Attention is a weighted average whose weights come from content. ", count: 14)
        return [[1], tokenizer.encode("The capital of France is"), tokenizer.encode("def fibonacci(n):"), tokenizer.encode(long),
                tokenizer.encode("Once upon a time, in a land far away,"), tokenizer.encode("1, 2, 3, 4,"), [42, 7],
                tokenizer.encode("The quick brown fox")]
    }

    /// int8 products round each row's input on its own and sum in integers: a row's logits do not
    /// depend on the other rows. Float products of another number of rows round otherwise
    /// (measured: at most 1.1e-4 for SmolLM2, 3.8e-4 for Gemma 3). Gemma 3 with int8 products is
    /// not bit for bit: its `attn_v` keeps Float products, whose last-bit differences flip some
    /// of the later layers' int8 roundings (measured: logits up to 4.5 apart over the vocabulary).
    @Test("A step of several sequences gives each the logits it gets alone: bit for bit with int8 products, within 1e-3 with float32",
          arguments: [("SmolLM2", QuantizedPrecision.int8, Float(0)), ("SmolLM2", .float32, 1e-3), ("Gemma 3", .float32, 1e-3)])
    func stepMatchesAlone(model name: String, precision: QuantizedPrecision, tolerance: Float) throws {
        let model = try name == "Gemma 3" ? Gemma3ModelTests.model(.asStored) : Self.model()
        let options = AttentionOptions(quantizedPrecision: precision)
        let prompts = try Self.prompts()
        var together = try prompts.map { _ in try model.makeCaches(capacity: 400) }
        let first = try model.nextTokenLogits(appendingEach: prompts, to: &together, needed: nil, options: options)
        // A second step: one token each, and a third piece of several tokens on one sequence.
        let next = prompts.indices.map { $0 == 2 ? [10, 11, 12] : [$0 + 100] }
        let second = try model.nextTokenLogits(appendingEach: next, to: &together, needed: prompts.indices.map { $0 != 1 }, options: options)
        #expect(second[1] == nil)
        for i in prompts.indices {
            var alone = try model.makeCaches(capacity: 400)
            let a = try model.logits(appending: prompts[i], to: &alone, lastOnly: true, options: options)
            #expect(Self.largestDifference(first[i], a.scalars) <= tolerance, "sequence \(i), first step")
            let b = try model.logits(appending: next[i], to: &alone, lastOnly: true, options: options)
            if i != 1 { #expect(Self.largestDifference(second[i], b.scalars) <= tolerance, "sequence \(i), second step") }
            #expect(together[i].map(\.count) == alone.map(\.count))
        }
    }

    static func largestDifference(_ a: [Float]?, _ b: [Float]) -> Float {
        guard let a, a.count == b.count else { return .infinity }
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    @Test("A step checks every sequence before any cache changes")
    func stepChecksFirst() throws {
        let model = try Self.model()
        var caches = try (0..<3).map { _ in try model.makeCaches(capacity: 16) }
        _ = try model.nextTokenLogits(appendingEach: [[1, 2], [3], [4]], to: &caches, needed: nil, options: AttentionOptions())
        let counts = caches.map { $0[0].count }
        for bad in [[[1], [], [2]], [[1], [2], [model.vocabularySize]], [[1], [2], Array(repeating: 5, count: 16)]] {
            #expect(throws: AttentionError.self) { try model.nextTokenLogits(appendingEach: bad, to: &caches, needed: nil, options: AttentionOptions()) }
            #expect(caches.map { $0[0].count } == counts)
        }
        #expect(throws: AttentionError.self) { try model.nextTokenLogits(appendingEach: [[1]], to: &caches, needed: nil, options: AttentionOptions()) }
    }

    /// Runs `requests` on `generator` at once; each one's tokens and stop reason.
    static func run(_ requests: [BatchedGenerator.Request], on generator: BatchedGenerator) async throws -> [([Int], Generation.StopReason)] {
        try await withThrowingTaskGroup(of: (Int, [Int], Generation.StopReason).self) { group in
            for (n, request) in requests.enumerated() {
                let stream = try generator.submit(request)
                group.addTask {
                    var tokens: [Int] = []
                    for try await event in stream {
                        switch event {
                        case let .token(id): tokens.append(id)
                        case let .finished(generation):
                            #expect(generation.generatedIDs == tokens)
                            return (n, tokens, generation.stopReason)
                        }
                    }
                    Issue.record("request \(n) ended without its finished event")
                    return (n, tokens, .maxTokens)
                }
            }
            var results = [([Int], Generation.StopReason)](repeating: ([], .maxTokens), count: requests.count)
            for try await (n, tokens, reason) in group { results[n] = (tokens, reason) }
            return results
        }
    }

    @Test("Eight requests at once get the tokens each gets alone, and generate's tokens; stop tokens and budgets end them")
    func sameAloneOrTogether() async throws {
        let model = try Self.model()
        let prompts = try Self.prompts()
        let requests = prompts.enumerated().map { n, prompt in
            BatchedGenerator.Request(prompt: prompt, maxTokens: 6 + 2 * n,
                                     sampling: n == 3 ? Sampling(temperature: 0.8, topK: 20, seed: 7) : .greedy)
        }
        let batched = try BatchedGenerator(model: model, configuration: .init(slots: 8, capacity: 320))
        defer { batched.shutdown() }
        let together = try await Self.run(requests, on: batched)
        let single = try BatchedGenerator(model: model, configuration: .init(slots: 1, capacity: 320))
        defer { single.shutdown() }
        for (n, request) in requests.enumerated() {
            let alone = try await Self.run([request], on: single)[0]
            #expect(together[n].0 == alone.0, "request \(n)")
            #expect(together[n].1 == .maxTokens && together[n].0.count == request.maxTokens)
            if request.prompt.count <= 128 {      // one prefill chunk, as generate runs it
                let reference = try model.generate(prompt: request.prompt, maxTokens: request.maxTokens, sampling: request.sampling)
                #expect(reference.generatedIDs == together[n].0, "request \(n) against generate")
            }
        }
        // A stop token ends the answer after it; a prompt near the capacity ends at the context.
        let stop = together[1].0[2]
        let ended = try await Self.run([BatchedGenerator.Request(prompt: prompts[1], maxTokens: 20, stopTokens: [stop]),
                                        BatchedGenerator.Request(prompt: Array(repeating: 5, count: 318), maxTokens: 20),
                                        BatchedGenerator.Request(prompt: prompts[2], maxTokens: 0)], on: batched)
        #expect(ended[0].0 == Array(together[1].0.prefix(3)) && ended[0].1 == .endOfText)
        #expect(ended[1].0.count == 3 && ended[1].1 == .contextFull)
        #expect(ended[2].0.isEmpty && ended[2].1 == .maxTokens)
        let statistics = batched.currentStatistics
        #expect(statistics.finished == 11 && statistics.running == 0 && statistics.queued == 0)
        #expect(statistics.generatedTokens == requests.map(\.maxTokens).reduce(0, +) + 3 + 3)
    }

    @Test("A slot's caches start at its request's size and grow with it, and the next request in the slot starts small again: the tokens stay generate's")
    func cachesGrowWithTheSequence() async throws {
        let model = try Self.model()
        let prompts = try Self.prompts()
        // Two slots, three requests: the short ones' positions pass 64 and 128 while they decode (the
        // caches are copied into larger ones twice); the long prompt (over 128 tokens) starts above
        // 64; the third request takes the slot of the first to end, whose caches had grown.
        let requests = [prompts[4], prompts[3], prompts[1]].map { BatchedGenerator.Request(prompt: $0, maxTokens: 90) }
        #expect(requests[0].prompt.count < BatchedGenerator.initialSlotCapacity && requests[1].prompt.count > 128)
        let generator = try BatchedGenerator(model: model, configuration: .init(slots: 2, capacity: 400))
        defer { generator.shutdown() }
        let first = try await Self.run(requests, on: generator)
        for (n, request) in requests.enumerated() {
            #expect(first[n].0.count == 90 && first[n].1 == .maxTokens, "request \(n)")
            if request.prompt.count <= 128 {
                let reference = try model.generate(prompt: request.prompt, maxTokens: request.maxTokens, sampling: request.sampling)
                #expect(reference.generatedIDs == first[n].0, "request \(n) against generate")
            }
        }
        // Again, in slots whose caches have grown: the same tokens.
        let again = try await Self.run(requests.reversed(), on: generator)
        #expect(again.reversed().map(\.0) == first.map(\.0))
    }

    @Test("Bad requests, a full queue and a shut-down generator are refused by name; a consumer that stops frees its slot")
    func refusals() async throws {
        let model = try Self.model()
        for (configuration, argument) in [(BatchedGenerator.Configuration(slots: 0, capacity: 64), "slots"), (.init(slots: 1025, capacity: 64), "slots"),
                                          (.init(capacity: 64, queueLimit: 0), "queueLimit"), (.init(capacity: 64, prefillChunk: -1), "prefillChunk"),
                                          (.init(capacity: 0), "capacity"), (.init(capacity: model.maximumPositions + 1), "capacity"),
                                          (.init(capacity: 64, options: AttentionOptions(threads: 0)), "threads")] {
            #expect { try BatchedGenerator(model: model, configuration: configuration) } throws: { error in
                guard case let AttentionError.invalidArgument(name, _) = error else { return false }
                return name == argument
            }
        }
        // A prefill chunk of Int.max reads a prompt in one step.
        let whole = try BatchedGenerator(model: model, configuration: .init(slots: 1, capacity: 64, prefillChunk: .max))
        #expect(try await Self.collect(whole.submit(.init(prompt: [1, 2, 3], maxTokens: 2))).count == 2)
        whole.shutdown()

        let generator = try BatchedGenerator(model: model, configuration: .init(slots: 1, capacity: 64, queueLimit: 1))
        func refusal(_ request: BatchedGenerator.Request) -> BatchedGenerator.SubmitError? {
            do { _ = try generator.submit(request); return nil } catch { return error }
        }
        #expect(refusal(.init(prompt: [], maxTokens: 1)) == .invalid(argument: "prompt", reason: "need at least one token"))
        #expect(refusal(.init(prompt: Array(repeating: 1, count: 65), maxTokens: 1))
                == .invalid(argument: "prompt", reason: "65 tokens leave no room for an answer in 64 positions"))
        #expect(refusal(.init(prompt: [1], maxTokens: -1)) == .invalid(argument: "maxTokens", reason: "must be at least 0, got -1"))
        #expect(refusal(.init(prompt: [-1], maxTokens: 1))
                == .invalid(argument: "prompt", reason: "token id -1 is outside the vocabulary of \(model.vocabularySize)"))
        #expect(refusal(.init(prompt: [1], maxTokens: 1, sampling: Sampling(temperature: .nan)))?.description.hasPrefix("temperature") == true)

        // One request runs (a long one), one waits, the third is refused; the running one's consumer
        // stops after two tokens and the waiting one then runs to its end. The generator waits after
        // each step until the consumer lets it go on, so the order holds on a machine of any speed.
        let gate = StepGate()
        generator.observeSteps { _ in gate.hold() }
        let waiting: AsyncThrowingStream<BatchedGenerator.Event, any Error>
        do {
            // The stream is released at the end of this block: that cancels the request.
            let long = try generator.submit(.init(prompt: [1, 2, 3], maxTokens: 60))
            while generator.currentStatistics.running == 0 { try await Task.sleep(for: .milliseconds(2)) }
            waiting = try generator.submit(.init(prompt: [1, 2], maxTokens: 3))
            #expect(refusal(.init(prompt: [1], maxTokens: 1)) == .queueFull(limit: 1))
            var events = long.makeAsyncIterator(), seen = 0
            while seen < 2 {
                gate.allow()                    // the step whose token comes next may hand it over
                guard let event = try await events.next() else { break }
                if case .token = event { seen += 1 }
            }
            #expect(seen == 2)
        }
        generator.observeSteps { _ in }
        gate.allow()                            // the step held now ends; the cancellation takes effect before the next
        let rest = try await Self.collect(waiting)
        #expect(rest.count == 3)
        // The waiting request's 3 tokens and the cancelled one's 2, or 3 if its next step began before
        // the cancellation arrived; never more.
        #expect((5...6).contains(generator.currentStatistics.generatedTokens), "the cancelled request went on: \(generator.currentStatistics)")
        generator.shutdown()
        #expect(refusal(.init(prompt: [1], maxTokens: 1)) == .shutDown)
    }

    static func collect(_ stream: AsyncThrowingStream<BatchedGenerator.Event, any Error>) async throws -> [Int] {
        var tokens: [Int] = []
        for try await event in stream { if case let .token(id) = event { tokens.append(id) } }
        return tokens
    }
}
