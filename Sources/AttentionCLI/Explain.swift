import ArgumentParser
import Attention
import AttentionModels
import AttentionRendering
import Foundation

/// `attention explain`: real attention maps from the model.
struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the model's real attention on a sentence: one head, or every layer × head.",
        usage: "attention explain [<options>] <sentence>",
        discussion: """
            Tokens are the model's WordPiece tokens, with [CLS] and [SEP]. For each token,
            the tokens it attends to most (in the chosen head, or averaged over all heads
            of the layer with --all). With --model-dir naming a GPT-2 folder (what
            attention train gpt writes), the maps are causal: each token attends to itself
            and the tokens before it, a triangle.

            A sentence longer than the model reads (256 tokens for all-MiniLM-L6-v2,
            [CLS] and [SEP] included; a GPT-2 model's positions) is an error that gives
            its length, unless --truncate keeps its beginning.

            Examples:
              attention explain "The cat sat on the mat because it was tired"
              attention explain "The cat sat on the mat because it was tired" \\
                  --layer 3 --head 7
              attention explain "The cat sat on the mat because it was tired" \\
                  --all --svg model-view.svg
              attention explain --model-dir shakespeare-gpt \\
                  "ROMEO. But soft, what light" --all
            """
    )
    @OptionGroup var location: ModelLocation
    @Argument(help: "The sentence.") var sentence: String
    @Option(help: "Layer, from 1.") var layer = 1
    @Option(help: "Head, from 1.") var head = 1
    @Flag(help: "In the terminal, the mean over the heads of --layer; with --svg, the grid of every layer × head.")
    var all = false
    @Option(help: ArgumentHelp("Write the picture as SVG.", valueName: "FILE")) var svg: String?
    @Flag(help: "Read only the beginning of a sentence longer than the model reads, instead of refusing it.")
    var truncate = false
    @Flag(help: "Print the tokens and the chosen map as JSON: {tokens, layer, head (null with --all), weights [query][key]}.")
    var json = false

    func validate() throws {
        guard !sentence.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ValidationError("the sentence is empty: give some text, for example attention explain \"The cat sat on the mat\"")
        }
    }

    /// `ids` (with `[CLS]`/`[SEP]` for BERT) if they fit `limit` tokens; cut to it with --truncate;
    /// otherwise an error that gives the length and the way out.
    func fitted(_ ids: [Int], limit: Int, cut: ([Int]) -> [Int]) throws -> [Int] {
        guard ids.count > limit else { return ids }
        guard truncate else {
            throw ValidationError("the sentence has \(ids.count) tokens; the model reads at most \(limit): shorten it, or pass --truncate to read its first \(limit)")
        }
        return cut(ids)
    }

    /// The sentence's tokens and every layer's `[heads, T, T]` weights under the BERT model (full attention).
    func bertAttentions() throws -> (tokens: [String], attentions: [Tensor<Float>], layers: Int, heads: Int) {
        let model = try location.load()
        let whole = model.tokenizer.encode(sentence, maxLength: Int.max)
        let ids = try fitted(whole, limit: model.maxTokens) { _ in model.tokenize(sentence) }
        let output = try model.encoder([ids], returning: .attentions)
        let c = model.encoder.configuration
        return (model.tokenizer.decode(ids), output.attentions, c.layers, c.heads)
    }

    /// The same under a GPT-2 folder: causal attention, each token seeing itself and those before it.
    func gptAttentions() throws -> (tokens: [String], attentions: [Tensor<Float>], layers: Int, heads: Int) {
        let tokenizer = try ByteLevelBPETokenizer(directory: location.directory)
        let model = try GPT2Model(directory: location.directory)
        let whole = tokenizer.encode(sentence)
        guard !whole.isEmpty else { throw ValidationError("the sentence has no tokens") }
        let ids = try fitted(whole, limit: model.configuration.positions) { Array($0.prefix(model.configuration.positions)) }
        return (try tokenizer.labels(of: ids), try model.attentions(ids), model.configuration.layers, model.configuration.heads)
    }

    func run() throws {
        if let svg { try UserPath.output(svg, flag: "--svg") }
        // A GPT-2 folder (merges.txt beside config.json) gets the causal maps; otherwise the BERT model.
        let (tokens, attentions, layers, heads) = try location.isGPT2 ? gptAttentions() : bertAttentions()
        guard (1...layers).contains(layer), (1...heads).contains(head) else {
            throw ValidationError("--layer must be 1...\(layers) and --head 1...\(heads)")
        }
        let t = tokens.count
        func map(_ l: Int, _ h: Int) -> [[Double]] {
            let w = attentions[l].scalars
            return (0..<t).map { i in (0..<t).map { j in Double(w[((h * t) + i) * t + j]) } }
        }
        let style = TerminalStyle.detect()
        let chosen: [[Double]]
        if all {
            // Each head's map once, then their mean (not a whole map per cell: that was O(T⁴·H)).
            let maps = (0..<heads).map { map(layer - 1, $0) }
            chosen = (0..<t).map { i in (0..<t).map { j in maps.reduce(0.0) { $0 + $1[i][j] } / Double(heads) } }
        } else {
            chosen = map(layer - 1, head - 1)
        }
        if json {
            try writeSVG(tokens: tokens, chosen: chosen, layers: layers, heads: heads, map: map, quiet: true)
            struct Map: Encodable { let tokens: [String]; let layer: Int; let head: Int?; let weights: [[Double]] }
            print(try Format.json(Map(tokens: tokens, layer: layer, head: all ? nil : head, weights: chosen)))
            return
        }
        print(all ? "Layer \(layer), mean over its \(heads) heads:" : "Layer \(layer), head \(head):")
        print(TerminalRenderer.heatmap(chosen, rowLabels: tokens, columnLabels: tokens, style: style), terminator: "")
        print("\nWhat each token attends to most:")
        for (i, row) in chosen.enumerated() {
            let top = row.indices.sorted { row[$0] > row[$1] }.prefix(3)
            print("  \(tokens[i].leftPadded(to: 10)) → " + top.map { "\(tokens[$0]) \(String(format: "%.2f", row[$0]))" }.joined(separator: ", "))
        }
        try writeSVG(tokens: tokens, chosen: chosen, layers: layers, heads: heads, map: map, quiet: false)
    }

    /// Writes the SVG if `--svg` was given: the grid of every layer × head with `--all`, else the chosen map.
    func writeSVG(tokens: [String], chosen: [[Double]], layers: Int, heads: Int, map: (Int, Int) -> [[Double]], quiet: Bool) throws {
        if let svg {
            let fragments: [SVGFragment]
            if all {
                fragments = (0..<layers).map { l in
                    let grid = (0..<heads).map { h in SVG.heatmap(map(l, h), rowLabels: [], columnLabels: [], title: "L\(l + 1) H\(h + 1)", cell: 6) }
                    return SVG.row(grid)
                }
                try SVG.write(SVG.column(title: "Every layer × head: \"\(sentence)\"", fragments), to: svg)
            } else {
                try SVG.write(SVG.document(title: "\"\(sentence)\"", [SVG.heatmap(chosen, rowLabels: tokens, columnLabels: tokens, title: "layer \(layer), head \(head)")]), to: svg)
            }
            if !quiet { print("wrote \(svg)") }
        }
    }
}
