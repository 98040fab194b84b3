import ArgumentParser
import AttentionExplorer
import AttentionModels
import Attention
import AttentionServer
import AttentionServing
import Foundation

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the attention explorer, and with --model a chat model over OpenAI's API.",
        usage: "attention serve [<options>]",
        discussion: """
            Open the printed URL in a browser. The toy explorer edits tokens' keys and
            values, the query, the temperature and the mask, and shows the weights, their
            entropy and the blended output. The model explorer (when the model is
            installed: attention model fetch) shows all-MiniLM-L6-v2's attention on your
            sentence: a head view, every layer × head, and the query and key vectors
            behind one head's weights. With --model-dir naming a GPT-2 folder (what
            attention train gpt writes) it shows that model's causal attention instead:
            each token's row reaches only itself and the tokens before it. With --model
            naming a GGUF file (SmolLM2, Gemma 3: attention model fetch smollm2) it shows
            that decoder's causal attention, each head marked with the key/value head it
            shares (grouped-query attention).

            API (JSON in and out; errors are {"error": "...", "status": "..."} with a 4xx
            status):
              POST /api/attend   {"query": [[..]], "key": [[..]], "value": [[..]],
                                  "scale": s?, "causal": b?, "window": [l, r]?}
                              -> {"output": [[..]], "weights": [[..]], "logSumExp": [..]}
              POST /api/explain  {"text": "...", "pair": "..."?, "layer": l?, "head": h?,
                                  "attention": false?}
                              -> {"tokens": [..], "segments": [..], "attention": {"layers",
                                  "heads", "tokens", "encoding": "uint16le", "data"}?,
                                  "vectors": {"queries", "keys", "scale", ...}?}
              GET  /api/status   whether the model is there, and its kind ("bert", "gpt2"
                                 or "decoder")
            Bodies over 1 MiB and texts over 512 tokens are refused.

            With --model FILE.gguf the model is also served over OpenAI's API, for any
            OpenAI client (base URL http://127.0.0.1:8080/v1):
              POST /v1/chat/completions  {"messages": [{"role": "user", "content": ".."}],
                                          "max_tokens", "temperature", "top_p", "top_k",
                                          "seed", "stop", "stream"}
              POST /v1/completions       {"prompt": "..", the same fields}
              GET  /v1/models, GET /health
            The chat explorer at /chat talks to the model and shows, for any token of
            the conversation, what it attended to in each layer and head
            (POST /api/chat/attention {"messages": [..], "query": N}).
            Requests in flight decode together (--slots of them, each with its own KV
            cache of --context tokens, stored as --kv-dtype); more wait in a queue of
            --queue-limit, and past it are answered 429. Errors are OpenAI's
            {"error": {"message", "type", "param", "code"}}. With --api-key KEY, /v1/
            requests need "Authorization: Bearer KEY". Each request logs a line: its
            id, tokens and timings; a client that leaves before its answer is complete
            cancels its request (logged as 499).

            Examples:
              attention serve
              attention serve --port 9000
              attention serve --model-dir shakespeare-gpt
              attention serve --model SmolLM2-135M-Instruct.Q4_1.gguf
              curl -s localhost:8080/v1/chat/completions \\
                  -d '{"messages": [{"role": "user", "content": "Hi!"}], "max_tokens": 20}'
              curl -s localhost:8080/api/attend \\
                  -d '{"query": [[1, 0]], "key": [[1, 0], [0, 1]], "value": [[1], [2]]}'
            """
    )

    @Option(help: "Address to listen on; the default serves this machine only.") var host = "127.0.0.1"
    @Option(help: "Port (0 picks a free one).") var port = 8080
    @OptionGroup var location: ModelLocation
    @Option(help: ArgumentHelp("A GGUF file of a decoder (Llama, SmolLM2, Gemma 3) to serve over OpenAI's API and explain instead of --model-dir's model.", valueName: "FILE.gguf"))
    var model: String?
    @Option(help: "With --model: requests decoded together, each in a slot with its own KV cache.") var slots = 8
    @Option(help: "With --model: tokens per slot, prompt and answer (default: the model's context, at most 4096).") var context: Int?
    @Option(help: "With --model: requests that may wait for a slot; more are answered 429.") var queueLimit = 64
    @Option(help: ArgumentHelp("With --model: require Authorization: Bearer KEY on /v1/ requests.", valueName: "KEY")) var apiKey: String?
    @Option(help: "Worker threads (default: every active processor).") var threads: Int?
    @Option(help: precisionHelp) var precision: QuantizedPrecision = .int8
    @Option(help: "With --model: storage of the slots' KV caches: float32, float16 or bfloat16 (half the memory and the bytes each step reads).")
    var kvDtype = "float32"

    /// The most slots and queued requests `--slots` and `--queue-limit` take.
    static let maximumSlots = 64, maximumQueue = 4096

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        if model != nil && location.modelDir != nil { throw ValidationError("give --model-dir or --model, not both") }
        guard (1...Self.maximumSlots).contains(slots) else { throw ValidationError("--slots must be in 1...\(Self.maximumSlots), got \(slots)") }
        guard (1...Self.maximumQueue).contains(queueLimit) else {
            throw ValidationError("--queue-limit must be in 1...\(Self.maximumQueue), got \(queueLimit)")
        }
        if let context, context < 2 { throw ValidationError("--context must be at least 2, got \(context)") }
        if let apiKey, apiKey.isEmpty || apiKey.contains(where: { $0.isWhitespace || !$0.isASCII }) {
            throw ValidationError("--api-key must be printable ASCII without spaces")
        }
        try LlamaFile.validate(weights: "as-stored", threads: threads, kvDtype: kvDtype)
        if model == nil {
            for (flag, given) in [("--context", context != nil), ("--api-key", apiKey != nil), ("--kv-dtype", kvDtype != "float32")] where given {
                throw ValidationError("\(flag) applies to the API, which needs --model FILE.gguf")
            }
        }
    }

    func run() async throws { try await serve() }

    /// Runs the server until interrupted.
    func serve() async throws {
        let explored: ExplorerModel
        var api: CompletionService?
        if let model {
            try UserPath.input(model, flag: "--model")
            Allocator.reuseLargeBlocks()
            let file = try LlamaFile(path: model, weights: "as-stored")
            let name = URL(fileURLWithPath: model).lastPathComponent
            explored = .decoder(file.model, file.tokenizer, name: name)
            api = try completionService(file, id: name.hasSuffix(".gguf") ? String(name.dropLast(5)) : name)
        } else {
            explored = ExplorerModel.load(from: location.directory)
        }
        if case let .unavailable(message) = explored { print("Model explorer off: \(message)") }
        if !["127.0.0.1", "::1", "localhost"].contains(host) {
            let exposure = api != nil && apiKey == nil ? " and its model to anyone who reaches it (no --api-key)" : ""
            FileHandle.standardError.write(Data("warning: --host \(host) serves the explorer\(exposure) beyond this machine\n".utf8))
        }
        let served = api?.served.id
        let app = try ExplorerServer.application(host: host, port: port, model: explored, api: api) { url in
            // Unbuffered: scripts wait for this line even when stdout is a pipe.
            FileHandle.standardOutput.write(Data("Attention explorer at \(url) (Ctrl-C to stop)\n".utf8))
            if let served { FileHandle.standardOutput.write(Data("OpenAI API at \(url)v1/ serving \(served)\n".utf8)) }
        }
        defer { api?.generator.shutdown() }
        do {
            try await app.runService()
        } catch where ExplorerServer.isAddressInUse(error) {
            throw CommandError(
                "--port \(port): the port is in use on \(host) (another attention serve?); stop that program, or pick another port (--port 0 takes a free one)",
                status: .unavailable)
        }
    }
}

extension Serve {
    /// The API of `file`'s model, served as `id`: a batched generator of `--slots` slots of `--context` tokens.
    func completionService(_ file: LlamaFile, id: String) throws -> CompletionService {
        let positions = file.model.configuration.contextLength
        if let context, context > positions {
            throw ValidationError("--context must be at most the model's \(positions) positions, got \(context)")
        }
        let configuration = BatchedGenerator.Configuration(
            slots: slots, capacity: context ?? min(positions, 4096), queueLimit: queueLimit, storage: KVCache.Storage(rawValue: kvDtype) ?? .float32,
            options: AttentionOptions(threads: threads, quantizedPrecision: precision))
        let generator = try BatchedGenerator(model: file.model, configuration: configuration)
        let template = try file.chatTemplate.map { try ChatTemplate($0) }
        let served = ServedModel(id: id, model: file.model, tokenizer: file.tokenizer, template: template,
                                 endOfText: file.endOfText, endOfTurn: file.endOfTurn)
        return CompletionService(served: served, generator: generator, apiKey: apiKey) { line in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }
}
