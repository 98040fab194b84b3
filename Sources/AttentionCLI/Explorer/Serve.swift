import ArgumentParser
import AttentionExplorer
import AttentionModels
import AttentionServer
import Foundation

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the attention explorer: a page to watch attention weights move, and its JSON API.",
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

            Examples:
              attention serve
              attention serve --port 9000
              attention serve --model-dir shakespeare-gpt
              attention serve --model SmolLM2-135M-Instruct.Q4_1.gguf
              curl -s localhost:8080/api/attend \\
                  -d '{"query": [[1, 0]], "key": [[1, 0], [0, 1]], "value": [[1], [2]]}'
            """
    )

    @Option(help: "Address to listen on; the default serves this machine only.") var host = "127.0.0.1"
    @Option(help: "Port (0 picks a free one).") var port = 8080
    @OptionGroup var location: ModelLocation
    @Option(help: ArgumentHelp("A GGUF file of a decoder (Llama, SmolLM2, Gemma 3) to explain instead of --model-dir's model.", valueName: "FILE.gguf"))
    var model: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        if model != nil && location.modelDir != nil { throw ValidationError("give --model-dir or --model, not both") }
    }

    func run() async throws { try await serve() }

    /// Runs the server until interrupted.
    func serve() async throws {
        if let model { try UserPath.input(model, flag: "--model") }
        let model = self.model.map { ExplorerModel.load(gguf: URL(fileURLWithPath: $0)) } ?? ExplorerModel.load(from: location.directory)
        if case let .unavailable(message) = model { print("Model explorer off: \(message)") }
        let app = try ExplorerServer.application(host: host, port: port, model: model) { url in
            // Unbuffered: scripts wait for this line even when stdout is a pipe.
            FileHandle.standardOutput.write(Data("Attention explorer at \(url) (Ctrl-C to stop)\n".utf8))
        }
        do {
            try await app.runService()
        } catch where ExplorerServer.isAddressInUse(error) {
            throw CommandError(
                "--port \(port): the port is in use on \(host) (another attention serve?); stop that program, or pick another port (--port 0 takes a free one)",
                status: .unavailable)
        }
    }
}
