import Foundation

/// The processors this process may use, asked once: Foundation reads the number from the system on
/// every call (cgroup files on Linux), 21 µs each on a Zen 3 VM, which a decoding step paid on each of
/// its fifty matrix products.
let availableProcessors = ProcessInfo.processInfo.activeProcessorCount

/// Runs `body(item, worker)` for every item in `0..<count` on up to `threads` threads; workers take
/// the next item as they finish one (items are coarse, so the lock costs nothing measurable).
func parallelFor(_ count: Int, threads: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
    let workers = max(1, min(threads, count))
    if workers == 1 {
        for item in 0..<count { body(item, 0) }
        return
    }
    let next = ItemCounter()
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            while let item = next.take(below: count) { shared.value(item, worker) }
        }
    }
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
