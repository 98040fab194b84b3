import Foundation

/// A piece of an SVG picture with its own size, placed by ``SVG/document(title:_:)``.
public struct SVGFragment: Sendable {
    /// Width in SVG user units.
    public var width: Double
    /// Height in SVG user units.
    public var height: Double
    /// SVG elements with coordinates inside `0...width × 0...height`.
    public var content: String
}

/// Small SVG pictures of attention: heatmaps with token labels and a colour scale, line charts and
/// grouped bars. The output is standalone, well-formed XML; every heatmap cell is one
/// `<rect class="cell">` with a `<title>` tooltip naming its query, key and weight.
public enum SVG {
    static let font = "font-family=\"Helvetica, Arial, sans-serif\""

    /// Escapes text for XML content and attributes.
    public static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }

    static func number(_ x: Double) -> String { String(format: "%.1f", x) }

    /// Fragments side by side under an optional title, as a complete SVG document.
    public static func document(title: String? = nil, _ fragments: [SVGFragment]) -> String {
        let gap = 24.0, top = title == nil ? 8.0 : 36.0
        let width = fragments.reduce(gap) { $0 + $1.width + gap }
        let height = top + (fragments.map(\.height).max() ?? 0) + 8
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(number(width))\" height=\"\(number(height))\" viewBox=\"0 0 \(number(width)) \(number(height))\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        if let title {
            out += "<text x=\"\(number(gap))\" y=\"24\" \(font) font-size=\"16\" font-weight=\"bold\">\(escape(title))</text>\n"
        }
        var x = gap
        for fragment in fragments {
            out += "<g transform=\"translate(\(number(x)),\(number(top)))\">\n\(fragment.content)</g>\n"
            x += fragment.width + gap
        }
        return out + "</svg>\n"
    }

    /// Fragments side by side, as one fragment.
    public static func row(_ fragments: [SVGFragment], gap: Double = 8) -> SVGFragment {
        var x = 0.0, content = ""
        for f in fragments {
            content += "<g transform=\"translate(\(number(x)),0)\">\n\(f.content)</g>\n"
            x += f.width + gap
        }
        return SVGFragment(width: max(0, x - gap), height: fragments.map(\.height).max() ?? 0, content: content)
    }

    /// Fragments stacked top to bottom under an optional title, as a complete SVG document.
    public static func column(title: String? = nil, _ fragments: [SVGFragment], gap: Double = 8) -> String {
        var y = 0.0, content = ""
        for f in fragments {
            content += "<g transform=\"translate(0,\(number(y)))\">\n\(f.content)</g>\n"
            y += f.height + gap
        }
        return document(title: title, [SVGFragment(width: fragments.map(\.width).max() ?? 0, height: y, content: content)])
    }

    /// A heatmap: rows are queries, columns keys, colour = weight on a viridis scale from 0 to
    /// `scaleMaximum`, with a colour bar.
    public static func heatmap(
        _ weights: [[Double]], rowLabels: [String], columnLabels: [String], title: String,
        scaleMaximum: Double = 1, cell: Double = 28
    ) -> SVGFragment {
        let rows = weights.count, columns = weights.first?.count ?? 0
        let left = 8 + 7 * Double(min(14, rowLabels.map(\.count).max() ?? 1))
        let top = 28 + 6.5 * Double(min(14, columnLabels.map(\.count).max() ?? 1))
        var out = "<text x=\"\(number(left))\" y=\"14\" \(font) font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>\n"
        for (c, label) in columnLabels.prefix(columns).enumerated() {
            let x = left + (Double(c) + 0.5) * cell, y = top - 6
            out += "<text x=\"\(number(x))\" y=\"\(number(y))\" \(font) font-size=\"11\" transform=\"rotate(-60 \(number(x)) \(number(y)))\">\(escape(label))</text>\n"
        }
        for (r, label) in rowLabels.prefix(rows).enumerated() {
            out += "<text x=\"\(number(left - 6))\" y=\"\(number(top + (Double(r) + 0.65) * cell))\" \(font) font-size=\"11\" text-anchor=\"end\">\(escape(label))</text>\n"
        }
        for (r, row) in weights.enumerated() {
            for (c, w) in row.enumerated() {
                let query = r < rowLabels.count ? rowLabels[r] : "\(r)"
                let key = c < columnLabels.count ? columnLabels[c] : "\(c)"
                out += "<rect class=\"cell\" x=\"\(number(left + Double(c) * cell))\" y=\"\(number(top + Double(r) * cell))\" width=\"\(number(cell - 1))\" height=\"\(number(cell - 1))\" fill=\"\(ColorScale.hex(scaleMaximum > 0 ? w / scaleMaximum : 0))\"><title>\(escape(query)) → \(escape(key)): \(String(format: "%.4f", w))</title></rect>\n"
            }
        }
        // Colour bar.
        let barX = left + Double(columns) * cell + 12, barHeight = max(60, Double(rows) * cell)
        for i in 0..<20 {
            let t = 1 - Double(i) / 20
            out += "<rect x=\"\(number(barX))\" y=\"\(number(top + Double(i) * barHeight / 20))\" width=\"10\" height=\"\(number(barHeight / 20 + 0.5))\" fill=\"\(ColorScale.hex(t))\"/>\n"
        }
        for (t, y) in [(scaleMaximum, top + 8), (scaleMaximum / 2, top + barHeight / 2 + 4), (0.0, top + barHeight)] {
            out += "<text x=\"\(number(barX + 14))\" y=\"\(number(y))\" \(font) font-size=\"10\">\(String(format: "%.2f", t))</text>\n"
        }
        return SVGFragment(width: barX + 50, height: top + max(Double(rows) * cell, barHeight) + 8, content: out)
    }

    /// One named series of a chart.
    public struct Series: Sendable {
        /// The legend's label.
        public var name: String
        /// One value per x position.
        public var values: [Double]
        /// Optional ± spread per value, drawn as error bars.
        public var spread: [Double]?
        /// Any SVG colour (`#1f77b4`).
        public var color: String

        /// A series drawn in `color`, with error bars when `spread` is given.
        public init(name: String, values: [Double], spread: [Double]? = nil, color: String) {
            self.name = name
            self.values = values
            self.spread = spread
            self.color = color
        }
    }

    /// A line chart over categorical x positions (labelled `xLabels`), with a legend.
    public static func lineChart(
        _ series: [Series], xLabels: [String], title: String, xTitle: String, yTitle: String,
        width: Double = 420, height: Double = 280
    ) -> SVGFragment {
        let (left, right, top, bottom) = (52.0, 16.0, 28.0, 44.0)
        let plotW = width - left - right, plotH = height - top - bottom
        let all = series.flatMap { s in s.values.enumerated().map { $0.element + (s.spread?[$0.offset] ?? 0) } }
        let yMax = niceCeiling(max(all.max() ?? 1, 1e-9))
        func x(_ i: Int) -> Double { left + (xLabels.count > 1 ? Double(i) / Double(xLabels.count - 1) : 0.5) * plotW }
        func y(_ v: Double) -> Double { top + plotH * (1 - v / yMax) }
        var out = "<text x=\"\(number(left))\" y=\"14\" \(font) font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>\n"
        out += axes(left: left, top: top, plotW: plotW, plotH: plotH, yMax: yMax, xTitle: xTitle, yTitle: yTitle)
        for (i, label) in xLabels.enumerated() {
            out += "<text x=\"\(number(x(i)))\" y=\"\(number(top + plotH + 16))\" \(font) font-size=\"10\" text-anchor=\"middle\">\(escape(label))</text>\n"
        }
        for (n, s) in series.enumerated() {
            let points = s.values.enumerated().map { "\(number(x($0.offset))),\(number(y($0.element)))" }.joined(separator: " ")
            out += "<polyline class=\"series\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            for (i, v) in s.values.enumerated() {
                out += "<circle cx=\"\(number(x(i)))\" cy=\"\(number(y(v)))\" r=\"3\" fill=\"\(s.color)\"><title>\(escape(s.name)) \(escape(xLabels[i])): \(String(format: "%.3f", v))</title></circle>\n"
                if let spread = s.spread?[i], spread > 0 {
                    out += "<line x1=\"\(number(x(i)))\" x2=\"\(number(x(i)))\" y1=\"\(number(y(max(0, v - spread))))\" y2=\"\(number(y(v + spread)))\" stroke=\"\(s.color)\" stroke-width=\"1\"/>\n"
                }
            }
            out += legendEntry(s, index: n, x: left + plotW - 150, y: top + 4)
        }
        return SVGFragment(width: width, height: height, content: out)
    }

    /// Grouped vertical bars: one group per label, one bar per series.
    public static func barChart(
        _ series: [Series], labels: [String], title: String, yTitle: String, width: Double = 420, height: Double = 280
    ) -> SVGFragment {
        let (left, right, top, bottom) = (52.0, 16.0, 28.0, 44.0)
        let plotW = width - left - right, plotH = height - top - bottom
        let yMax = niceCeiling(max(series.flatMap(\.values).max() ?? 1, 1e-9))
        let groupW = plotW / Double(max(1, labels.count))
        let barW = groupW * 0.8 / Double(max(1, series.count))
        var out = "<text x=\"\(number(left))\" y=\"14\" \(font) font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>\n"
        out += axes(left: left, top: top, plotW: plotW, plotH: plotH, yMax: yMax, xTitle: "", yTitle: yTitle)
        for (i, label) in labels.enumerated() {
            out += "<text x=\"\(number(left + (Double(i) + 0.5) * groupW))\" y=\"\(number(top + plotH + 16))\" \(font) font-size=\"10\" text-anchor=\"middle\">\(escape(label))</text>\n"
            for (n, s) in series.enumerated() where i < s.values.count {
                let v = s.values[i], h = plotH * v / yMax
                out += "<rect class=\"bar\" x=\"\(number(left + Double(i) * groupW + groupW * 0.1 + Double(n) * barW))\" y=\"\(number(top + plotH - h))\" width=\"\(number(barW))\" height=\"\(number(h))\" fill=\"\(s.color)\"><title>\(escape(s.name)) \(escape(label)): \(String(format: "%.4f", v))</title></rect>\n"
            }
        }
        for (n, s) in series.enumerated() { out += legendEntry(s, index: n, x: left + plotW - 150, y: top + 4) }
        return SVGFragment(width: width, height: height, content: out)
    }

    private static func axes(left: Double, top: Double, plotW: Double, plotH: Double, yMax: Double, xTitle: String, yTitle: String) -> String {
        var out = "<line x1=\"\(number(left))\" y1=\"\(number(top))\" x2=\"\(number(left))\" y2=\"\(number(top + plotH))\" stroke=\"#333\"/>\n"
        out += "<line x1=\"\(number(left))\" y1=\"\(number(top + plotH))\" x2=\"\(number(left + plotW))\" y2=\"\(number(top + plotH))\" stroke=\"#333\"/>\n"
        for k in 0...4 {
            let v = yMax * Double(k) / 4, y = top + plotH * (1 - Double(k) / 4)
            out += "<line x1=\"\(number(left))\" y1=\"\(number(y))\" x2=\"\(number(left + plotW))\" y2=\"\(number(y))\" stroke=\"#ddd\"/>\n"
            out += "<text x=\"\(number(left - 4))\" y=\"\(number(y + 3))\" \(font) font-size=\"10\" text-anchor=\"end\">\(String(format: yMax < 10 ? "%.2f" : "%.0f", v))</text>\n"
        }
        out += "<text x=\"\(number(left + plotW / 2))\" y=\"\(number(top + plotH + 34))\" \(font) font-size=\"11\" text-anchor=\"middle\">\(escape(xTitle))</text>\n"
        out += "<text x=\"12\" y=\"\(number(top + plotH / 2))\" \(font) font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(number(top + plotH / 2)))\">\(escape(yTitle))</text>\n"
        return out
    }

    private static func legendEntry(_ s: Series, index: Int, x: Double, y: Double) -> String {
        let y = y + Double(index) * 16
        return "<rect x=\"\(number(x))\" y=\"\(number(y))\" width=\"12\" height=\"12\" fill=\"\(s.color)\"/>"
            + "<text x=\"\(number(x + 16))\" y=\"\(number(y + 10))\" \(font) font-size=\"11\">\(escape(s.name))</text>\n"
    }

    /// 1, 2 or 5 times a power of ten, at least `x`.
    static func niceCeiling(_ x: Double) -> Double {
        let p = pow(10, floor(log10(x)))
        for m in [1.0, 2, 2.5, 5, 10] where m * p >= x * 0.999_999 { return m * p }
        return 10 * p
    }

    /// Writes `text` to `path` atomically.
    public static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// Comma-separated values with quoting where needed.
public enum CSV {
    /// The header line and one line per row, fields quoted where they hold a comma, quote or newline.
    public static func render(header: [String], rows: [[String]]) -> String {
        func field(_ s: String) -> String {
            s.contains(where: { ",\"\n".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        return ([header] + rows).map { $0.map(field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }
}
