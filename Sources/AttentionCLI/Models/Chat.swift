import ArgumentParser
import Attention
import AttentionModels
import Foundation

/// `attention chat`: a conversation with a GGUF chat model, kept in its KV caches between turns.
struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk with a Llama-architecture chat model (GGUF); the conversation stays in its KV caches.",
        usage: "attention chat --model <FILE.gguf> [options]",
        discussion: """
            Type a message and press Enter; the answer streams as it is generated.
            Each turn renders the whole conversation through the file's chat
            template, and only the tokens the caches do not hold yet run through
            the model: earlier turns are not recomputed. /reset starts over
            (keeping --system); /quit or Ctrl-D leaves. After each answer,
            standard error gets the tokens computed and reused, and the speeds.
            --input reads the messages from a file, one per line, and prints each
            one before its answer (a transcript).

            Sampling: temperature 0.2 and top-p 0.9 by default (a small model's
            greedy answers tend to repeat themselves); --greedy always takes the
            most likely token.

            Examples:
              attention model fetch smollm2      # prints where the file went
              attention chat --model smollm2.gguf
              attention chat --model smollm2.gguf --greedy \\
                  --system "Answer in one sentence."
              attention chat --model smollm2.gguf --input questions.txt
            """
    )

    @Option(help: ArgumentHelp("A Llama-architecture GGUF file with a chat template, such as SmolLM2-135M-Instruct.", valueName: "FILE.gguf"))
    var model: String
    @Option(help: "A system message that opens the conversation.") var system: String?
    @Option(help: ArgumentHelp("Read the messages from FILE, one per line, instead of the terminal.", valueName: "FILE"))
    var input: String?
    @Option(help: "New tokens per answer at most.") var maxTokens = 256
    @Option(help: "Tokens the conversation can reach (the KV caches' capacity, up to the model's context).") var context = 2048
    @Option(help: "Divides the logits before sampling; 0 is greedy.") var temperature = 0.2
    @Option(help: "Sample among the K most likely tokens only.") var topK: Int?
    @Option(help: "Sample among the most likely tokens whose probabilities add up to P.") var topP: Double = 0.9
    @Option(help: "Seed of the sampler: the same seed and messages give the same answers.") var seed: UInt64 = 42
    @Flag(help: "Always take the most likely token (same as --temperature 0).") var greedy = false
    @Option(help: "Storage of the KV cache: float32, float16 or bfloat16.") var kvDtype = "float32"
    @Option(help: ArgumentHelp("Keep the file's block-quantized matrices as-stored, or dequantize them to float32.", valueName: "as-stored|float32"))
    var weights = "as-stored"
    @Option(help: "Worker threads (default: every active processor).") var threads: Int?
    @Option(help: precisionHelp) var precision: QuantizedPrecision = .int8

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1, got \(maxTokens)") }
        guard context >= 2 else { throw ValidationError("--context must be at least 2, got \(context)") }
        try validateSampling(temperature: temperature, topK: topK, topP: topP)
        try LlamaFile.validate(weights: weights, threads: threads, kvDtype: kvDtype)
    }

    func run() throws {
        try UserPath.input(model, flag: "--model")
        if let input { try UserPath.input(input, flag: "--input") }
        Allocator.reuseLargeBlocks()
        let file = try LlamaFile(path: model, weights: weights)
        guard let source = file.chatTemplate else {
            throw ValidationError("\(model) has no chat template (tokenizer.chat_template): attention generate --model continues plain text instead")
        }
        let positions = file.model.configuration.contextLength
        guard context <= positions else {
            throw ValidationError("--context must be at most the model's \(positions) positions, got \(context)")
        }
        var session = try ChatSession(
            model: file.model, tokenizer: file.tokenizer, template: try ChatTemplate(source), endOfTurn: file.endOfTurn,
            system: system, capacity: context, storage: KVCache.Storage(rawValue: kvDtype) ?? .float32, seed: seed)
        let sampling = Sampling(temperature: greedy ? 0 : temperature, topK: topK, topP: topP, seed: seed)
        let options = AttentionOptions(threads: threads, quantizedPrecision: precision)

        let interactive = input == nil && isatty(STDIN_FILENO) == 1
        var lines = try input.map { try String(contentsOfFile: $0, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
        func nextLine() -> String? {
            if interactive { FileHandle.standardOutput.write(Data("> ".utf8)) }
            guard lines != nil else { return readLine(strippingNewline: true) }
            return lines!.isEmpty ? nil : lines!.removeFirst()
        }
        if interactive {
            let c = file.model.configuration
            note("\(URL(fileURLWithPath: model).lastPathComponent): \(c.layers) layers, \(c.heads) query heads over \(c.keyValueHeads) key/value heads; "
                + "up to \(context) tokens of conversation. /reset starts over, /quit or Ctrl-D leaves.")
        }
        while let raw = nextLine() {
            let message = raw.trimmingCharacters(in: .whitespaces)
            if message.isEmpty { continue }
            if !interactive { write("> \(message)\n") }
            switch message {
            case "/quit", "/exit": return
            case "/reset":
                session.reset()
                note("(the conversation starts over)")
                continue
            default: break
            }
            var stream = UTF8Stream()
            do {
                let turn = try session.reply(to: message, maxTokens: maxTokens, sampling: sampling, options: options) { token in
                    if token != file.endOfTurn { stream.write(try file.tokenizer.bytes(of: [token])) }
                }
                stream.finish()
                write("\n")
                let steps = max(turn.generatedIDs.count - 1, 0)
                note("(\(turn.newTokens) new tokens at \(Format.number(Double(turn.newTokens) / max(turn.promptSeconds, 1e-9), 1)) tokens/s, "
                    + "\(turn.reusedTokens) read from the cache; \(turn.generatedIDs.count) generated, "
                    + "\(Format.number(Double(steps) / max(turn.decodeSeconds, 1e-9), 1)) tokens/s"
                    + (turn.finished ? ")" : "; cut at --max-tokens \(maxTokens))"))
            } catch let error as AttentionError {
                stream.finish()
                guard case .invalidArgument(argument: "message", _) = error else { throw error }
                let length = (try? session.rendered(adding: message).ids.count) ?? 0
                note("the conversation with this message is \(length) tokens, more than --context \(context) holds: /reset starts over, a larger --context holds more")
            }
        }
    }

    /// Standard output, unbuffered like the streamed answer (print's buffer would reorder them).
    private func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    private func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
