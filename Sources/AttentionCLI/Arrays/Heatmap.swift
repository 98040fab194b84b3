import ArgumentParser
import Attention
import AttentionRendering
import Foundation

/// `attention heatmap`: draw any weights file.
struct Heatmap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw attention weights from a .npy file as a heatmap (terminal, and SVG on request).",
        usage: "attention heatmap --weights <W.npy> [<options>]",
        discussion: """
            The weights are 2-D [Nq, Nk], or 3-D/4-D ([H, Nq, Nk] or [B, H, Nq, Nk]) with
            --batch and --head choosing the slice. Colour when the terminal supports it;
            plain shades when piped or NO_COLOR is set.

            Examples:
              attention attend --query q.npy --key k.npy --value v.npy \\
                  --output o.npy --weights w.npy
              attention heatmap --weights w.npy --tokens "The cat sat on the mat"
              attention heatmap --weights w.npy --batch 0 --head 3 --svg head3.svg
            """
    )

    @Option(help: ArgumentHelp("The weights, float32 or float64.", valueName: "W.npy")) var weights: String
    @Option(help: "Key tokens, split on spaces (default: 0, 1, 2, ...).") var tokens: String?
    @Option(help: "Query tokens, split on spaces (default: the key tokens when the matrix is square).") var queryTokens: String?
    @Option(help: "Batch element of 4-D weights.") var batch = 0
    @Option(help: "Head of 3-D or 4-D weights.") var head = 0
    @Option(help: ArgumentHelp("Also write the heatmap as SVG.", valueName: "FILE")) var svg: String?
    @Flag(help: "Print the slice drawn as JSON: {queryTokens, keyTokens, weights [query][key]}.") var json = false

    func run() throws {
        try UserPath.input(weights, flag: "--weights")
        if let svg { try UserPath.output(svg, flag: "--svg") }
        let drawing = try HeatmapDrawing(NPY.read(contentsOf: URL(fileURLWithPath: weights)), path: weights,
                                         batch: batch, head: head, tokens: tokens, queryTokens: queryTokens)
        if json {
            struct Slice: Encodable { let queryTokens: [String], keyTokens: [String], weights: [[Double]] }
            print(try Format.json(Slice(queryTokens: drawing.queryLabels, keyTokens: drawing.keyLabels, weights: drawing.rows)))
        } else {
            print(drawing.terminal(style: .detect()), terminator: "")
        }
        if let svg {
            try SVG.write(drawing.svg(title: (weights as NSString).lastPathComponent), to: svg)
            if !json { print("wrote \(svg)") }
        }
    }
}
