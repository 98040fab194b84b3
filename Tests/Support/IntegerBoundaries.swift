import Attention
import Testing

/// One integer position of a public entry point, for the boundary matrix: `body` passes its integer
/// there, keeps every other argument valid, and checks what comes back. It may return (after its own
/// `#expect`s on the result) or throw an ``AttentionError``; anything else, a trap above all, fails.
public struct IntegerInput: Sendable, CustomTestStringConvertible {
    /// The integers a hostile or careless caller passes: the ends of `Int`, and the edges of every
    /// count (none, one, minus one).
    public static let extremes = [Int.min, -1, 0, 1, Int.max]
    /// The same for a field a file stores in 32 bits.
    public static let extremes32 = [Int(Int32.min), -1, 0, 1, Int(Int32.max)]

    /// `Type.method argument`, as the test list shows it.
    public let name: String
    let values: [Int]
    let body: @Sendable (Int) throws -> Void

    /// - Parameters:
    ///   - values: the integers to try; default ``extremes``.
    public init(_ name: String, values: [Int] = IntegerInput.extremes, _ body: @escaping @Sendable (Int) throws -> Void) {
        self.name = name
        self.values = values
        self.body = body
    }

    public var testDescription: String { name }

    /// Runs `body` with each value: it must return or throw an `AttentionError`.
    public func check(sourceLocation: SourceLocation = #_sourceLocation) {
        for n in values {
            do {
                try body(n)
            } catch is AttentionError {
            } catch {
                Issue.record("\(name) = \(n): not an AttentionError: \(error)", sourceLocation: sourceLocation)
            }
        }
    }
}
