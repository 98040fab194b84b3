import Attention
import Foundation

/// What can go wrong between ranks. Errors in a rank's own arguments are `AttentionError`s, as in
/// one process.
public enum DistributedError: Error, Equatable, Sendable {
    /// MPI could not be loaded or started; `reason` says what was tried.
    case mpiUnavailable(reason: String)
    /// A send, receive or collective failed; `operation` names it and the peer.
    case communication(operation: String, reason: String)
    /// A transfer did not finish within the timeout: a peer stopped, or is much slower than this rank.
    case timedOut(operation: String, seconds: Double)
    /// Other ranks failed before the work started (their errors are on their own output); `code` is
    /// the largest of their failure codes (see ``Communicator/agreeing(timeout:failureCode:_:)``).
    case peersFailed(ranks: [Int], code: Int64)
    /// The ranks were given different problems: `what` differs (and how, where that can be said).
    case ranksDisagree(what: String)
}

extension DistributedError: CustomStringConvertible, LocalizedError {
    /// The message: what failed and, where it helps, what to do.
    public var description: String {
        switch self {
        case .mpiUnavailable(let reason):
            return "MPI is not available: \(reason) (on Debian: apt-get install openmpi-bin)"
        case let .communication(operation, reason):
            return "\(operation) failed: \(reason)"
        case let .timedOut(operation, seconds):
            return "\(operation) did not finish within \(seconds) s: a peer stopped or is far behind"
        case .peersFailed(let ranks, _):
            let list = ranks.map(String.init).joined(separator: ", ")
            return "rank\(ranks.count == 1 ? "" : "s") \(list) failed (see \(ranks.count == 1 ? "its" : "their") message)"
        case .ranksDisagree(let what):
            return "the ranks disagree on \(what): every rank must be given the same problem"
        }
    }

    /// ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}

/// Bytes that a transfer reads from or writes to. It stays allocated while a transfer holds it, so a
/// non-blocking send or receive never outlives its memory.
public final class MessageBuffer: @unchecked Sendable {
    /// The memory, uninitialized when made.
    public let bytes: UnsafeMutableRawBufferPointer

    /// Allocates `byteCount` bytes (at least one, so that every buffer has an address).
    public init(byteCount: Int) {
        bytes = .allocate(byteCount: Swift.max(byteCount, 1), alignment: 64)
    }

    deinit { bytes.deallocate() }
}

/// A send, receive or collective in flight.
public protocol Transfer: AnyObject {
    /// Whether it has finished, making progress on it; throws if it failed.
    func isComplete() throws -> Bool
    /// What it is, for messages: `"receive of 4096 bytes from rank 2"`.
    var summary: String { get }
}

/// A group of ranks that exchange messages: MPI's world (``MPICommunicator``), or threads of one
/// process (``LocalCommunicator``).
///
/// Transfers are non-blocking: start them, compute, then ``wait(for:timeout:)``. Messages between two
/// ranks with the same tag arrive in the order they were sent.
public protocol Communicator: AnyObject {
    /// This rank, `0 ..< size`.
    var rank: Int { get }
    /// How many ranks.
    var size: Int { get }
    /// Starts sending the first `byteCount` bytes of `buffer` to `destination`. The buffer must not
    /// change until the transfer completes.
    func send(_ buffer: MessageBuffer, byteCount: Int, to destination: Int, tag: Int) throws -> any Transfer
    /// Starts receiving exactly `byteCount` bytes from `source` into `buffer`.
    func receive(into buffer: MessageBuffer, byteCount: Int, from source: Int, tag: Int) throws -> any Transfer
    /// Starts the element-wise maximum of every rank's `values` (all ranks give the same count),
    /// written to `result` (at least `8 * values.count` bytes) on every rank.
    func startMaximum(of values: [Int64], into result: MessageBuffer) throws -> any Transfer
}

extension Communicator {
    /// Waits until every transfer completes, polling them; returns the time spent waiting.
    ///
    /// - Throws: ``DistributedError/timedOut(operation:seconds:)`` after `timeout`, naming the first
    ///   transfer still pending; or the error a transfer failed with.
    @discardableResult
    public func wait(for transfers: [any Transfer], timeout: Duration) throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        var pending = transfers
        var pause = 10  // microseconds, doubling to a millisecond
        while true {
            pending = try pending.filter { try !$0.isComplete() }
            guard let first = pending.first else { return clock.now - start }
            if clock.now - start > timeout {
                throw DistributedError.timedOut(operation: "rank \(rank): \(first.summary)", seconds: timeout.seconds)
            }
            usleep(UInt32(pause))
            pause = Swift.min(pause * 2, 1000)
        }
    }

    /// The element-wise maximum of every rank's `values`, on every rank.
    public func maximum(of values: [Int64], timeout: Duration) throws -> [Int64] {
        let result = MessageBuffer(byteCount: 8 * values.count)
        try wait(for: [try startMaximum(of: values, into: result)], timeout: timeout)
        return (0..<values.count).map { result.bytes.load(fromByteOffset: 8 * $0, as: Int64.self) }
    }

    /// Runs `work` on this rank, then tells every rank whether every rank's `work` succeeded: returns
    /// its value when all did; otherwise a failed rank throws its own error and the others throw
    /// ``DistributedError/peersFailed(ranks:code:)``. So a bad input on one rank ends every rank with an
    /// error instead of a hang.
    ///
    /// - Parameters:
    ///   - timeout: how long to wait for the slowest rank.
    ///   - failureCode: a positive number for an error, passed to the other ranks (an exit status,
    ///     so that every rank can exit with the failed one's); default 1.
    ///   - work: what this rank does.
    public func agreeing<T>(
        timeout: Duration, failureCode: (any Error) -> Int64 = { _ in 1 }, _ work: () throws -> T
    ) throws -> T {
        let outcome = Result { try work() }
        var code: Int64 = 0
        if case .failure(let error) = outcome { code = Swift.max(1, failureCode(error)) }
        let failures = try failureCodes(thisRank: code, timeout: timeout)
        if case .failure(let error) = outcome { throw error }
        let ranks = failures.indices.filter { failures[$0] != 0 }
        guard ranks.isEmpty else { throw DistributedError.peersFailed(ranks: ranks, code: failures.max() ?? 1) }
        return try outcome.get()
    }

    /// Tells every rank this rank's failure code (0: it did not fail); returns every rank's, the same
    /// on every rank.
    public func failureCodes(thisRank code: Int64, timeout: Duration) throws -> [Int64] {
        var codes = [Int64](repeating: 0, count: size)
        codes[rank] = code
        return try maximum(of: codes, timeout: timeout)
    }

    /// Every rank's `values` side by side, on every rank: `result[r]` is rank `r`'s. (A maximum over
    /// values that are zero except in each rank's own slot.) For counters and times in reports.
    public func allGather(_ values: [Int64], timeout: Duration) throws -> [[Int64]] {
        var slots = [Int64](repeating: .min, count: values.count * size)
        for (i, value) in values.enumerated() { slots[rank * values.count + i] = value }
        let all = try maximum(of: slots, timeout: timeout)
        return (0..<size).map { Array(all[$0 * values.count ..< ($0 + 1) * values.count]) }
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) * 1e-18
    }
}
