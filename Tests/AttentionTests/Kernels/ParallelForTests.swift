import Attention
import AttentionTestSupport
import Foundation
import Testing

/// How many threads a parallel loop really starts.
@Suite("Parallel loops")
struct ParallelForTests {
    /// The threads of this process, from the kernel's own count.
    static func threadCount() throws -> Int? {
        #if os(Linux)
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("Threads:") }
        return line.flatMap { Int($0.dropFirst("Threads:".count).trimmingCharacters(in: .whitespaces)) }
        #else
        return nil
        #endif
    }

    @Test("A call asked for 1024 threads gives the result of 2, and leaves no crowd of pool threads behind (at most one per processor)")
    func oversubscribed() throws {
        let q = try Tensor<Float>.randomNormal(shape: [1, 64, 256, 16], seed: 1)
        let k = try Tensor<Float>.randomNormal(shape: [1, 64, 256, 16], seed: 2)
        let v = try Tensor<Float>.randomNormal(shape: [1, 64, 256, 16], seed: 3)
        let many = try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal, options: AttentionOptions(threads: 1024))
        let two = try scaledDotProductAttention(query: q, key: k, value: v, mask: .causal, options: AttentionOptions(threads: 2))
        #expect(maxAbsDifference(many.output.scalars, two.output.scalars) <= 1e-5)
        // Before the cap, the pool kept 255 threads after such a call and woke them all for every
        // later loop. The test process runs well under a hundred threads of its own.
        if let threads = try Self.threadCount() {
            #expect(threads < 200, "the process has \(threads) threads after a call asked for 1024")
        }
    }

    @Test("forEach runs every item once, on up to the options' threads; after an item throws it rethrows the first error; bad threads are refused")
    func forEach() throws {
        let lock = NSLock()
        for (count, threads) in [(0, 2), (1, 2), (7, 1), (97, 2), (97, 8)] {
            var seen = [Int](repeating: 0, count: count)
            var threadIDs = Set<ObjectIdentifier>()
            try AttentionOptions(threads: threads).forEach(count) { item in
                lock.withLock {
                    seen[item] += 1
                    threadIDs.insert(ObjectIdentifier(Thread.current))
                }
            }
            #expect(seen == [Int](repeating: 1, count: count), "\(count) items on \(threads) threads")
            #expect(threadIDs.count <= max(1, threads))
        }
        struct Failure: Error, Equatable { let item: Int }
        var ran = 0
        #expect(throws: Failure(item: 3)) {
            try AttentionOptions(threads: 1).forEach(10) { item in
                ran += 1
                if item >= 3 { throw Failure(item: item) }
            }
        }
        #expect(ran == 4, "items after the failing one are skipped")
        #expect(throws: AttentionError.invalidArgument(argument: "threads", reason: "must be in 1...1024, got 0")) {
            try AttentionOptions(threads: 0).forEach(3) { _ in }
        }
    }
}
