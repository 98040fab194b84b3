import Foundation

/// Ranks as threads of one process: a group of `size` communicators that pass messages through
/// shared memory. For tests, and for trying distributed code without MPI.
///
/// ```swift
/// let group = LocalCommunicator.group(size: 4)
/// DispatchQueue.concurrentPerform(iterations: 4) { rank in
///     let result = try? ringAttention(query: q[rank], key: k[rank], value: v[rank],
///                                     queryShards: shards, keyShards: shards, communicator: group[rank])
/// }
/// ```
///
/// A send copies its bytes at once (it completes immediately); a receive completes when a message
/// from its source with its tag has arrived, which must have exactly the size asked for.
public final class LocalCommunicator: Communicator, @unchecked Sendable {
    /// This rank.
    public let rank: Int
    /// How many ranks the group has.
    public var size: Int { shared.size }
    private let shared: Group
    private var maximumsStarted = 0

    private init(rank: Int, shared: Group) {
        self.rank = rank
        self.shared = shared
    }

    /// `size` communicators, one per rank, in rank order. `size` must be at least 1.
    public static func group(size: Int) -> [LocalCommunicator] {
        let shared = Group(size: Swift.max(size, 1))
        return (0..<shared.size).map { LocalCommunicator(rank: $0, shared: shared) }
    }

    /// Copies the bytes to `destination`'s mailbox; the returned transfer is already complete.
    public func send(_ buffer: MessageBuffer, byteCount: Int, to destination: Int, tag: Int) throws -> any Transfer {
        try checkPeer(destination, "send")
        let message = Array(UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<byteCount]))
        shared.lock.withLock { shared.mailboxes[Mailbox(source: rank, destination: destination, tag: tag), default: []].append(message) }
        return Finished(summary: "send of \(byteCount) bytes to rank \(destination)")
    }

    /// A transfer that completes when a message from `source` with `tag` arrives.
    public func receive(into buffer: MessageBuffer, byteCount: Int, from source: Int, tag: Int) throws -> any Transfer {
        try checkPeer(source, "receive")
        return Receive(shared: shared, buffer: buffer, byteCount: byteCount,
                       mailbox: Mailbox(source: source, destination: rank, tag: tag))
    }

    /// Joins this rank's next maximum; it completes when every rank has joined.
    public func startMaximum(of values: [Int64], into result: MessageBuffer) throws -> any Transfer {
        let round = maximumsStarted
        maximumsStarted += 1
        shared.lock.withLock {
            var state = shared.maximums[round] ?? Group.Maximum(values: values, joined: 0, read: 0)
            state.values = zip(state.values, values).map { Swift.max($0, $1) }
            state.joined += 1
            shared.maximums[round] = state
        }
        return Reduction(shared: shared, round: round, count: values.count, result: result)
    }

    private func checkPeer(_ peer: Int, _ operation: String) throws {
        guard (0..<size).contains(peer) else {
            throw DistributedError.communication(operation: "\(operation) on rank \(rank)",
                                                 reason: "rank \(peer) is outside a group of \(size)")
        }
    }

    private struct Mailbox: Hashable {
        let source, destination, tag: Int
    }

    private final class Group: @unchecked Sendable {
        struct Maximum {
            var values: [Int64]
            var joined: Int
            var read: Int
        }
        let size: Int
        let lock = NSLock()
        var mailboxes: [Mailbox: [[UInt8]]] = [:]
        var maximums: [Int: Maximum] = [:]
        init(size: Int) { self.size = size }
    }

    private final class Finished: Transfer {
        let summary: String
        init(summary: String) { self.summary = summary }
        func isComplete() throws -> Bool { true }
    }

    private final class Receive: Transfer {
        let shared: Group
        let buffer: MessageBuffer
        let byteCount: Int
        let mailbox: Mailbox
        var done = false
        var summary: String { "receive of \(byteCount) bytes from rank \(mailbox.source)" }

        init(shared: Group, buffer: MessageBuffer, byteCount: Int, mailbox: Mailbox) {
            (self.shared, self.buffer, self.byteCount, self.mailbox) = (shared, buffer, byteCount, mailbox)
        }

        func isComplete() throws -> Bool {
            if done { return true }
            let message: [UInt8]? = shared.lock.withLock {
                guard var queue = shared.mailboxes[mailbox], !queue.isEmpty else { return nil }
                let first = queue.removeFirst()
                shared.mailboxes[mailbox] = queue.isEmpty ? nil : queue
                return first
            }
            guard let message else { return false }
            guard message.count == byteCount else {
                throw DistributedError.communication(
                    operation: summary, reason: "the message has \(message.count) bytes")
            }
            message.withUnsafeBytes { buffer.bytes.copyMemory(from: $0) }
            done = true
            return true
        }
    }

    private final class Reduction: Transfer {
        let shared: Group
        let round: Int
        let count: Int
        let result: MessageBuffer
        var done = false
        var summary: String { "maximum over the group (round \(round))" }

        init(shared: Group, round: Int, count: Int, result: MessageBuffer) {
            (self.shared, self.round, self.count, self.result) = (shared, round, count, result)
        }

        func isComplete() throws -> Bool {
            if done { return true }
            let values: [Int64]? = shared.lock.withLock {
                guard var state = shared.maximums[round], state.joined == shared.size else { return nil }
                state.read += 1
                shared.maximums[round] = state.read == shared.size ? nil : state
                return state.values
            }
            guard let values else { return false }
            guard values.count == count else {
                throw DistributedError.communication(operation: summary, reason: "the ranks gave different counts of values")
            }
            values.withUnsafeBytes { result.bytes.copyMemory(from: $0) }
            done = true
            return true
        }
    }
}
