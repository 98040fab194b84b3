import ArgumentParser
import AttentionExperiments
import AttentionRendering
import Foundation

struct CrossCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cross",
        abstract: "Self- vs cross-attention: a French sentence reading its English source.",
        usage: "attention experiment cross [<options>]",
        discussion: """
            Self-attention: queries, keys and values from one sequence ("The cat sat on
            the mat"). Cross-attention: queries from another ("Le chat s'est assis sur le
            tapis"), keys and values from the first, as a translation decoder reads its
            encoder. Toy embeddings put each word near its concept, shared across
            languages. Prints the Nq × Nk weight matrix and the word each query reads
            most.

            Examples:
              attention experiment cross
              attention experiment cross --svg cross.svg
            """
    )

    @OptionGroup var output: ExperimentOutput

    func run() throws {
        try output.checkFiles()
        let r = try CrossExperiment.run(seed: output.seed)
        let style = output.style
        try output.emit(text: {
            var out = "Cross-attention: \(r.queryTokens.count) French queries over \(r.keyTokens.count) English keys (seed \(r.seed)); rows = queries.\n"
            out += TerminalRenderer.heatmap(r.cross, rowLabels: r.queryTokens, columnLabels: r.keyTokens, style: style)
            out += "\nWhat each query reads most:\n"
            for read in r.reads { out += "  \(read.query.leftPadded(to: 6)) → \(read.key.rightPadded(to: 4)) \(f(read.weight))\n" }
            out += "\nSelf-attention of the English sentence (square: it attends to itself):\n"
            out += TerminalRenderer.heatmap(r.selfAttention, rowLabels: r.keyTokens, columnLabels: r.keyTokens, style: style)
            return out
        }, data: r, csv: {
            (["kind", "query", "key", "weight"],
             r.cross.enumerated().flatMap { i, row in row.enumerated().map { j, w in ["cross", r.queryTokens[i], r.keyTokens[j], f(w, 6)] } }
             + r.selfAttention.enumerated().flatMap { i, row in row.enumerated().map { j, w in ["self", r.keyTokens[i], r.keyTokens[j], f(w, 6)] } })
        }, svg: {
            SVG.document(title: "Self- vs cross-attention", [
                SVG.heatmap(r.selfAttention, rowLabels: r.keyTokens, columnLabels: r.keyTokens, title: "Self: English → English"),
                SVG.heatmap(r.cross, rowLabels: r.queryTokens, columnLabels: r.keyTokens, title: "Cross: French → English"),
            ])
        })
    }
}
