import Foundation

/// Float scratch memory kept between calls, so that a call's working buffers (keys packed for the
/// tiled kernel) reuse pages that earlier calls already touched.
///
/// A fresh multi-megabyte buffer is new pages from the system: one fault and one zeroed page per
/// 4 KiB, on every call. For a forward of 4 × 8 heads × 512 keys (D = 64) that is 4 MiB of packed keys,
/// a fault-bound cost as large as the call's own packing. Buffers go back to the pool after the call;
/// the pool keeps at most ``retainedBytes`` (the smallest buffers that fit are handed out first), and
/// buffers larger than that are allocated and freed as before.
final class ScratchPool: @unchecked Sendable {
    static let shared = ScratchPool()

    /// The most memory the pool keeps between calls.
    static let retainedBytes = 64 << 20

    private let lock = NSLock()
    private var free: [UnsafeMutableBufferPointer<Float>] = []
    private var freeBytes = 0

    /// Runs `body` with at least `count` floats of uninitialized memory, valid until it returns.
    func withBuffer<R>(count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        guard count > 0 else {
            // Nothing to hand out: leave the pool's buffers to calls that need them.
            var none: Float = 0
            return try withUnsafeMutablePointer(to: &none, body)
        }
        let buffer = take(count)
        defer { give(buffer) }
        return try body(buffer.baseAddress!)
    }

    private func take(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        lock.lock()
        // The smallest free buffer that holds `count` (the first of equals), found without building arrays.
        var index: Int?
        for i in free.indices where free[i].count >= count {
            if let best = index, free[best].count <= free[i].count { continue }
            index = i
        }
        if let index {
            let buffer = free.remove(at: index)
            freeBytes -= buffer.count * MemoryLayout<Float>.stride
            lock.unlock()
            return buffer
        }
        lock.unlock()
        return .allocate(capacity: count)
    }

    private func give(_ buffer: UnsafeMutableBufferPointer<Float>) {
        let bytes = buffer.count * MemoryLayout<Float>.stride
        lock.lock()
        // Keep it if it fits, dropping the smallest kept buffers to make room for a larger one.
        if bytes <= Self.retainedBytes {
            free.sort { $0.count > $1.count }
            while freeBytes + bytes > Self.retainedBytes, let smallest = free.popLast() {
                freeBytes -= smallest.count * MemoryLayout<Float>.stride
                smallest.deallocate()
            }
            free.append(buffer)
            freeBytes += bytes
            lock.unlock()
        } else {
            lock.unlock()
            buffer.deallocate()
        }
    }
}
