import ArgumentParser
import Attention
import AttentionDistributed
import AttentionServer
import Foundation

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
            Talk with SmolLM2-135M-Instruct from its GGUF file (grouped-query attention):
              attention model fetch smollm2
              attention chat --model FILE.gguf

            """ + "\n" + ExitStatus.helpText,
        version: "0.1.0",
        // The groups are the source folders: Lessons/, Arrays/, Models/, Explorer/.
        groupedSubcommands: [
            CommandGroup(name: "Lesson", subcommands: [Demo.self, Experiment.self, Train.self]),
            CommandGroup(name: "Array", subcommands: [Attend.self, Heatmap.self, Bench.self]),
            CommandGroup(name: "Model", subcommands: [Model.self, Embed.self, Similarity.self, Explain.self, Generate.self, Chat.self]),
            CommandGroup(name: "Explorer", subcommands: [Serve.self]),
        ]
    )

    /// The root command (ArgumentParser makes it).
    public init() {}
}

extension AttentionCommand {
    /// Process-wide settings the executable makes before anything else runs (and before its first
    /// `await`): one allocator arena for every thread (see `Allocator.useOneArena()`).
    public static func prepareProcess() {
        Allocator.useOneArena()
    }

    /// Parses the process's arguments and runs the chosen command, awaiting the asynchronous one
    /// (`serve`). The executable calls this: from top-level code, `main()` resolves to the synchronous
    /// overload and so does `run()` on an existential command, which would answer `serve` with its help.
    public static func runAsRoot() async {
        if let message = unknownSubcommandMessage(Array(CommandLine.arguments.dropFirst())) {
            FileHandle.standardError.write(Data("Error: \(message)\n  See 'attention --help'.\n".utf8))
            Foundation.exit(ExitStatus.usage.rawValue)
        }
        // Parse errors and validate()'s: ArgumentParser's message with the subcommand's usage, status 64.
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            if let server = command as? Serve {
                try await server.serve()
            } else {
                try command.run()
            }
        } catch let error as ValidationError {
            // A flag found wrong once the command looked at its input (a sentence too long, say).
            let path = commandPath(of: type(of: command)).joined(separator: " ")
            FileHandle.standardError.write(Data("Error: \(error.message)\n  See '\(path) --help'.\n".utf8))
            Foundation.exit(ExitStatus.usage.rawValue)
        } catch {
            // The project's errors carry their own status; the rest (help, clean exits) are ArgumentParser's.
            switch error {
            case is CommandError, is AttentionError, is ExplorerPageError, is CocoaError, is DistributedError:
                FileHandle.standardError.write(Data("Error: \(message(for: error))\n".utf8))
                Foundation.exit(exitStatus(for: error))
            default:
                exit(withError: error)
            }
        }
    }
}

extension AttentionCommand {
    /// `["attention", "train", "gpt"]` for `TrainGPT`: the words that name a command.
    static func commandPath(of type: any ParsableCommand.Type) -> [String] {
        func search(_ node: any ParsableCommand.Type, _ path: [String]) -> [String]? {
            let here = path + [node._commandName]
            if node == type { return here }
            for child in node.configuration.subcommands {
                if let found = search(child, here) { return found }
            }
            return nil
        }
        return search(AttentionCommand.self, []) ?? ["attention"]
    }
}
