import Attention
import AttentionModels
import Foundation

/// The model the model explorer explains, or why there is none.
public enum ExplorerModel: Sendable {
    /// all-MiniLM-L6-v2 (BERT): full attention, sentence pairs.
    case loaded(SentenceEmbedder)
    /// A GPT-2 folder (what `attention train gpt` writes): causal attention.
    case gpt2(GPT2Model, ByteLevelBPETokenizer)
    /// A decoder from a GGUF file (Llama, SmolLM2, Gemma 3): causal, grouped-query attention, named
    /// by its file.
    case decoder(LlamaModel, any TextTokenizer, name: String)
    /// Why not, for the page and the API to say.
    case unavailable(String)

    /// Loads the model from `directory`: a GPT-2 if the folder has a byte-level BPE tokenizer
    /// (`merges.txt`, or a BPE `tokenizer.json`), otherwise the BERT model; or records why it cannot.
    public static func load(from directory: URL) -> ExplorerModel {
        if ByteLevelBPETokenizer.isPresent(in: directory) {
            do {
                return .gpt2(try GPT2Model(directory: directory), try ByteLevelBPETokenizer(directory: directory))
            } catch {
                return .unavailable("The GPT-2 in \(directory.path) does not load (\(error)).")
            }
        }
        do {
            try ModelStore.check(directory)
            return .loaded(try SentenceEmbedder(directory: directory))
        } catch {
            return .unavailable("The model is not installed (\(error)). Run `attention model fetch`, then restart `attention serve`.")
        }
    }

    /// Loads the decoder in the GGUF file at `file`, or records why it cannot.
    public static func load(gguf file: URL) -> ExplorerModel {
        do {
            let gguf = try GGUF(contentsOf: file)
            return .decoder(try LlamaModel(gguf: gguf), try ggufTokenizer(gguf), name: file.lastPathComponent)
        } catch {
            return .unavailable("The model in \(file.path) does not load (\(error)).")
        }
    }

    /// What `GET /api/status` answers.
    var status: ExplorerStatus {
        switch self {
        case let .loaded(embedder):
            let c = embedder.encoder.configuration
            return ExplorerStatus(model: true, kind: "bert", name: "all-MiniLM-L6-v2", message: nil,
                                  layers: c.layers, heads: c.heads, maxTokens: ExplorerAPI.maxTokens)
        case let .gpt2(gpt, _):
            let c = gpt.configuration
            return ExplorerStatus(model: true, kind: "gpt2", name: "GPT-2, \(c.width) wide", message: nil,
                                  layers: c.layers, heads: c.heads, maxTokens: min(ExplorerAPI.maxTokens, c.positions))
        case let .decoder(decoder, _, name):
            let c = decoder.configuration
            return ExplorerStatus(model: true, kind: "decoder", name: name, message: nil, layers: c.layers, heads: c.heads,
                                  maxTokens: min(ExplorerAPI.maxTokens, c.contextLength),
                                  keyValueHeads: (0..<c.heads).map { decoder.keyValueHead(of: $0) + 1 })
        case let .unavailable(message):
            return ExplorerStatus(model: false, kind: nil, name: nil, message: message, layers: nil, heads: nil,
                                  maxTokens: ExplorerAPI.maxTokens)
        }
    }
}

/// `GET /api/status`: whether the model explorer has its model, which kind, and its size.
struct ExplorerStatus: Codable, Equatable {
    let model: Bool
    /// "bert" (full attention, pairs), "gpt2" or "decoder" (causal).
    let kind: String?
    let name: String?
    let message: String?
    let layers: Int?
    let heads: Int?
    let maxTokens: Int
    /// For each query head, the key/value head it reads, from 1 (a decoder's grouped-query
    /// attention); nil when every head has its own.
    var keyValueHeads: [Int]? = nil
}
