import AttentionModels

/// The text of an answer as its tokens arrive: what may be sent so far, and where a stop string
/// ends it. Text is sent only in whole characters (a token can end inside one), and the end of the
/// text that could be the start of a stop string is held back until the next tokens show it is
/// not; the stop string itself is never sent.
public struct AnswerText: Sendable {
    /// The stop strings' UTF-8 bytes.
    public let stops: [[UInt8]]
    /// The answer's bytes so far (cut at the stop string once one is found).
    public private(set) var bytes: [UInt8] = []
    /// Bytes already handed out.
    private var sent = 0
    /// Whether a stop string ended the answer.
    public private(set) var stopped = false

    /// An empty answer that ends at any of `stops` (empty strings are ignored).
    public init(stops: [String]) {
        self.stops = stops.map { Array($0.utf8) }.filter { !$0.isEmpty }
    }

    /// The whole answer so far, as text.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Adds a token's bytes; returns the text that may now be sent (perhaps empty). After a stop
    /// string, ``stopped`` is true and later calls return nothing.
    public mutating func add(_ new: [UInt8]) -> String {
        guard !stopped else { return "" }
        bytes += new
        let complete = UTF8Stream.wholeCharacters(in: bytes)
        // The earliest stop string that starts where it could not have been found before.
        let from = max(0, sent - (stops.map(\.count).max() ?? 1) + 1)
        if let cut = stops.compactMap({ firstIndex(of: $0, in: bytes[..<complete], from: from) }).min() {
            stopped = true
            bytes.removeSubrange(cut...)
            return take(upTo: max(cut, sent))
        }
        // Hold back the longest end of the text that begins a stop string.
        var held = 0
        for stop in stops {
            for length in stride(from: min(stop.count - 1, complete), to: held, by: -1)
            where bytes[(complete - length)..<complete].elementsEqual(stop[..<length]) {
                held = length
                break
            }
        }
        return take(upTo: complete - held)
    }

    /// The rest of the answer at its end (an unfinished character as U+FFFD).
    public mutating func finish() -> String { take(upTo: bytes.count) }

    private mutating func take(upTo end: Int) -> String {
        guard end > sent else { return "" }
        defer { sent = end }
        return String(decoding: bytes[sent..<end], as: UTF8.self)
    }

    private func firstIndex(of pattern: [UInt8], in text: ArraySlice<UInt8>, from start: Int) -> Int? {
        let first = max(start, text.startIndex), last = text.endIndex - pattern.count
        guard first <= last else { return nil }
        for i in first...last where text[i..<(i + pattern.count)].elementsEqual(pattern) {
            return i
        }
        return nil
    }
}
