import Foundation
import _WorkerPool

/// The processors this process may use, asked once: Foundation reads the number from the system on
/// every call (cgroup files on Linux), 21 µs each on a Zen 3 VM, which a decoding step paid on each of
/// its fifty matrix products.
let availableProcessors = ProcessInfo.processInfo.activeProcessorCount

/// Runs `body(item, worker)` for every item in `0..<count` on up to `threads` threads, and at most one
/// per active processor (`worker` stays below both); workers take the next item as they finish one.
/// A caller's per-worker buffers sized for `threads` are therefore enough, and the pool never holds
/// more threads than processors for later loops to wake.
///
/// The threads are the caller and the process's worker pool (`_WorkerPool`), whose threads spin a
/// little while between loops instead of going to sleep: a decoding step runs some sixty loops a
/// few microseconds apart, and waking a sleeping thread for each cost 30-60 µs on a Zen 3 VM, an
/// eighth of the step. A loop started while the pool is busy (another caller's, or a loop inside a
/// loop) runs on Dispatch instead.
func parallelFor(_ count: Int, threads: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
    let workers = max(1, min(threads, count, availableProcessors))
    if workers == 1 {
        for item in 0..<count { body(item, 0) }
        return
    }
    // The body goes to the pool as the address of a local for the duration of the loop, in a
    // struct of its own type: no box for it, and no reabstraction thunk (a heap object) as passing
    // the bare closure to the generic `withUnsafePointer` made. One heap object per loop remains,
    // the context of the thunk `withoutActuallyEscaping` wraps the body in.
    let ran = withoutActuallyEscaping(body) { body in
        withUnsafePointer(to: LoopBody(run: body)) { pointer in
            attention_pool_run(count, workers, { context, item, worker in
                guard let context else { return }
                context.assumingMemoryBound(to: LoopBody.self).pointee.run(item, worker)
            }, UnsafeMutableRawPointer(mutating: pointer)) != 0
        }
    }
    if ran { return }
    let next = ItemCounter()
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            while let item = next.take(below: count) { shared.value(item, worker) }
        }
    }
}

/// A loop's body, handed to the C pool by address for the duration of the loop.
private struct LoopBody {
    let run: (Int, Int) -> Void
}

/// A counter handed out under a lock.
private final class ItemCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func take(below count: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < count else { return nil }
        value += 1
        return value - 1
    }
}

/// Carries a value the caller knows to be safe across the worker threads (pointers into buffers
/// that outlive the parallel loop, each item writing only its own part).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension AttentionOptions {
    /// Runs `body(item)` for every item of `0..<count` on the library's worker threads: up to
    /// ``threads`` of them (every active processor by default), the threads its own loops use.
    ///
    /// For work a caller splits itself, such as the sequences of a batched decoding step, each
    /// running calls of its own with `threads = 1`: one loop over the sequences instead of a
    /// loop inside every call. Items run at once and in any order, so `body` must touch only what
    /// its item owns. After an item throws, the items not yet started are skipped and the first
    /// error is rethrown once the others have finished.
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for `threads` outside
    ///   1...``maximumThreads``; the first error `body` throws.
    public func forEach(_ count: Int, _ body: (Int) throws -> Void) throws {
        let threads = try execution(tiledComputes: false, scalar: Float.self).threads
        let failure = FirstError()
        parallelFor(max(0, count), threads: threads) { item, _ in
            guard !failure.isSet else { return }
            do { try body(item) } catch { failure.record(error) }
        }
        if let error = failure.error { throw error }
    }
}

/// The first error thrown by a loop's items, recorded under a lock.
private final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var first: (any Error)?

    var isSet: Bool { lock.withLock { first != nil } }
    var error: (any Error)? { lock.withLock { first } }
    func record(_ error: any Error) { lock.withLock { if first == nil { first = error } } }
}
