import ArgumentParser
import AttentionExperiments
import AttentionRendering
import Foundation

struct ScalingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Entropy of attention weights as d_k grows, unscaled vs scaled by 1/√d_k.",
        usage: "attention experiment scaling [<options>]",
        discussion: """
            For each d_k in 8, 32, 64, 128, 256, 512: random standard normal queries and
            keys, softmax(q·k) (unscaled) and softmax(q·k/√d_k) (scaled), and the entropy
            of the weights in nats (0 = one-hot, ln(keys) = uniform), mean and standard
            deviation over the trials. Then one query's weights at d_k = 256 both ways.

            Examples:
              attention experiment scaling
              attention experiment scaling --keys 32 --trials 1000 --svg scaling.svg
              attention experiment scaling --json
            """
    )

    @OptionGroup var output: ExperimentOutput
    @Option(help: "Keys per query.") var keys = 16
    @Option(help: "Random queries per dimension.") var trials = 500

    func validate() throws {
        guard keys >= 2 else { throw ValidationError("--keys must be at least 2, got \(keys)") }
        guard trials >= 1 else { throw ValidationError("--trials must be at least 1, got \(trials)") }
    }

    func run() throws {
        try output.checkFiles()
        let r = try ScalingExperiment.run(seed: output.seed, keys: keys, trials: trials)
        try output.emit(text: { Self.text(r) }, data: r, csv: {
            (["dk", "unscaledEntropy", "unscaledEntropyStd", "scaledEntropy", "scaledEntropyStd", "unscaledMaxWeight", "scaledMaxWeight"],
             r.rows.map { [String($0.dk), f($0.unscaledEntropy, 4), f($0.unscaledEntropyStd, 4), f($0.scaledEntropy, 4),
                           f($0.scaledEntropyStd, 4), f($0.unscaledMaxWeight, 4), f($0.scaledMaxWeight, 4)] })
        }, svg: { Self.svg(r) })
    }

    static func text(_ r: ScalingExperiment.Result) -> String {
        var out = "Entropy of attention weights, \(r.keys) keys, \(r.trials) random queries per d_k (seed \(r.seed)).\n"
        out += "Entropy in nats: 0 = all weight on one key, ln \(r.keys) = \(f(r.maximumEntropy)) = uniform.\n\n"
        out += "  d_k   unscaled entropy   scaled entropy   largest weight (unscaled / scaled)\n"
        for row in r.rows {
            out += "  \(String(row.dk).leftPadded(to: 3))   \(f(row.unscaledEntropy)) ± \(f(row.unscaledEntropyStd))      \(f(row.scaledEntropy)) ± \(f(row.scaledEntropyStd))    \(f(row.unscaledMaxWeight)) / \(f(row.scaledMaxWeight))\n"
        }
        out += "\nWithout scaling, q·k spreads as √d_k, softmax saturates and attention turns one-hot: the entropy\n"
        out += "collapses toward 0. Dividing by √d_k keeps the spread at 1 and the entropy nearly flat.\n\n"
        out += "One query at d_k = \(r.example.dk):\n"
        let labels = (0..<r.keys).map { "key \($0)" }
        out += "  unscaled\n" + TerminalRenderer.bars(r.example.unscaledWeights, labels: labels, width: 24)
        out += "  scaled by 1/√\(r.example.dk)\n" + TerminalRenderer.bars(r.example.scaledWeights, labels: labels, width: 24)
        return out
    }

    static func svg(_ r: ScalingExperiment.Result) -> String {
        let labels = r.rows.map { String($0.dk) }
        let entropy = SVG.lineChart([
            .init(name: "unscaled", values: r.rows.map(\.unscaledEntropy), spread: r.rows.map(\.unscaledEntropyStd), color: "#d62728"),
            .init(name: "scaled 1/√d_k", values: r.rows.map(\.scaledEntropy), spread: r.rows.map(\.scaledEntropyStd), color: "#1f77b4"),
        ], xLabels: labels, title: "Entropy of the weights vs d_k", xTitle: "d_k", yTitle: "entropy (nats)")
        let weights = SVG.barChart([
            .init(name: "unscaled", values: r.example.unscaledWeights, color: "#d62728"),
            .init(name: "scaled", values: r.example.scaledWeights, color: "#1f77b4"),
        ], labels: (0..<r.keys).map(String.init), title: "One query's weights at d_k = \(r.example.dk)", yTitle: "weight")
        return SVG.document(title: "Why attention divides by √d_k (\(r.keys) keys, \(r.trials) trials, seed \(r.seed))", [entropy, weights])
    }
}
