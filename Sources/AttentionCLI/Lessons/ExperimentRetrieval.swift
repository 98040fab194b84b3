import ArgumentParser
import AttentionExperiments
import AttentionRendering
import Foundation

struct RetrievalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieval",
        abstract: "Retrieve one item from a sequence: attention vs averaging vs RNN compression.",
        usage: "attention experiment retrieval [<options>]",
        discussion: """
            Each sequence holds (key, value) pairs of random vectors; the query is one
            item's key and the right answer is that item's value. For lengths 4 to 512:
              attention       softmax(q·Kᵀ/√d)·V: keeps every item, compares the query
                              with each key;
              average         the mean of the values;
              moving average  h ← 0.9 h + 0.1 v over the sequence;
              RNN memory      a recurrent d × d state S ← S + v·kᵀ read as S·q (linear
                              attention run as an RNN): compression into a state of fixed
                              size.
            cosine: similarity of the answer to the right value (mean over test
            sequences); accuracy: how often the answer is nearer (by cosine) to the right
            value than to every other value of its sequence.

            Examples:
              attention experiment retrieval
              attention experiment retrieval --trials 50 --svg retrieval.svg
            """
    )

    @OptionGroup var output: ExperimentOutput
    @Option(help: "Sequences per length.") var trials = 200
    @Option(help: "Dimension of keys and values (and of the RNN memory, d × d).") var dimension = 32

    func validate() throws {
        for (name, value) in [("--trials", trials), ("--dimension", dimension)] where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
        if trials > 1_000_000 { throw ValidationError("--trials must be at most 1000000, got \(trials)") }
    }

    func run() throws {
        try output.checkFiles()
        let r = try RetrievalExperiment.run(seed: output.seed, dimension: dimension, trials: trials)
        let methods: [(String, KeyPath<RetrievalExperiment.Row, RetrievalExperiment.Score>, String)] = [
            ("attention", \.attention, "#1f77b4"), ("average", \.average, "#7f7f7f"),
            ("moving average", \.movingAverage, "#2ca02c"), ("RNN memory", \.rnnMemory, "#d62728"),
        ]
        try output.emit(text: {
            var out = "Retrieving one item by its key (\(r.dimension)-d keys and values, \(r.trials) sequences per length, seed \(r.seed)).\n\n"
            out += "  length | cosine to the right value       | accuracy\n"
            out += "         | attn    avg     ema     rnn     | attn    avg     ema     rnn\n"
            for row in r.rows {
                let c = methods.map { f(row[keyPath: $0.1].cosine, 3).leftPadded(to: 6) }.joined(separator: "  ")
                let a = methods.map { f(row[keyPath: $0.1].accuracy, 3).leftPadded(to: 6) }.joined(separator: "  ")
                out += "  \(String(row.length).leftPadded(to: 6)) | \(c) | \(a)\n"
            }
            out += "\nAttention compares the query with every key, so it finds the item at any length. The average,\n"
            out += "the moving average and the RNN's \(r.dimension) × \(r.dimension) memory hold every item in a state of fixed\n"
            out += "size; the memory recalls short sequences, then items interfere as the length passes d = \(r.dimension).\n"
            return out
        }, data: r, csv: {
            (["length", "method", "cosine", "accuracy"], r.rows.flatMap { row in
                methods.map { [String(row.length), $0.0, f(row[keyPath: $0.1].cosine, 4), f(row[keyPath: $0.1].accuracy, 4)] }
            })
        }, svg: {
            let labels = r.rows.map { String($0.length) }
            let cosine = SVG.lineChart(methods.map { m in .init(name: m.0, values: r.rows.map { $0[keyPath: m.1].cosine }, color: m.2) },
                                       xLabels: labels, title: "Cosine to the right value", xTitle: "sequence length", yTitle: "cosine")
            let accuracy = SVG.lineChart(methods.map { m in .init(name: m.0, values: r.rows.map { $0[keyPath: m.1].accuracy }, color: m.2) },
                                         xLabels: labels, title: "Retrieval accuracy", xTitle: "sequence length", yTitle: "accuracy")
            return SVG.document(title: "Attention retrieves; averages and fixed-size RNN states blur (seed \(r.seed))", [cosine, accuracy])
        })
    }
}
