import Foundation

/// Small text-formatting helpers shared by the subcommands.
enum Format {
    /// `x` with `digits` decimals.
    static func number(_ x: Double, _ digits: Int = 3) -> String {
        String(format: "%.\(digits)f", x)
    }

    /// `[0.652, 0.852]`.
    static func vector<S: BinaryFloatingPoint>(_ values: [S], _ digits: Int = 3) -> String {
        "[" + values.map { number(Double($0), digits) }.joined(separator: ", ") + "]"
    }

    /// `text` padded on the left to `width` characters.
    static func right(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    /// `text` padded on the right to `width` characters.
    static func left(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    /// A horizontal bar for a weight in [0, 1], `width` cells at weight 1, drawn in eighths of a cell.
    static func bar(_ weight: Double, width: Int = 30) -> String {
        let eighths = Int((min(max(weight, 0), 1) * Double(width * 8)).rounded())
        let partial = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        return String(repeating: "█", count: eighths / 8) + partial[eighths % 8]
    }

    /// One of five shades for a weight in [0, 1]: ` `, `░`, `▒`, `▓`, `█`.
    static func shade(_ weight: Double) -> String {
        let shades = [" ", "░", "▒", "▓", "█"]
        return shades[min(4, max(0, Int((weight * 5).rounded(.down))))]
    }
}
