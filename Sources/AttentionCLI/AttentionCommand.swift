import ArgumentParser

/// The root of the `attention` command: one subcommand per file in this folder.
public struct AttentionCommand: AsyncParsableCommand {
    /// The command's name, abstract, version and subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Attention as a weighted average whose weights come from the content: compute it, see it, measure it.",
        discussion: """
            Start with the walkthrough:
              attention demo
            Compute attention on your own arrays (.npy, float32 or float64):
              attention attend --query q.npy --key k.npy --value v.npy \\
                  --output o.npy --causal
            Watch attention weights move in a browser:
              attention serve
            Generate text with a GPT-2 checkpoint (causal attention over a KV cache):
              attention generate --model-dir DIR "The cat sat on the"
            """,
        version: "0.1.0",
        subcommands: [Demo.self, Attend.self, Experiment.self, Heatmap.self, Train.self, Serve.self, Model.self, Embed.self, Similarity.self, Explain.self, Generate.self, Bench.self]
    )

    /// The root command (ArgumentParser makes it).
    public init() {}
}

extension AttentionCommand {
    /// Parses the process's arguments and runs the chosen command, awaiting the asynchronous one
    /// (`serve`). The executable calls this: from top-level code, `main()` resolves to the synchronous
    /// overload and so does `run()` on an existential command, which would answer `serve` with its help.
    public static func runAsRoot() async {
        do {
            var command = try parseAsRoot()
            if let server = command as? Serve {
                try await server.serve()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
