import AttentionRendering
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@Suite("Rendering")
struct RenderingTests {
    @Test("A plain terminal heatmap: one shade per weight, in five equal bins, with a legend")
    func plainHeatmap() {
        let text = TerminalRenderer.heatmap([[1, 0, 0.5], [0.25, 0.75, 0.1]], rowLabels: ["q1", "q2"],
                                            columnLabels: ["a", "b", "c"], style: .plain)
        // Row labels take 2 columns plus a space; each cell is a space and 3 shade characters; column
        // labels are right-aligned over their cells.
        let expected = """
                  a   b   c
            q1  ███     ▒▒▒
            q2  ░░░ ▓▓▓    
            legend: ' ' 0.00–0.20  '░' 0.20–0.40  '▒' 0.40–0.60  '▓' 0.60–0.80  '█' 0.80–1.00

            """
        #expect(text == expected)
    }

    @Test("Colour output uses ANSI escapes, plain output none; NO_COLOR and dumb terminals get plain")
    func color() {
        let colored = TerminalRenderer.heatmap([[0.3]], rowLabels: ["q"], columnLabels: ["k"], style: TerminalStyle(color: true))
        #expect(colored.contains("\u{1B}[") && colored.contains("0.30"))
        #expect(!TerminalRenderer.heatmap([[0.3]], rowLabels: ["q"], columnLabels: ["k"], style: .plain).contains("\u{1B}"))
        #expect(TerminalStyle.detect(environment: ["NO_COLOR": "1"]) == .plain)
        #expect(TerminalStyle.detect(environment: ["TERM": "dumb"]) == .plain)
    }

    @Test("Weight bars are drawn in eighths of a cell")
    func bars() {
        #expect(TerminalRenderer.bar(1, width: 4) == "████")
        #expect(TerminalRenderer.bar(0.5, width: 4) == "██")
        #expect(TerminalRenderer.bar(1.0 / 32, width: 4) == "▏")
        #expect(TerminalRenderer.bar(0, width: 4) == "")
    }

    /// Parses `svg` as XML and counts the elements with `class="cell"`.
    func cells(in svg: String) throws -> Int {
        final class Counter: NSObject, XMLParserDelegate {
            var cells = 0
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                        qualifiedName: String?, attributes: [String: String] = [:]) {
                if name == "rect" && attributes["class"] == "cell" { cells += 1 }
            }
        }
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = Counter()
        parser.delegate = counter
        #expect(parser.parse(), "SVG is not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "")")
        return counter.cells
    }

    @Test("SVG heatmaps are well-formed XML with one cell per weight, labels escaped")
    func svgHeatmap() throws {
        let weights = (0..<5).map { i in (0..<7).map { j in Double(i + j) / 10 } }
        let svg = SVG.document(title: "a <test> & more", [
            SVG.heatmap(weights, rowLabels: ["<q>", "s'est", "b", "c", "d"], columnLabels: (0..<7).map { "k\($0)" }, title: "T"),
            SVG.heatmap([[1]], rowLabels: ["x"], columnLabels: ["y"], title: "one"),
        ])
        #expect(try cells(in: svg) == 5 * 7 + 1)
        #expect(svg.contains("&lt;q&gt;") && svg.contains("s&apos;est"))
    }

    @Test("SVG charts are well-formed")
    func svgCharts() throws {
        let series = [SVG.Series(name: "a", values: [1, 2, 3], spread: [0.1, 0.2, 0.3], color: "#000000")]
        let svg = SVG.document([SVG.lineChart(series, xLabels: ["8", "16", "32"], title: "t", xTitle: "x", yTitle: "y"),
                                SVG.barChart(series, labels: ["p", "q", "r"], title: "b", yTitle: "y")])
        #expect(try cells(in: svg) == 0)
        #expect(svg.components(separatedBy: "class=\"bar\"").count - 1 == 3)
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 1)
    }

    @Test("CSV quotes fields with commas, quotes and newlines")
    func csv() {
        #expect(CSV.render(header: ["a", "b"], rows: [["1", "x,y"], ["say \"hi\"", "2"]]) == "a,b\n1,\"x,y\"\n\"say \"\"hi\"\"\",2\n")
    }

    @Test("The colour scale runs from viridis purple to yellow")
    func colorScale() {
        #expect(ColorScale.hex(0) == "#440154")
        #expect(ColorScale.hex(1) == "#fde725")
        #expect(ColorScale.hex(-3) == ColorScale.hex(0) && ColorScale.hex(.nan) == ColorScale.hex(0))
    }
}
