import Attention
import AttentionModels
import Foundation

extension Bench {
    /// `--model FILE.gguf --streams N`: tokens per second of greedy decoding for one stream and for
    /// `streams` streams stepping together (``LlamaModel/nextTokenLogits(appendingEach:to:needed:options:)``,
    /// the step `attention serve` runs), in alternating trials, the median of each.
    ///
    /// Stream i's prompt is "Here is a short story about topic i:"; all prompts are prefilled in
    /// one step, untimed, then `tokens − 1` steps are timed, each giving every stream its next
    /// token. What this leaves out of a server's load (HTTP, prompts joining between steps,
    /// sampling other than greedy) `scripts/serve-load.py` measures end to end.
    func benchStreams(_ path: String, options: AttentionOptions, threads: Int) throws {
        Allocator.reuseLargeBlocks()   // as serve and generate do
        let file = try LlamaFile(path: path, weights: "as-stored")
        let model = file.model, storage = kvDtype ?? .float32, streams = self.streams ?? 8, tokens = self.tokens ?? 48
        let prompts = (0..<streams).map { file.tokenizer.encode("Here is a short story about topic \($0):") }
        let capacity = min(model.configuration.contextLength, prompts.map(\.count).max()! + tokens)

        // Each stream's caches, allocated once and emptied between runs, as a server's slots are.
        var slots = try (0..<streams).map { _ in try model.makeCaches(capacity: capacity, storage: storage) }
        /// Seconds of the timed steps for the first `count` streams, and the tokens they made.
        func decode(_ count: Int) throws -> (seconds: Double, tokens: [[Int]]) {
            var caches = Array(slots[0..<count])
            slots.replaceSubrange(0..<count, with: [[KVCache]](repeating: [], count: count))   // the buffers stay unshared
            defer {
                for s in 0..<count { for layer in caches[s].indices { caches[s][layer].removeAll() } }
                slots.replaceSubrange(0..<count, with: caches)
            }
            var made: [[Int]] = Array(repeating: [], count: count)
            var pieces = Array(prompts[0..<count])
            var start: UInt64 = 0
            var random = SplitMix64(seed: 0)   // greedy draws nothing
            for step in 0..<tokens {
                if step == 1 { start = DispatchTime.now().uptimeNanoseconds }
                let logits = try model.nextTokenLogits(appendingEach: pieces, to: &caches, needed: nil, options: options)
                for s in 0..<count {
                    let best = Sampling.greedy.next((logits[s] ?? [0])[...], using: &random)   // what serve runs
                    made[s].append(best)
                    pieces[s] = [best]
                }
            }
            return (Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9, made)
        }

        var single: [Double] = [], batched: [Double] = []
        var alone: [Int] = [], together: [Int] = []
        for trial in 0...repetitions {   // trial 0 warms up
            let one = try decode(1), many = try decode(streams)
            (alone, together) = (one.tokens[0], many.tokens[0])
            if trial > 0 { single.append(one.seconds); batched.append(many.seconds) }
        }
        let steps = Double(tokens - 1)
        let oneRate = steps / single.sorted()[single.count / 2]
        let manyMedian = batched.sorted()[batched.count / 2]
        let manyRate = Double(streams) * steps / manyMedian
        // Stream 0 makes the same tokens alone and beside the others (int8 products give each row
        // what it gives alone); a Float product may differ at a near-tie, which is worth a word.
        let same = alone == together
        if json {
            print("{\"model\": \"\(URL(fileURLWithPath: path).lastPathComponent)\", \"streams\": \(streams), \"tokens\": \(tokens), \"threads\": \(threads), "
                  + "\"kvDtype\": \"\(storage.rawValue)\", \"oneStreamTokensPerSecond\": \(oneRate), \"tokensPerSecond\": \(manyRate), "
                  + "\"ratio\": \(manyRate / oneRate), \"stepSeconds\": \(manyMedian / steps), \"sameTokens\": \(same)}")
        } else {
            print("\(URL(fileURLWithPath: path).lastPathComponent), \(storage.rawValue) KV cache, \(threads) threads, medians of \(repetitions) alternating runs of \(tokens - 1) timed steps")
            print("1 stream   \(Format.number(oneRate, 1)) tokens/s (\(Format.number(1e3 / oneRate, 2)) ms a step)")
            print("\(streams) streams \(Format.number(manyRate, 1)) tokens/s (\(Format.number(manyMedian / steps * 1e3, 2)) ms a step) = \(Format.number(manyRate / oneRate, 2))x one stream")
            if !same { print("note       stream 0's greedy tokens differ alone and among \(streams) (a near-tie in a Float product?)") }
        }
    }
}
