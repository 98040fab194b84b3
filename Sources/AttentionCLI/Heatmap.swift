import ArgumentParser
import Attention
import AttentionRendering
import Foundation

/// `attention heatmap`: draw any weights file.
struct Heatmap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw attention weights from a .npy file as a heatmap (terminal, and SVG on request).",
        discussion: """
            The weights are 2-D [Nq, Nk], or 3-D/4-D ([H, Nq, Nk] or [B, H, Nq, Nk]) with --batch and
            --head choosing the slice. Colour when the terminal supports it; plain shades when piped
            or NO_COLOR is set.

            Examples:
              attention attend --query q.npy --key k.npy --value v.npy --output o.npy --weights w.npy
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

    func run() throws {
        let tensor: Tensor<Double> = try NPY.read(contentsOf: URL(fileURLWithPath: weights)).floatingPoint(path: weights)
        let leading: [Int]
        switch tensor.rank {
        case 2: leading = []
        case 3: leading = [head]
        case 4: leading = [batch, head]
        default:
            throw AttentionError.invalidShape(argument: "--weights", shape: tensor.shape, reason: "expected [Nq, Nk], [H, Nq, Nk] or [B, H, Nq, Nk]")
        }
        let matrix = try tensor.view(at: leading).copy()
        let (nq, nk) = (matrix.shape[0], matrix.shape[1])
        let keys = try labels(tokens, count: nk, argument: "--tokens")
        let queries = try labels(queryTokens ?? (nq == nk ? tokens : nil), count: nq, argument: "--query-tokens")
        let rows = matrix.rows
        print(TerminalRenderer.heatmap(rows, rowLabels: queries, columnLabels: keys, style: .detect()), terminator: "")
        if let svg {
            try SVG.write(SVG.document([SVG.heatmap(rows, rowLabels: queries, columnLabels: keys, title: (weights as NSString).lastPathComponent)]), to: svg)
            print("wrote \(svg)")
        }
    }

    func labels(_ text: String?, count: Int, argument: String) throws -> [String] {
        guard let text else { return (0..<count).map(String.init) }
        let words = text.split(separator: " ").map(String.init)
        guard words.count == count else {
            throw AttentionError.invalidArgument(argument: argument, reason: "\(words.count) tokens for \(count) rows/columns of the weights")
        }
        return words
    }
}
