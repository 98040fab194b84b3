import ArgumentParser
import AttentionExperiments
import AttentionRendering
import Foundation

/// `attention train`: the recall experiment (the default) or a GPT on Shakespeare.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train models: attention against mean pooling and a GRU on associative recall (default), or a GPT.",
        subcommands: [TrainRecall.self, TrainGPT.self],
        defaultSubcommand: TrainRecall.self
    )
}

struct TrainRecall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recall",
        abstract: "Train attention, mean pooling and a GRU on associative recall; see which recalls at which length.",
        discussion: """
            Associative recall: a sequence of key->value pairs (distinct keys out of 256,
            values out of 16), then one of the keys; the answer is its value. Chance is
            1/16 = 0.0625. Each position holds one pair (key embedding + value embedding).

            Three models of similar size (parameters outside the embeddings are printed):
              attention     one multi-head attention layer (4 heads), the query key
                            attending over the pairs, and a linear readout;
              mean pooling  the mean of the pairs next to the query key, a hidden ReLU
                            layer, a readout;
              GRU           a gated recurrent network reading the pairs one by one, then
                            the query key; its hidden size is chosen to match the attention
                            model's parameters.
            Each is trained once with Adam on the same batches, their length cycling
            through the lengths, then scored on the same 500 held-out sequences of each
            length. Then: where the trained heads look, and how alike the heads are.

            --no-scale trains the attention model twice instead, with and without the
            1/√d_k factor, at a large head dimension (256 unless --head-dimension is
            given), and prints the loss and the gradient norm of the query and key
            projections as training goes.

            Examples:
              attention train
              attention train --lengths 8,64 --steps 300 --svg recall.svg
              attention train --no-scale --svg scale.svg
              attention train --json
            """
    )

    @OptionGroup var output: ExperimentOutput
    @Option(help: ArgumentHelp("Sequence lengths (pairs per sequence), comma-separated.", valueName: "N,N,..."))
    var lengths: String?
    @Option(help: ArgumentHelp("Models, comma-separated: attention, mean, gru.", valueName: "M,M,..."))
    var models: String?
    @Option(help: "Training steps per model.") var steps = 600
    @Option(help: "Sequences per training step.") var batchSize = 32
    @Option(help: "Adam's learning rate.") var learningRate = 3e-3
    @Option(help: "Embedding size of every model.") var embedDimension = 64
    @Option(help: "Attention heads.") var heads: Int?
    @Option(help: "Dimension of each head's queries and keys (d_k).") var headDimension: Int?
    @Flag(help: "Compare training with and without the 1/√d_k scale at a large d_k.") var noScale = false
    @Flag(help: "No progress lines on stderr (they are off with --json and --csv too).") var quiet = false

    func validate() throws {
        for (name, value) in [("--steps", steps), ("--batch-size", batchSize), ("--embed-dimension", embedDimension)] where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
        if steps > 10_000_000 { throw ValidationError("--steps must be at most 10000000, got \(steps)") }
        if let heads, heads < 1 { throw ValidationError("--heads must be at least 1, got \(heads)") }
        if let headDimension, headDimension < 1 { throw ValidationError("--head-dimension must be at least 1, got \(headDimension)") }
        guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--learning-rate must be positive, got \(learningRate)") }
        _ = try parsedLengths()
        _ = try parsedModels()
    }

    func parsedLengths() throws -> [Int]? {
        guard let lengths else { return nil }
        let values = lengths.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 256 }) else {
            throw ValidationError("--lengths must be comma-separated integers in 1...256 (the 256 keys of a sequence are distinct), got '\(lengths)'")
        }
        return values.compactMap { $0 }
    }

    func parsedModels() throws -> [RecallExperiment.Model]? {
        guard let models else { return nil }
        let names: [String: RecallExperiment.Model] = ["attention": .attention, "mean": .meanPooling, "gru": .gru]
        return try models.split(separator: ",").map {
            let name = $0.trimmingCharacters(in: .whitespaces).lowercased()
            guard let model = names[name] else {
                throw ValidationError("--models: unknown model '\(name)'; choose from attention, mean, gru")
            }
            return model
        }
    }

    var configuration: RecallExperiment.Configuration {
        get throws {
            var c = RecallExperiment.Configuration()
            c.seed = output.seed
            c.steps = steps
            c.batchSize = batchSize
            c.learningRate = learningRate
            c.embedDimension = embedDimension
            c.heads = heads ?? (noScale ? 1 : 4)
            c.headDimension = headDimension ?? (noScale ? 256 : nil)
            if let lengths = try parsedLengths() { c.lengths = lengths } else if noScale { c.lengths = [64] }
            if let models = try parsedModels() { c.models = models }
            return c
        }
    }

    func run() throws {
        try output.checkFiles()
        Allocator.reuseLargeBlocks()
        let style = output.style
        let quiet = self.quiet || output.json || output.csv
        func report(_ r: RecallExperiment.Run) {
            guard !quiet else { return }
            let line = "  trained \(r.model.rawValue) in \(f(r.seconds, 1)) s"
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        if noScale {
            var c = try configuration
            c.models = [.attention]
            c.scaled = true
            c.probeScores = true
            let scaled = try RecallExperiment.run(c, progress: report)
            c.scaled = false
            let unscaled = try RecallExperiment.run(c, progress: report)
            let comparison = ScaleComparison(scaled: scaled, unscaled: unscaled)
            try output.emit(text: { Self.text(comparison) }, data: comparison, csv: { Self.csv(comparison) }, svg: { Self.svg(comparison) })
        } else {
            let r = try RecallExperiment.run(configuration, progress: report)
            try output.emit(text: { Self.text(r, style: style) }, data: r, csv: { Self.csv(r) }, svg: { Self.svg(r) })
        }
    }

    // MARK: Recall vs length

    static func text(_ r: RecallExperiment.Result, style: TerminalStyle) -> String {
        let c = r.configuration
        let lengths = c.lengths, models = c.models
        var out = "Associative recall: each model trained for \(c.steps) steps of \(c.batchSize) sequences, the length cycling\n"
        out += "through \(lengths.map(String.init).joined(separator: ", ")) pairs; held-out accuracy at each length (chance \(f(r.chance, 4)), seed \(c.seed)).\n\n"
        out += "  model           params   length" + lengths.map { String($0).leftPadded(to: 7) }.joined() + "\n"
        for model in models {
            guard let run = r.run(model) else { continue }
            out += "  " + model.rawValue.rightPadded(to: 14) + String(run.parameters).leftPadded(to: 8) + "         "
            out += run.accuracies.map { f($0).leftPadded(to: 7) }.joined() + "\n"
        }
        out += "\nTraining loss (mean per \(c.logEvery) steps, first -> last):\n"
        for model in models {
            guard let run = r.run(model), let first = run.losses.first, let last = run.losses.last else { continue }
            out += "  " + model.rawValue.rightPadded(to: 14) + TerminalRenderer.sparkline(run.losses) + "  \(f(first, 2)) -> \(f(last, 2))\n"
        }
        if let inspection = r.inspection {
            let heads = inspection.weights.count
            out += "\nWhere the trained attention heads look (length \(inspection.length), one held-out sequence;\n"
            out += "the query's matching key is at position \(inspection.matchingPosition), marked *):\n"
            let columns = (0..<inspection.length).map { $0 == inspection.matchingPosition ? "*\($0)" : "\($0)" }
            out += TerminalRenderer.heatmap(inspection.weights, rowLabels: (1...heads).map { "head \($0)" }, columnLabels: columns, style: style)
            out += "Mean weight on the matching key over the held-out set: "
            out += inspection.weightOnMatch.enumerated().map { "head \($0.offset + 1) \(f($0.element))" }.joined(separator: ", ") + "\n"
            out += "Head similarity over the held-out set: cosine \(f(inspection.diversity.meanCosine)), correlation \(f(inspection.diversity.meanCorrelation))"
            out += " (\(inspection.diversity.pairs) pairs; 1 = identical maps, 0 = unrelated).\n"
        }
        return out
    }

    static func csv(_ r: RecallExperiment.Result) -> (header: [String], rows: [[String]]) {
        (["model", "length", "parameters", "accuracy", "finalLoss", "seconds"],
         r.runs.flatMap { run in
             zip(r.configuration.lengths, run.accuracies).map { length, accuracy in
                 [run.model.rawValue, String(length), String(run.parameters), f(accuracy, 4), f(run.losses.last ?? .nan, 4), f(run.seconds, 2)]
             }
         })
    }

    static let colors: [RecallExperiment.Model: String] = [.attention: "#1f77b4", .meanPooling: "#ff7f0e", .gru: "#2ca02c"]

    static func svg(_ r: RecallExperiment.Result) -> String {
        let c = r.configuration
        let accuracy = SVG.lineChart(
            r.runs.map { .init(name: $0.model.rawValue, values: $0.accuracies, color: colors[$0.model] ?? "#000") },
            xLabels: c.lengths.map(String.init), title: "Held-out accuracy vs sequence length", xTitle: "pairs per sequence", yTitle: "accuracy")
        let series = r.runs.map { SVG.Series(name: $0.model.rawValue, values: $0.losses, color: colors[$0.model] ?? "#000") }
        let steps = (series.first?.values.indices).map { $0.map { String(min(c.steps, ($0 + 1) * c.logEvery)) } } ?? []
        let loss = SVG.lineChart(series, xLabels: sparseLabels(steps), title: "Training loss (all lengths)", xTitle: "step", yTitle: "cross-entropy")
        var fragments = [SVG.row([accuracy, loss])]
        if let inspection = r.inspection {
            let columns = (0..<inspection.length).map { $0 == inspection.matchingPosition ? "*\($0)" : "\($0)" }
            fragments.append(SVG.heatmap(
                inspection.weights, rowLabels: (1...inspection.weights.count).map { "head \($0)" }, columnLabels: columns,
                title: "Trained heads: the query's weights (matching key *)"))
        }
        return SVG.column(title: "attention train (seed \(c.seed))", fragments)
    }

    /// Every label, or every k-th when there are many (the others empty).
    static func sparseLabels(_ labels: [String]) -> [String] {
        let every = max(1, labels.count / 6)
        return labels.enumerated().map { $0.offset % every == every - 1 || $0.offset == 0 ? $0.element : "" }
    }

    // MARK: With and without 1/√d_k

    struct ScaleComparison: Codable {
        let scaled: RecallExperiment.Result
        let unscaled: RecallExperiment.Result
    }

    static func text(_ r: ScaleComparison) -> String {
        let c = r.scaled.configuration
        var out = "Training the attention model with and without 1/√d_k: d_k = \(c.resolvedHeadDimension), \(c.heads) head(s),\n"
        out += "\(c.steps) steps of \(c.batchSize) sequences (seed \(c.seed)).\n"
        if let s = r.scaled.run(.attention), let u = r.unscaled.run(.attention) {
            out += "Length \(c.lengths.map(String.init).joined(separator: ", ")): held-out accuracy \(s.accuracies.map { f($0) }.joined(separator: ", ")) scaled, "
            out += "\(u.accuracies.map { f($0) }.joined(separator: ", ")) unscaled (chance \(f(r.scaled.chance, 4)))\n\n"
            out += "          training loss        |∂L/∂scores|          |∂L/∂W_q,W_k|\n"
            out += "   step   scaled  unscaled     scaled  unscaled     scaled  unscaled\n"
            for i in s.losses.indices where i < u.losses.count {
                out += "  " + String(min(c.steps, (i + 1) * c.logEvery)).leftPadded(to: 5)
                out += f(s.losses[i]).leftPadded(to: 9) + f(u.losses[i]).leftPadded(to: 10)
                out += sci(s.scoreGradientNorms[i]).leftPadded(to: 11) + sci(u.scoreGradientNorms[i]).leftPadded(to: 10)
                out += sci(s.queryKeyGradientNorms[i]).leftPadded(to: 11) + sci(u.queryKeyGradientNorms[i]).leftPadded(to: 10) + "\n"
            }
        }
        if let s = r.scaled.run(.attention), let u = r.unscaled.run(.attention), !s.scoreGradientNorms.isEmpty {
            let mean = { (x: [Double]) in x.reduce(0, +) / Double(max(1, x.count)) }
            out += "\nWithout 1/√d_k the scores spread √\(c.resolvedHeadDimension) = \(f(Double(c.resolvedHeadDimension).squareRoot(), 0)) times wider, the softmax starts near one-hot,\n"
            out += "and it passes little gradient back to the scores: on average \(f(mean(u.scoreGradientNorms), 4)) unscaled against\n"
            out += "\(f(mean(s.scoreGradientNorms), 4)) scaled. The projections' gradients are not small (the unscaled scores carry\n"
            out += "the factor √d_k), but what reaches them from a saturated softmax is the dominant key's signal, not\n"
            out += "which key should win: final training loss \(f(u.losses.last ?? .nan)) unscaled vs \(f(s.losses.last ?? .nan)) scaled (chance ln \(c.valueVocabulary) = \(f(log(Double(c.valueVocabulary))))).\n"
        }
        return out
    }

    static func sci(_ x: Double) -> String { String(format: "%.2e", x) }

    static func csv(_ r: ScaleComparison) -> (header: [String], rows: [[String]]) {
        var rows: [[String]] = []
        for (name, result) in [("scaled", r.scaled), ("unscaled", r.unscaled)] {
            for run in result.runs {
                for i in run.losses.indices {
                    rows.append([name, String(min(result.configuration.steps, (i + 1) * result.configuration.logEvery)), f(run.losses[i], 5),
                                 sci(run.scoreGradientNorms[i]), sci(run.queryKeyGradientNorms[i])])
                }
            }
        }
        return (["scale", "step", "loss", "scoreGradientNorm", "queryKeyGradientNorm"], rows)
    }

    static func svg(_ r: ScaleComparison) -> String {
        let c = r.scaled.configuration
        var charts: [SVGFragment] = []
        if let s = r.scaled.run(.attention), let u = r.unscaled.run(.attention) {
            let steps = sparseLabels(s.losses.indices.map { String(min(c.steps, ($0 + 1) * c.logEvery)) })
            charts.append(SVG.lineChart([.init(name: "scaled 1/√d_k", values: s.losses, color: "#1f77b4"),
                                         .init(name: "unscaled", values: u.losses, color: "#d62728")],
                                        xLabels: steps, title: "Training loss", xTitle: "step", yTitle: "cross-entropy"))
            charts.append(SVG.lineChart([.init(name: "scaled 1/√d_k", values: s.scoreGradientNorms, color: "#1f77b4"),
                                         .init(name: "unscaled", values: u.scoreGradientNorms, color: "#d62728")],
                                        xLabels: steps, title: "Gradient reaching the scores, |∂L/∂S|", xTitle: "step", yTitle: "norm"))
        }
        return SVG.column(title: "attention train --no-scale: d_k = \(c.resolvedHeadDimension) (seed \(c.seed))", [SVG.row(charts)])
    }
}
