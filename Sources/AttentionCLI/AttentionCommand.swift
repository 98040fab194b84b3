import ArgumentParser

/// The root of the `attention` command: one subcommand per file in this folder.
public struct AttentionCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Attention as a weighted average whose weights come from the content: compute it, see it, measure it.",
        discussion: """
            Start with the walkthrough:
              attention demo
            Compute attention on your own arrays (.npy, float32 or float64):
              attention attend --query q.npy --key k.npy --value v.npy \\
                  --output o.npy --causal
            """,
        version: "0.1.0",
        subcommands: [Demo.self, Attend.self, Experiment.self, Heatmap.self, Train.self, Model.self, Embed.self, Similarity.self, Explain.self, Bench.self]
    )

    public init() {}
}
