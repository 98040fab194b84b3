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
}
