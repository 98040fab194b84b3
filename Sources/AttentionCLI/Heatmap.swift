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

/// What `attention heatmap` draws, from the bytes of a `.npy` file: the weights' slice `[Nq, Nk]` and
/// its labels, checked, then rendered for the terminal or as SVG. Any bytes give a drawing or a
/// clear error (the heatmap fuzz target holds it to that).
public struct HeatmapDrawing: Sendable {
    /// The weights, one row per query.
    public let rows: [[Double]]
    /// The labels of the rows (queries) and of the columns (keys).
    public let queryLabels: [String], keyLabels: [String]

    /// The slice `[batch, head]` of 2-D to 4-D weights, labelled by `tokens` (keys, split on spaces) and
    /// `queryTokens` (default: the key tokens when the matrix is square); `path` names the file in errors.
    /// - Throws: `AttentionError` for bytes that are not a float `.npy`, a rank other than 2-4, a batch
    ///   or head outside the weights, more than ``largestSide`` queries or keys, or token counts that
    ///   do not match.
    public init(npy data: Data, path: String, batch: Int = 0, head: Int = 0, tokens: String? = nil, queryTokens: String? = nil) throws {
        try self.init(NPY.decode(data, path: path), path: path, batch: batch, head: head, tokens: tokens, queryTokens: queryTokens)
    }

    /// The same from an array already read (`NPY.read(contentsOf:)`).
    public init(_ array: NPYArray, path: String, batch: Int = 0, head: Int = 0, tokens: String? = nil, queryTokens: String? = nil) throws {
        let tensor: Tensor<Double> = try array.floatingPoint(path: path)
        let leading: [Int]
        switch tensor.rank {
        case 2: leading = []
        case 3: leading = [head]
        case 4: leading = [batch, head]
        default:
            throw AttentionError.invalidShape(argument: "--weights", shape: tensor.shape, reason: "expected [Nq, Nk], [H, Nq, Nk] or [B, H, Nq, Nk]")
        }
        for (index, (value, flag)) in zip(leading, tensor.rank == 4 ? ["--batch", "--head"] : ["--head"]).enumerated() {
            guard (0..<tensor.shape[index]).contains(value) else {
                throw AttentionError.invalidArgument(
                    argument: flag, reason: "must be in 0..<\(tensor.shape[index]) for the weights of shape \(tensor.shape), got \(value)")
            }
        }
        let view = try tensor.view(at: leading)
        let (nq, nk) = (view.shape[0], view.shape[1])
        // A valid file can hold [0, 2^47] weights: no labels or cells for sides no heatmap can show.
        guard nq <= Self.largestSide, nk <= Self.largestSide else {
            throw AttentionError.invalidShape(
                argument: "--weights", shape: tensor.shape,
                reason: "a heatmap shows at most \(Self.largestSide) queries and keys; this one is \(nq) × \(nk)")
        }
        let matrix = view.copy()
        keyLabels = try Self.labels(tokens, count: nk, argument: "--tokens")
        queryLabels = try Self.labels(queryTokens ?? (nq == nk ? tokens : nil), count: nq, argument: "--query-tokens")
        rows = matrix.rows
    }

    /// The most queries or keys a heatmap draws.
    public static let largestSide = 4096

    /// The heatmap as terminal text, with its legend.
    public func terminal(style: TerminalStyle) -> String {
        TerminalRenderer.heatmap(rows, rowLabels: queryLabels, columnLabels: keyLabels, style: style)
    }

    /// The heatmap as a standalone SVG document.
    public func svg(title: String) -> String {
        SVG.document([SVG.heatmap(rows, rowLabels: queryLabels, columnLabels: keyLabels, title: title)])
    }

    static func labels(_ text: String?, count: Int, argument: String) throws -> [String] {
        guard let text else { return (0..<count).map(String.init) }
        let words = text.split(separator: " ").map(String.init)
        guard words.count == count else {
            throw AttentionError.invalidArgument(argument: argument, reason: "\(words.count) tokens for \(count) rows/columns of the weights")
        }
        return words
    }
}
