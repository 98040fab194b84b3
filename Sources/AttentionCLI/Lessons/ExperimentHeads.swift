import ArgumentParser
import AttentionExperiments
import AttentionRendering
import Foundation

struct HeadsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heads",
        abstract: "How different are the attention maps of 1, 2, 4 and 8 heads?",
        usage: "attention experiment heads [<options>]",
        discussion: """
            A multi-head attention layer (embedding 64, random projections with N(0, 1/64)
            weights)
            attends over 12 random tokens. For each head count, over every distinct pair
            of heads:
              cosine       A·B / (|A| |B|) of the two flattened 12 × 12 maps;
              correlation  the same cosine after subtracting each map's mean.
            Attention maps are non-negative with rows summing to 1, so unrelated maps
            still have a cosine well above 0; the correlation is 0 for unrelated maps and
            1 for identical ones. One head has no pair: both are defined as 1. These heads
            are random, not trained; `attention train` measures the same similarity for
            heads trained on associative recall.

            Examples:
              attention experiment heads
              attention experiment heads --svg heads.svg
            """
    )

    @OptionGroup var output: ExperimentOutput

    func run() throws {
        try output.checkFiles()
        let r = try HeadsExperiment.run(seed: output.seed)
        try output.emit(text: {
            var out = "Mean pairwise similarity of head attention maps (\(r.tokens) tokens, embedding \(r.embedDimension), random projections, seed \(r.seed)).\n\n"
            out += "  heads  pairs  cosine  correlation\n"
            for row in r.rows {
                out += "  \(String(row.heads).leftPadded(to: 5))  \(String(row.pairs).leftPadded(to: 5))  \(f(row.meanCosine))   \(f(row.meanCorrelation))\n"
            }
            out += "\nWith more heads each head has fewer dimensions and its own projections, so the heads attend\n"
            out += "differently: the correlation between maps stays far below 1.\n"
            if let first = r.maps.first, r.maps.count > 1 {
                let labels = (0..<first.count).map { "t\($0)" }
                for (h, map) in r.maps.prefix(2).enumerated() {
                    out += "\nHead \(h + 1) of \(r.maps.count)\n" + TerminalRenderer.heatmap(map, rowLabels: labels, columnLabels: labels, style: output.style)
                }
            }
            return out
        }, data: r, csv: {
            (["heads", "pairs", "meanCosine", "meanCorrelation"], r.rows.map { [String($0.heads), String($0.pairs), f($0.meanCosine, 4), f($0.meanCorrelation, 4)] })
        }, svg: {
            let chart = SVG.barChart([
                .init(name: "cosine", values: r.rows.map(\.meanCosine), color: "#1f77b4"),
                .init(name: "correlation", values: r.rows.map(\.meanCorrelation), color: "#ff7f0e"),
            ], labels: r.rows.map { "\($0.heads) head\($0.heads == 1 ? "" : "s")" }, title: "Mean similarity between heads", yTitle: "similarity")
            let labels = (0..<(r.maps.first?.count ?? 0)).map { "t\($0)" }
            let maps = r.maps.prefix(4).enumerated().map { h, map in
                SVG.heatmap(map, rowLabels: labels, columnLabels: labels, title: "head \(h + 1)", cell: 14)
            }
            return SVG.document(title: "Multi-head diversity (random projections, seed \(r.seed))", [chart] + maps)
        })
    }
}
