import Foundation

/// Passes bytes on as soon as they form whole UTF-8 characters (a token can end inside one), so
/// that text streamed token by token never shows a broken character. By default it writes to
/// standard output, unbuffered, so that text appears as it is generated.
public struct UTF8Stream {
    private var pending: [UInt8] = []
    private let sink: (String) -> Void

    /// A stream that hands whole characters to `sink`.
    public init(sink: @escaping (String) -> Void = { FileHandle.standardOutput.write(Data($0.utf8)) }) {
        self.sink = sink
    }

    /// Adds bytes; passes on every complete character so far.
    public mutating func write(_ bytes: [UInt8]) {
        pending += bytes
        let complete = Self.wholeCharacters(in: pending)
        emit(Array(pending[..<complete]))
        pending.removeFirst(complete)
    }

    /// How many of `bytes` form whole characters: all but those of an unfinished character at the
    /// end (at most 3).
    public static func wholeCharacters(in bytes: some RandomAccessCollection<UInt8>) -> Int {
        let count = bytes.count
        for back in 1...min(3, max(count, 1)) where back <= count {
            let byte = bytes[bytes.index(bytes.startIndex, offsetBy: count - back)]
            if byte & 0xC0 == 0x80 { continue }                     // a continuation byte
            let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
            return length > back ? count - back : count
        }
        return count
    }

    /// Passes on what is left (an unfinished character as U+FFFD).
    public mutating func finish() {
        emit(pending)
        pending = []
    }

    private func emit(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        sink(String(decoding: bytes, as: UTF8.self))
    }
}
