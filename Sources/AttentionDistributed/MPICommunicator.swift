import Foundation
import _MPIShim

/// MPI's world: every process `mpirun` started, over whatever transport MPI chose (shared memory on
/// one host, TCP or a fabric between hosts).
///
/// MPI is loaded when ``world()`` is first called, not linked: the package builds without MPI, and
/// only distributed work needs it installed. Open MPI 4 or later is supported (`libmpi.so.40`, or
/// the library named by the environment variable `ATTENTION_MPI_LIBRARY`). Run under
/// `mpirun -np P`; started alone, a program is a world of one rank.
///
/// Messages are bytes (`MPI_BYTE`); one larger than 1 GiB travels as several.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    /// This process's rank in `MPI_COMM_WORLD`.
    public let rank: Int
    /// The number of processes.
    public let size: Int

    private static let lock = NSLock()
    nonisolated(unsafe) private static var shared: MPICommunicator?
    private static let pieceBytes = 1 << 30

    private init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
    }

    /// The world communicator, initializing MPI on first use (`MPI_Init_thread` with
    /// `MPI_THREAD_SERIALIZED`; call it from one thread at a time).
    ///
    /// - Throws: ``DistributedError/mpiUnavailable(reason:)`` when no MPI library loads or it fails to start.
    public static func world() throws -> MPICommunicator {
        try lock.withLock {
            if let shared { return shared }
            var candidates = ["libmpi.so.40", "libmpi.so", "libmpi.40.dylib", "libmpi.dylib",
                              "/opt/homebrew/lib/libmpi.dylib", "/usr/local/lib/libmpi.dylib"]
            if let chosen = ProcessInfo.processInfo.environment["ATTENTION_MPI_LIBRARY"], !chosen.isEmpty {
                candidates = [chosen]
            }
            var error = [CChar](repeating: 0, count: 1024)
            let loaded = withCStrings(candidates) { attention_mpi_load($0, Int32(candidates.count), &error, error.count) }
            guard loaded == 0 else {
                throw DistributedError.mpiUnavailable(
                    reason: "tried \(candidates.joined(separator: ", ")); last error: \(cText(error))")
            }
            var rank: Int32 = 0
            var size: Int32 = 0
            let code = attention_mpi_init(&rank, &size)
            guard code == 0 else {
                throw DistributedError.mpiUnavailable(reason: "MPI_Init_thread failed: \(message(code))")
            }
            let world = MPICommunicator(rank: Int(rank), size: Int(size))
            shared = world
            return world
        }
    }

    /// The processors this process may run on: its CPU affinity, which `mpirun` narrows when it
    /// binds each rank to a core (as Open MPI does by default for 2 ranks or fewer). The natural
    /// thread count of a rank's attention.
    public static var processorsAvailable: Int {
        let count = Int(attention_processors_available())
        return count > 0 ? count : ProcessInfo.processInfo.activeProcessorCount
    }

    /// The MPI library's version line, such as `Open MPI v4.1.4, ...`.
    public var libraryVersion: String {
        var text = [CChar](repeating: 0, count: 512)
        attention_mpi_library_version(&text, text.count)
        return cText(text)
    }

    /// Ends MPI (`MPI_Finalize`); call once, after the last transfer, on every rank.
    public func finalize() throws {
        let code = attention_mpi_finalize()
        guard code == 0 else { throw DistributedError.communication(operation: "MPI_Finalize", reason: Self.message(code)) }
    }

    /// Ends every rank at once with `status` (`MPI_Abort`): for a failure the other ranks cannot learn
    /// of otherwise, so that none waits for it.
    public func abort(status: Int32) -> Never {
        attention_mpi_abort(status)
        exit(status)
    }

    /// Starts `MPI_Isend`s of the bytes, in pieces of at most 1 GiB.
    public func send(_ buffer: MessageBuffer, byteCount: Int, to destination: Int, tag: Int) throws -> any Transfer {
        try transfer(buffer, byteCount, peer: destination, tag: tag, summary: "send of \(byteCount) bytes to rank \(destination)") {
            attention_mpi_isend($0, $1, Int32(destination), Int32(tag), $2)
        }
    }

    /// Starts `MPI_Irecv`s of exactly `byteCount` bytes, in pieces of at most 1 GiB.
    public func receive(into buffer: MessageBuffer, byteCount: Int, from source: Int, tag: Int) throws -> any Transfer {
        try transfer(buffer, byteCount, peer: source, tag: tag, summary: "receive of \(byteCount) bytes from rank \(source)") {
            attention_mpi_irecv($0, $1, Int32(source), Int32(tag), $2)
        }
    }

    /// Starts an `MPI_Iallreduce` with `MPI_MAX` over `MPI_INT64_T`.
    public func startMaximum(of values: [Int64], into result: MessageBuffer) throws -> any Transfer {
        let input = MessageBuffer(byteCount: 8 * values.count)
        values.withUnsafeBytes { input.bytes.copyMemory(from: $0) }
        let pending = Pending(summary: "maximum over \(size) ranks", buffers: [input, result])
        let code = attention_mpi_iallreduce_max(
            input.bytes.baseAddress!.assumingMemoryBound(to: Int64.self),
            result.bytes.baseAddress!.assumingMemoryBound(to: Int64.self), Int32(values.count), &pending.requests[0])
        guard code == 0 else { throw DistributedError.communication(operation: pending.summary, reason: Self.message(code)) }
        return pending
    }

    private func transfer(
        _ buffer: MessageBuffer, _ byteCount: Int, peer: Int, tag: Int, summary: String,
        _ start: (UnsafeMutableRawPointer, Int32, UnsafeMutablePointer<attention_mpi_request?>) -> Int32
    ) throws -> any Transfer {
        guard (0..<size).contains(peer), byteCount >= 0, byteCount <= buffer.bytes.count else {
            throw DistributedError.communication(
                operation: summary, reason: "rank \(peer) of \(size), \(byteCount) bytes of a \(buffer.bytes.count)-byte buffer")
        }
        let pieces = Swift.max(1, (byteCount + Self.pieceBytes - 1) / Self.pieceBytes)
        let pending = Pending(summary: summary, buffers: [buffer], requests: pieces)
        for piece in 0..<pieces {
            let offset = piece * Self.pieceBytes
            let count = Swift.min(Self.pieceBytes, byteCount - offset)
            let code = start(buffer.bytes.baseAddress! + offset, Int32(count), &pending.requests[piece])
            guard code == 0 else { throw DistributedError.communication(operation: summary, reason: Self.message(code)) }
        }
        return pending
    }

    /// Requests in flight; holds the buffers they use.
    private final class Pending: Transfer {
        let summary: String
        let buffers: [MessageBuffer]
        var requests: [attention_mpi_request?]

        init(summary: String, buffers: [MessageBuffer], requests: Int = 1) {
            self.summary = summary
            self.buffers = buffers
            self.requests = Array(repeating: nil, count: requests)
        }

        func isComplete() throws -> Bool {
            var all = true
            for index in requests.indices where requests[index] != nil {
                var done: Int32 = 0
                let code = attention_mpi_test(&requests[index], &done)
                guard code == 0 else { throw DistributedError.communication(operation: summary, reason: MPICommunicator.message(code)) }
                if done != 0 { requests[index] = nil } else { all = false }
            }
            return all
        }
    }

    static func message(_ code: Int32) -> String {
        var text = [CChar](repeating: 0, count: 512)
        attention_mpi_error_string(code, &text, text.count)
        return cText(text)
    }
}

/// Calls `body` with a C array of C strings, valid for the call.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// The text of a NUL-terminated C buffer.
private func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
