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
            and the tokens before it, a triangle. With --model naming a Llama GGUF file
            (SmolLM2: attention model fetch smollm2) the maps are causal too, and each
            head says which key/value head it reads (grouped-query attention: 9 query
            heads share 3 key/value heads, so heads 1-3 read the same keys).

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
              attention explain --model smollm2.gguf "The cat sat on the mat" \\
                  --layer 30 --head 4
            """
    )
    @OptionGroup var location: ModelLocation
    @Option(help: ArgumentHelp("A Llama-architecture GGUF file (instead of --model-dir), such as SmolLM2-135M-Instruct.", valueName: "FILE.gguf"))
    var model: String?
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
        if model != nil && location.modelDir != nil { throw ValidationError("give --model-dir or --model, not both") }
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

    /// The same under a Llama GGUF file, and the key/value head each query head reads.
    func llamaAttentions(_ path: String) throws -> (tokens: [String], attentions: [Tensor<Float>], layers: Int, heads: Int, groups: [Int]) {
        try UserPath.input(path, flag: "--model")
        let file = try LlamaFile(path: path, weights: "as-stored")
        let whole = file.tokenizer.encode(sentence)
        guard !whole.isEmpty else { throw ValidationError("the sentence has no tokens") }
        let c = file.model.configuration
        let ids = try fitted(whole, limit: c.contextLength) { Array($0.prefix(c.contextLength)) }
        return (try file.tokenizer.labels(of: ids), try file.model.attentions(ids), c.layers, c.heads, (0..<c.heads).map(file.model.keyValueHead(of:)))
    }

    func run() throws {
        if let svg { try UserPath.output(svg, flag: "--svg") }
        // A Llama file, or a GPT-2 folder (merges.txt beside config.json), gets the causal maps; otherwise the BERT model.
        var groups: [Int]?
        let (tokens, attentions, layers, heads): ([String], [Tensor<Float>], Int, Int)
        if let model {
            let llama = try llamaAttentions(model)
            (tokens, attentions, layers, heads, groups) = (llama.tokens, llama.attentions, llama.layers, llama.heads, llama.groups)
        } else {
            (tokens, attentions, layers, heads) = try location.isGPT2 ? gptAttentions() : bertAttentions()
        }
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
            try writeSVG(tokens: tokens, chosen: chosen, layers: layers, heads: heads, groups: groups, map: map, quiet: true)
            struct Map: Encodable { let tokens: [String]; let layer: Int; let head: Int?; let keyValueHeads: [Int]?; let weights: [[Double]] }
            print(try Format.json(Map(tokens: tokens, layer: layer, head: all ? nil : head, keyValueHeads: groups?.map { $0 + 1 }, weights: chosen)))
            return
        }
        print(all ? "Layer \(layer), mean over its \(heads) heads\(groups.map { " (" + Self.sharing($0) + ")" } ?? ""):"
            : "Layer \(layer), head \(head)\(groups.map { " (" + Self.sharing($0, head: head - 1) + ")" } ?? ""):")
        print(TerminalRenderer.heatmap(chosen, rowLabels: tokens, columnLabels: tokens, style: style), terminator: "")
        print("\nWhat each token attends to most:")
        for (i, row) in chosen.enumerated() {
            let top = row.indices.sorted { row[$0] > row[$1] }.prefix(3)
            print("  \(tokens[i].leftPadded(to: 10)) → " + top.map { "\(tokens[$0]) \(String(format: "%.2f", row[$0]))" }.joined(separator: ", "))
        }
        try writeSVG(tokens: tokens, chosen: chosen, layers: layers, heads: heads, groups: groups, map: map, quiet: false)
    }

    /// Which query heads read which key/value head (from 0 in `groups`, from 1 in the text): for
    /// one head, "reads key/value head 2, with heads 5 and 6"; for all, "heads 1-3 read key/value head 1, …".
    static func sharing(_ groups: [Int], head: Int? = nil) -> String {
        func span(_ heads: [Int]) -> String { heads.count == 1 ? "head \(heads[0] + 1)" : "heads \(heads[0] + 1)-\(heads[heads.count - 1] + 1)" }
        if let head {
            let others = groups.indices.filter { groups[$0] == groups[head] && $0 != head }.map { "\($0 + 1)" }
            let with = others.isEmpty ? "" : ", shared with head\(others.count == 1 ? "" : "s") " + others.joined(separator: others.count == 2 ? " and " : ", ")
            return "reads key/value head \(groups[head] + 1)" + with
        }
        let kv = Array(Set(groups)).sorted()
        return kv.map { g in "\(span(groups.indices.filter { groups[$0] == g })) read key/value head \(g + 1)" }.joined(separator: ", ")
    }

    /// Writes the SVG if `--svg` was given: the grid of every layer × head with `--all`, else the chosen map.
    func writeSVG(tokens: [String], chosen: [[Double]], layers: Int, heads: Int, groups: [Int]?, map: (Int, Int) -> [[Double]], quiet: Bool) throws {
        if let svg {
            let fragments: [SVGFragment]
            if all {
                fragments = (0..<layers).map { l in
                    let grid = (0..<heads).map { h in SVG.heatmap(map(l, h), rowLabels: [], columnLabels: [], title: "L\(l + 1) H\(h + 1)" + (groups.map { " kv\($0[h] + 1)" } ?? ""), cell: 6) }
                    return SVG.row(grid)
                }
                try SVG.write(SVG.column(title: "Every layer × head: \"\(sentence)\"", fragments), to: svg)
            } else {
                try SVG.write(SVG.document(title: "\"\(sentence)\"", [SVG.heatmap(chosen, rowLabels: tokens, columnLabels: tokens, title: "layer \(layer), head \(head)" + (groups.map { " (key/value head \($0[head - 1] + 1))" } ?? ""))]), to: svg)
            }
            if !quiet { print("wrote \(svg)") }
        }
    }
}
