import ArgumentParser
import AttentionExperiments
import AttentionRendering
import Foundation

struct PatternsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patterns",
        abstract: "Full, causal and local attention over a sentence, as heatmaps.",
        usage: "attention experiment patterns [<options>]",
        discussion: """
            Self-attention of seeded random token embeddings (repeated words share one)
            under three masks: full (every token sees every token, as in BERT), causal (a
            token sees itself and earlier tokens, as in GPT) and local (a window of
            --window tokens centred on each token, as in Longformer). Rows are queries,
            columns keys.

            Examples:
              attention experiment patterns
              attention experiment patterns \\
                  --tokens "The cat sat on the mat because it was tired" --svg patterns.svg
            """
    )

    @OptionGroup var output: ExperimentOutput
    @Option(help: "The sentence, split on spaces.") var tokens = "The cat sat on the mat"
    @Option(help: "Keys in the local window (odd: the token and its neighbours).") var window = 3

    func validate() throws {
        guard !words.isEmpty else { throw ValidationError("--tokens must hold at least one word") }
        guard window >= 1 else { throw ValidationError("--window must be at least 1, got \(window)") }
    }

    var words: [String] { tokens.split(separator: " ").map(String.init) }

    func run() throws {
        try output.checkFiles()
        let r = try PatternsExperiment.run(tokens: words, seed: output.seed, window: window)
        let style = output.style
        let panels = [("Full", r.full), ("Causal", r.causal), ("Local (window \(window))", r.local)]
        try output.emit(text: {
            var out = "Self-attention over \"\(r.tokens.joined(separator: " "))\" (\(r.dimension)-d random embeddings, seed \(r.seed)); rows = queries, columns = keys.\n"
            for (title, w) in panels {
                out += "\n\(title)\n" + TerminalRenderer.heatmap(w, rowLabels: r.tokens, columnLabels: r.tokens, style: style)
            }
            return out
        }, data: r, csv: {
            (["pattern", "query", "key", "weight"], panels.flatMap { title, w in
                w.enumerated().flatMap { i, row in row.enumerated().map { j, x in [title, r.tokens[i], r.tokens[j], f(x, 6)] } }
            })
        }, svg: {
            SVG.document(title: "Attention patterns", panels.map {
                SVG.heatmap($0.1, rowLabels: r.tokens, columnLabels: r.tokens, title: $0.0)
            })
        })
    }
}
