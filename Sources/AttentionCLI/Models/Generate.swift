import ArgumentParser
import Attention
import AttentionModels
import Foundation

/// `attention generate`: text from a GPT-2 checkpoint, streamed as it is generated.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt with a GPT-2 or Llama model (causal attention, one token at a time).",
        usage: "attention generate (--model-dir <DIR>|--model <FILE>) [options] <prompt>",
        discussion: """
            --model-dir: a folder as transformers' save_pretrained writes a GPT-2 model and
            its tokenizer: config.json, model.safetensors, and tokenizer.json (transformers
            5) or vocab.json and merges.txt.
            --model: a GGUF file of a Llama or Gemma 3 model with its tokenizer, such as
            SmolLM2-135M-Instruct (attention model fetch smollm2) or Gemma 3 270M
            (attention model fetch gemma3); its Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K
            and Q6_K matrices stay in their blocks (Q3_K and IQ4_NL ones as Q6_K and Q8_0
            blocks of the same values), read by the quantized kernels (--weights float32
            dequantizes them at load instead, as transformers does).
            Each step feeds only the new token through the layers, reading the keys and
            values of the earlier tokens from a KV cache; --no-cache recomputes the whole
            sequence every step (the same tokens, each step O(N²) instead of O(N)).

            Examples:
              attention generate --model-dir gpt2 "The cat sat on the" --max-tokens 40
              attention generate --model-dir gpt2 "Once upon a time" \\
                  --temperature 0.8 --top-k 40 --seed 7
              attention generate --model-dir gpt2 "Attention is" --greedy --json
              attention generate --model smollm2.gguf "1, 2, 3," --greedy --max-tokens 20
              attention generate --model smollm2.gguf --chat "What is attention?"
            """
    )

    @Option(help: ArgumentHelp("A folder with config.json, model.safetensors, and tokenizer.json or vocab.json and merges.txt.", valueName: "DIR"))
    var modelDir: String?
    @Option(help: ArgumentHelp("A Llama-architecture GGUF file (instead of --model-dir).", valueName: "FILE.gguf"))
    var model: String?
    @Argument(help: "The prompt (empty: start from <|endoftext|>).") var prompt: String
    @Option(help: "New tokens at most (fewer if the model's positions run out).") var maxTokens = 64
    @Option(help: "Divides the logits before sampling; 0 is greedy.") var temperature = 1.0
    @Option(help: "Sample among the K most likely tokens only.") var topK: Int?
    @Option(help: "Sample among the most likely tokens whose probabilities add up to P (nucleus sampling).") var topP: Double?
    @Option(help: "Seed of the sampler: the same seed gives the same text.") var seed: UInt64 = 42
    @Flag(help: "Always take the most likely token (same as --temperature 0).") var greedy = false
    @Flag(help: "Recompute the whole sequence at every step instead of reading a KV cache.") var noCache = false
    @Flag(help: "Go on past the model's end-of-text token (eos_token_id) instead of stopping there.") var noStop = false
    @Option(help: "Storage of the KV cache: float32, float16 or bfloat16.") var kvDtype = "float32"
    @Option(help: ArgumentHelp("--model only: keep the file's block-quantized matrices as-stored, or dequantize them to float32.", valueName: "as-stored|float32"))
    var weights = "as-stored"
    @Option(help: "Worker threads (default: every active processor).") var threads: Int?
    @Option(help: precisionHelp) var precision: QuantizedPrecision = .int8
    @Flag(help: "Print one JSON object (prompt, ids, text, speeds) instead of streaming text.") var json = false
    @Flag(help: "Send the prompt as one user message through the model's chat template (--model files that have one); print only the answer.")
    var chat = false

    var sampling: Sampling {
        Sampling(temperature: greedy ? 0 : temperature, topK: topK, topP: topP, seed: seed)
    }

    func validate() throws {
        guard (modelDir == nil) != (model == nil) else {
            throw ValidationError(modelDir == nil ? "give --model-dir DIR (a GPT-2 folder) or --model FILE.gguf" : "give --model-dir or --model, not both")
        }
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be at least 0, got \(maxTokens)") }
        try validateSampling(temperature: temperature, topK: topK, topP: topP)
        try LlamaFile.validate(weights: weights, threads: threads, kvDtype: kvDtype)
    }

    func run() throws {
        // Loading converts, transposes and packs every weight: reusing the freed blocks saves page faults.
        Allocator.reuseLargeBlocks()
        let (model, tokenizer, stop, start, template) = try load()
        var promptText = prompt
        if chat {
            guard let template else {
                throw ValidationError("--chat needs a --model file with a chat template (tokenizer.chat_template)")
            }
            promptText = try ChatTemplate(template).render([ChatTemplate.Message(role: "user", content: prompt)], addGenerationPrompt: true)
        }
        var promptIDs = tokenizer.encode(promptText)
        if promptIDs.isEmpty {
            guard let start else {
                throw ValidationError("the prompt is empty and the vocabulary has no token to start from (<|endoftext|> or the file's bos_token_id)")
            }
            promptIDs = [start]
        }
        var stream = UTF8Stream()
        if !json && !chat { stream.write(Array(prompt.utf8)) }
        let result = try model.generate(
            prompt: promptIDs, maxTokens: maxTokens, sampling: sampling, useCache: !noCache,
            cacheStorage: KVCache.Storage(rawValue: kvDtype) ?? .float32, endOfText: stop, options: AttentionOptions(threads: threads, quantizedPrecision: precision)
        ) { token in
            if !json, token != stop { stream.write(try tokenizer.bytes(of: [token])) }
        }
        let text = try tokenizer.decode(result.generatedIDs.filter { $0 != stop })
        let promptRate = Double(promptIDs.count) / max(result.promptSeconds, 1e-9)
        let steps = max(result.generatedIDs.count - 1, 0)
        let decodeRate = Double(steps) / max(result.decodeSeconds, 1e-9)
        if json {
            let object: [String: Any] = [
                "prompt": prompt, "promptIds": promptIDs, "generatedIds": result.generatedIDs, "text": text,
                "promptSeconds": result.promptSeconds, "decodeSeconds": result.decodeSeconds,
                "promptTokensPerSecond": promptRate, "generatedTokensPerSecond": decodeRate, "tokensPerSecond": decodeRate, "cache": noCache ? "none" : kvDtype,
                "stopReason": result.stopReason.rawValue,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        stream.finish()
        FileHandle.standardOutput.write(Data("\n".utf8))
        let line = "prompt: \(promptIDs.count) tokens in \(Format.number(result.promptSeconds * 1000, 1)) ms (\(Format.number(promptRate, 1)) tokens/s); "
            + "generated: \(result.generatedIDs.count) tokens, \(Format.number(decodeRate, 1)) tokens/s after the first"
            + (noCache ? " (no cache)" : " (\(kvDtype) KV cache)")
        let reason = result.stopReason == .contextFull
            ? "stopped before --max-tokens \(maxTokens): the model's \(model.maximumPositions) positions are full\n" : ""
        FileHandle.standardError.write(Data((line + "\n" + reason).utf8))
    }

    /// The model and its tokenizer; the token to stop at (like transformers' generate(): the
    /// end-of-text token, not printed) unless --no-stop, and the one to start an empty prompt from.
    func load() throws -> (model: any AutoregressiveModel, tokenizer: any TextTokenizer, stop: Int?, start: Int?, chatTemplate: String?) {
        if let model {
            let file = try LlamaFile(path: model, weights: weights)
            return (file.model, file.tokenizer, noStop ? nil : chat ? file.endOfTurn : file.endOfText, file.start, file.chatTemplate)
        }
        let modelDir = modelDir ?? "."
        let directory = URL(fileURLWithPath: modelDir)
        let files = ["config.json", "model.safetensors"]
        var missing = files.filter { !FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) }
        if !ByteLevelBPETokenizer.isPresent(in: directory) { missing.append("tokenizer (tokenizer.json, or vocab.json and merges.txt)") }
        guard missing.isEmpty else {
            throw ValidationError("\(modelDir) has no \(missing.joined(separator: ", ")): --model-dir needs a GPT-2 folder as transformers' save_pretrained writes it (config.json, model.safetensors, and tokenizer.json or vocab.json and merges.txt)")
        }
        let tokenizer = try ByteLevelBPETokenizer(directory: directory)
        let gpt = try GPT2Model(directory: directory)
        let stop = noStop ? nil : gpt.configuration.endOfTextToken ?? tokenizer.endOfText
        return (gpt, tokenizer, stop, tokenizer.endOfText, nil)
    }
}

/// The sampling options generate and chat share: `--temperature`, `--top-k` and `--top-p`.
func validateSampling(temperature: Double, topK: Int?, topP: Double?) throws {
    guard temperature.isFinite, temperature >= 0 else { throw ValidationError("--temperature must be finite and at least 0 (0 = greedy), got \(temperature)") }
    if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1, got \(topK)") }
    if let topP, !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1], got \(topP)") }
}

/// A GGUF file of a decoder family (Llama, Gemma 3) opened for generate, chat and explain: the
/// model, its tokenizer, and the special tokens and chat template from its metadata.
struct LlamaFile {
    let model: LlamaModel
    let tokenizer: any TextTokenizer
    /// The file's eos_token_id: the end of a text.
    let endOfText: Int?
    /// The end of an answer in a chat: the family's end-of-turn token (Gemma's `<end_of_turn>`),
    /// else the end of a text.
    let endOfTurn: Int?
    /// The token an empty prompt starts from (bos_token_id, else eos_token_id).
    let start: Int?
    /// tokenizer.chat_template, if the file has one.
    let chatTemplate: String?

    /// The options generate and chat share: `--weights`, `--threads` and `--kv-dtype`.
    static func validate(weights: String, threads: Int?, kvDtype: String) throws {
        guard LlamaModel.WeightPrecision(rawValue: weights) != nil else {
            throw ValidationError("--weights must be as-stored or float32, got '\(weights)'")
        }
        if let threads, !(1...AttentionOptions.maximumThreads).contains(threads) {
            throw ValidationError("--threads must be in 1...\(AttentionOptions.maximumThreads), got \(threads)")
        }
        guard KVCache.Storage(rawValue: kvDtype) != nil else {
            throw ValidationError("--kv-dtype must be float32, float16 or bfloat16, got '\(kvDtype)'")
        }
    }

    /// Opens `path` (`weights`: as-stored or float32, validated by the command).
    init(path: String, weights: String) throws {
        let file = try GGUF(contentsOf: URL(fileURLWithPath: path))
        tokenizer = try ggufTokenizer(file)
        model = try LlamaModel(gguf: file, precision: LlamaModel.WeightPrecision(rawValue: weights) ?? .asStored)
        endOfText = file.endOfText
        start = file.metadata["tokenizer.ggml.bos_token_id"]?.integer ?? endOfText
        chatTemplate = file.chatTemplate(of: model.configuration.family)
        endOfTurn = file.endOfTurn(of: model.configuration.family)
    }
}
