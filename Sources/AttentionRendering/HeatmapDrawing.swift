import Attention
import Foundation

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
