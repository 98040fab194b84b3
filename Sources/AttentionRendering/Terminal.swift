import Foundation

/// How to draw in the terminal: with ANSI colour, or plain text (shade characters only).
public struct TerminalStyle: Sendable, Equatable {
    /// Whether to emit ANSI colour escapes.
    public var color: Bool
    /// With `color`, whether the terminal takes 24-bit colour (`COLORTERM=truecolor`) or only 256 colours.
    public var trueColor: Bool

    /// A style with or without colour.
    public init(color: Bool, trueColor: Bool = false) {
        self.color = color
        self.trueColor = trueColor
    }

    /// Plain text: for pipes, files, tests, and `NO_COLOR`.
    public static let plain = TerminalStyle(color: false)

    /// Colour when standard output is a terminal, `NO_COLOR` is unset and `TERM` is not `dumb`.
    public static func detect(environment: [String: String] = ProcessInfo.processInfo.environment) -> TerminalStyle {
        let noColor = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        let dumb = environment["TERM"] == "dumb"
        guard isatty(STDOUT_FILENO) == 1, !noColor, !dumb else { return .plain }
        let truecolor = ["truecolor", "24bit"].contains(environment["COLORTERM"]?.lowercased() ?? "")
        return TerminalStyle(color: true, trueColor: truecolor)
    }

    /// `text` on a background coloured by `t` ∈ [0, 1], with a readable foreground.
    func cell(_ text: String, _ t: Double) -> String {
        guard color else { return text }
        let foreground = t > 0.6 ? "30" : "97"
        if trueColor {
            let (r, g, b) = ColorScale.rgb(t)
            return "\u{1B}[\(foreground);48;2;\(r);\(g);\(b)m\(text)\u{1B}[0m"
        }
        return "\u{1B}[\(foreground);48;5;\(ColorScale.xterm256(t))m\(text)\u{1B}[0m"
    }
}

/// Text renderings of attention: heatmaps and weight bars.
public enum TerminalRenderer {
    /// Shade characters from low to high, used in plain text.
    public static let shades: [Character] = [" ", "░", "▒", "▓", "█"]

    /// The shade for `t` ∈ [0, 1]: five equal bins. Values outside are clamped (so any weight, however
    /// large, infinite included, gets a shade); NaN gets the lowest.
    public static func shade(_ t: Double) -> Character {
        // Clamp before converting: Int(_:) traps on a Double beyond Int's range (a weight of 1e19, say).
        shades[min(4, Int(min(max(t.isNaN ? 0 : t, 0), 1) * 5))]
    }

    /// A heatmap of `weights` (rows = queries, columns = keys), one cell per weight.
    ///
    /// Cells are shaded by `weight / scaleMaximum` (default 1, so shades read as absolute weights; pass the
    /// largest weight to stretch the scale). Plain text shows a shade character per cell; colour shows
    /// the weight's value on a coloured background. A legend follows.
    public static func heatmap(
        _ weights: [[Double]], rowLabels: [String], columnLabels: [String], style: TerminalStyle,
        scaleMaximum: Double = 1
    ) -> String {
        let columns = weights.first?.count ?? 0
        let labelWidth = min(12, max(1, rowLabels.map(\.count).max() ?? 1))
        let cellWidth = min(6, max(4, (columnLabels.map(\.count).max() ?? 1) + 1))
        func fit(_ s: String, _ width: Int) -> String { s.count > width ? String(s.prefix(width - 1)) + "…" : s }
        var out = String(repeating: " ", count: labelWidth + 1)
        for c in 0..<columns {
            out += fit(c < columnLabels.count ? columnLabels[c] : "\(c)", cellWidth - 1).leftPadded(to: cellWidth)
        }
        out += "\n"
        for (r, row) in weights.enumerated() {
            out += fit(r < rowLabels.count ? rowLabels[r] : "\(r)", labelWidth).rightPadded(to: labelWidth) + " "
            for w in row {
                let t = scaleMaximum > 0 ? w / scaleMaximum : 0
                if style.color {
                    out += " " + style.cell(String(format: "%.2f", w).leftPadded(to: cellWidth - 1), t)
                } else {
                    out += " " + String(repeating: shade(t), count: cellWidth - 1)
                }
            }
            out += "\n"
        }
        out += legend(style: style, scaleMaximum: scaleMaximum)
        return out
    }

    /// The values as a row of at most `width` eighth-blocks (means of consecutive values when there are
    /// more), highest = full block, scaled to the series' own range.
    public static func sparkline(_ all: [Double], width: Int = 40) -> String {
        let buckets = min(width, all.count)
        let values = (0..<buckets).map { b in
            let slice = all[(b * all.count / buckets)..<((b + 1) * all.count / buckets)]
            return slice.reduce(0, +) / Double(slice.count)
        }
        let blocks: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        // A diverged run has NaN or infinite losses: those buckets show "?", the scale is the finite ones'.
        let finite = values.filter(\.isFinite)
        guard let low = finite.min(), let high = finite.max(), high > low else {
            return String(values.map { $0.isFinite ? "▄" : "?" })
        }
        return String(values.map { $0.isFinite ? blocks[min(7, Int(($0 - low) / (high - low) * 8))] : "?" })
    }

    /// `m:ss` or `h:mm:ss`; "?" for a time that is not a finite number of seconds under a year.
    public static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, (0..<366 * 86_400).contains(seconds) else { return "?" }
        let total = Int(seconds.rounded())
        return total >= 3600 ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60) : String(format: "%d:%02d", total / 60, total % 60)
    }

    /// The key to the shades or colours.
    public static func legend(style: TerminalStyle, scaleMaximum: Double = 1) -> String {
        let edges = (0...5).map { Double($0) / 5 * scaleMaximum }
        if style.color {
            let swatches = (0..<5).map { style.cell("  ", (Double($0) + 0.5) / 5) }.joined()
            return "legend: \(String(format: "%.2f", edges[0])) \(swatches) \(String(format: "%.2f", edges[5]))\n"
        }
        let bins = (0..<5).map { "'\(shades[$0])' \(String(format: "%.2f", edges[$0]))–\(String(format: "%.2f", edges[$0 + 1]))" }
        return "legend: " + bins.joined(separator: "  ") + "\n"
    }

    /// A horizontal bar for a weight in [0, 1], `width` cells at weight 1, drawn in eighths of a cell.
    public static func bar(_ weight: Double, width: Int = 30) -> String {
        let eighths = Int((min(max(weight.isNaN ? 0 : weight, 0), 1) * Double(width * 8)).rounded())
        let partial = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        return String(repeating: "█", count: eighths / 8) + partial[eighths % 8]
    }

    /// One labelled bar per weight.
    public static func bars(_ weights: [Double], labels: [String], width: Int = 30) -> String {
        let labelWidth = labels.map(\.count).max() ?? 1
        return zip(labels, weights).map { label, w in
            "  \(label.leftPadded(to: labelWidth))  \(String(format: "%.3f", w))  \(bar(w, width: width))\n"
        }.joined()
    }
}
