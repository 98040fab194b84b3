import Foundation

/// Small text-formatting helpers shared by the subcommands.
enum Format {
    /// `x` with `digits` decimals.
    static func number(_ x: Double, _ digits: Int = 3) -> String {
        String(format: "%.\(digits)f", x)
    }

    /// `value` as the commands' `--json` prints it: camelCase keys as the library names the fields,
    /// sorted, indented.
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// `[0.652, 0.852]`.
    static func vector<S: BinaryFloatingPoint>(_ values: [S], _ digits: Int = 3) -> String {
        "[" + values.map { number(Double($0), digits) }.joined(separator: ", ") + "]"
    }
}
