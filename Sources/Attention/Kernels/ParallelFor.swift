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
    let ran = withoutActuallyEscaping(body) { body in
        let box = LoopBody(body)
        return withExtendedLifetime(box) {
            attention_pool_run(count, workers, { context, item, worker in
                guard let context else { return }
                Unmanaged<LoopBody>.fromOpaque(context).takeUnretainedValue().body(item, worker)
            }, Unmanaged.passUnretained(box).toOpaque()) != 0
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

/// A loop's body, handed to the C pool as an opaque pointer for the duration of the loop.
private final class LoopBody {
    let body: (Int, Int) -> Void
    init(_ body: @escaping (Int, Int) -> Void) { self.body = body }
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
