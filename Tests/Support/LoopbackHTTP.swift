import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// HTTP/1.1 to a server on 127.0.0.1, for the tests of our servers: one connection per request
/// (`Connection: close`), every read and write bounded by a timeout, and the blocking work on a
/// thread of its own so a slow server never holds one of the test pool's threads. A server that
/// stops answering fails the test with a message instead of hanging the run, which Foundation's
/// URLSession on Linux does not promise.
public enum LoopbackHTTP {
    /// A status, the headers (names in lower case) and the body, de-chunked.
    public struct Response: Sendable {
        public let status: Int
        public let headers: [String: String]
        public let body: Data

        /// The body as UTF-8 text.
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Sends `method path` with `body` (as JSON when given) and `headers` to `port`, and reads the
    /// whole answer, waiting at most `timeout` for each read.
    /// - Throws: ``LoopbackConnection/Failure`` when the connection fails, times out or the answer
    ///   is not HTTP.
    public static func request(
        port: Int, _ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:], timeout: Duration = .seconds(60)
    ) async throws -> Response {
        try await onThread { try exchange(port: port, method, path, body: body, headers: headers, timeout: timeout) }
    }

    /// ``request(port:_:_:body:headers:timeout:)`` on the calling thread, which it blocks.
    public static func exchange(
        port: Int, _ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:], timeout: Duration = .seconds(60)
    ) throws -> Response {
        let connection = try LoopbackConnection(port: port, timeout: timeout)
        defer { connection.close() }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body {
            if headers.keys.allSatisfy({ $0.lowercased() != "content-type" }) { head += "Content-Type: application/json\r\n" }
            head += "Content-Length: \(body.count)\r\n"
        }
        try connection.send(Array((head + "\r\n").utf8) + (body.map(Array.init) ?? []))
        return try parse(connection.receiveAll())
    }

    /// Runs `work` on a new thread and returns what it returns or throws.
    public static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try work() }) }
            thread.name = "loopback-http"
            thread.start()
        }
    }

    /// The status, headers and body of the bytes of one answer.
    static func parse(_ bytes: [UInt8]) throws -> Response {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else {
            throw LoopbackConnection.Failure(description: "no end of the headers in \(bytes.count) bytes: \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = lines[0].split(separator: " ")
        guard status.count >= 2, status[0].hasPrefix("HTTP/"), let code = Int(status[1]) else {
            throw LoopbackConnection.Failure(description: "not an HTTP status line: \(lines[0])")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(bytes[(end + separator.count)...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = try dechunk(body) }
        return Response(status: code, headers: headers, body: Data(body))
    }

    /// The data of a chunked body.
    static func dechunk(_ bytes: [UInt8]) throws -> [UInt8] {
        var data: [UInt8] = [], at = 0
        while true {
            guard let lineEnd = bytes[at...].indices.first(where: { bytes[$0...].starts(with: [13, 10]) }),
                  let size = Int(String(decoding: bytes[at..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16) else {
                throw LoopbackConnection.Failure(description: "a malformed chunk at byte \(at)")
            }
            let start = lineEnd + 2
            if size == 0 { return data }
            guard start + size <= bytes.count else { throw LoopbackConnection.Failure(description: "a chunk of \(size) bytes cut short") }
            data += bytes[start..<(start + size)]
            at = start + size + 2
        }
    }
}

/// A TCP connection to 127.0.0.1 without an HTTP client (it can send anything and leave in the
/// middle of an answer), each read and write bounded by a timeout.
public final class LoopbackConnection: @unchecked Sendable {
    private let descriptor: Int32
    private var isOpen = true

    /// Why a connection failed, for the test's message.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Connects to `port` on 127.0.0.1; reads and writes that wait longer than `timeout` fail.
    public init(port: Int, timeout: Duration = .seconds(60)) throws {
        #if canImport(Glibc)
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        let seconds = timeout.components.seconds
        var limit = timeval(tv_sec: .init(seconds), tv_usec: .init(timeout.components.attoseconds / 1_000_000_000_000))
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            setsockopt(descriptor, SOL_SOCKET, option, &limit, socklen_t(MemoryLayout<timeval>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            _ = closeDescriptor()
            throw Failure(description: "connect() to 127.0.0.1:\(port) failed: errno \(errno)")
        }
    }

    /// Writes all of `bytes`.
    public func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard n > 0 else { throw Failure(description: "write() failed after \(sent) of \(bytes.count) bytes: errno \(errno)") }
            sent += n
        }
    }

    /// Writes `text` as UTF-8.
    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Reads until `marker` has arrived; everything read.
    public func receive(until marker: String) throws -> String {
        var received: [UInt8] = []
        while !String(decoding: received, as: UTF8.self).contains(marker) {
            guard let more = try readSome() else {
                throw Failure(description: "the connection closed before '\(marker)' (read: \(String(decoding: received, as: UTF8.self)))")
            }
            received += more
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Reads until the server closes the connection; everything read.
    public func receiveAll() throws -> [UInt8] {
        var received: [UInt8] = []
        while let more = try readSome() { received += more }
        return received
    }

    /// The next bytes, or nil once the server has closed the connection.
    private func readSome() throws -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        let n = read(descriptor, &buffer, buffer.count)
        if n == 0 { return nil }
        guard n > 0 else {
            throw Failure(description: errno == EAGAIN || errno == EWOULDBLOCK ? "no answer within the timeout" : "read() failed: errno \(errno)")
        }
        return Array(buffer[..<n])
    }

    /// Closes the connection (the server sees the client leave); closing again does nothing.
    public func close() { _ = closeDescriptor() }

    deinit { close() }

    private func closeDescriptor() -> Int32 {
        guard isOpen else { return 0 }
        isOpen = false
        #if canImport(Glibc)
        return Glibc.close(descriptor)
        #else
        return Darwin.close(descriptor)
        #endif
    }
}
