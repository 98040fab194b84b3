import Attention
import AttentionExplorer
import AttentionModels
import AttentionRendering
import AttentionServing
import Foundation

/// The fuzz targets. Each takes any bytes and must return (an error is a fine answer) without trapping,
/// leaking or touching memory it does not own (AddressSanitizer watches); where the input allows,
/// it also checks a property, and a violated property traps on purpose so libFuzzer keeps the input.
enum FuzzTarget: String, CaseIterable {
    /// `.npy` decoding (every version, dtype, shape); a decoded array re-encodes to the same bits.
    case npy
    /// `.safetensors` parsing, and converting every tensor it lists.
    case safetensors
    /// GGUF parsing (metadata, the tensor table), and converting every small tensor it lists.
    case gguf
    /// BERT's tokenizer on any text (as UTF-8, invalid bytes replaced), over a vocabulary of pieces.
    case wordpiece
    /// GPT-2's byte-level BPE: any text encodes, and decodes back to itself.
    case bpe
    /// The explorer's request bodies: `POST /api/attend` (first byte even) or `POST /api/explain` on
    /// the GPT fixture (odd), answered by the explorer's service as `attention serve` answers them:
    /// a 200 whose body is JSON, or a 4xx.
    case explorer
    /// `attention heatmap`'s input path: `.npy` bytes to the drawing, terminal and SVG.
    case heatmap
    /// OpenAI's completion API as `attention serve --model` answers it, on the GPT fixture with a
    /// chat template: the body of `POST /v1/chat/completions` (first byte even) or
    /// `/v1/completions` (odd), decoded, validated and, when valid, generated (streamed or not)
    /// through a batched generator: a 200 (JSON, or events ending in `[DONE]`), or a 4xx.
    case openai

    nonisolated(unsafe) static var selected: FuzzTarget?
    nonisolated(unsafe) private static var wordPiece: WordPieceTokenizer?
    nonisolated(unsafe) private static var bytePair: ByteLevelBPETokenizer?
    nonisolated(unsafe) private static var explorerService: ExplorerService?
    nonisolated(unsafe) private static var completionService: CompletionService?

    /// `work`'s result, waited for on this thread (libFuzzer calls the target synchronously).
    static func wait<T: Sendable>(_ work: @escaping @Sendable () async -> T) -> T {
        let box = ResultBox<T>(), done = DispatchSemaphore(value: 0)
        Task {
            box.value = await work()
            done.signal()
        }
        done.wait()
        guard let value = box.value else { fatalError("the task ended without a result") }
        return value
    }

    /// The repository's test fixtures (this file is Sources/AttentionFuzz/FuzzTargets.swift).
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Tests/Fixtures")

    /// Loads what the target needs once, before the first input.
    func prepare() throws {
        switch self {
        case .wordpiece: Self.wordPiece = try WordPieceTokenizer(tokens: Self.wordPieceVocabulary)
        case .bpe: Self.bytePair = try ByteLevelBPETokenizer(directory: Self.fixtures.appendingPathComponent("gpt2"))
        case .explorer:
            let directory = Self.fixtures.appendingPathComponent("gpt2")
            Self.explorerService = ExplorerService(model: .gpt2(try GPT2Model(directory: directory), try ByteLevelBPETokenizer(directory: directory)))
        case .openai:
            let directory = Self.fixtures.appendingPathComponent("gpt2")
            let model = try GPT2Model(directory: directory)
            let served = ServedModel(id: "gpt2-fixture", model: model, tokenizer: try ByteLevelBPETokenizer(directory: directory),
                                     template: try DecoderFamily.gemma3.turnTemplate.map { try ChatTemplate($0) }, endOfText: 0, endOfTurn: 0)
            let generator = try BatchedGenerator(model: model, configuration: .init(slots: 2, capacity: model.maximumPositions))
            Self.completionService = CompletionService(served: served, generator: generator)
        case .npy, .safetensors, .gguf, .heatmap: break
        }
    }

    func run(_ data: Data) {
        switch self {
        case .npy:
            guard let array = try? NPY.decode(data) else { return }
            let again: NPYArray?
            switch array {
            case .float32(let t): again = try? NPY.decode(NPY.encode(t))
            case .float64(let t): again = try? NPY.decode(NPY.encode(t))
            case .bool(let t): again = try? NPY.decode(NPY.encode(t))
            }
            guard let again, Self.sameBits(array, again) else { fatalError("a decoded .npy does not survive encode + decode") }
        case .safetensors:
            guard let file = try? SafeTensors(data: data) else { return }
            for name in file.entries.keys.sorted() {
                if let tensor = try? file.tensor(name), tensor.shape != file.entries[name]?.shape {
                    fatalError("tensor '\(name)' converted to the wrong shape")
                }
            }
        case .gguf:
            guard let file = try? GGUF(data: data) else { return }
            guard file.metadataKeys.count == file.metadata.count, Set(file.tensors.map(\.name)).count == file.tensors.count else {
                fatalError("GGUF metadata keys or tensor names not unique")
            }
            // Tensors up to 2^16 elements (a valid file may declare far larger ones, slow to convert).
            for entry in file.tensors where entry.type.isConvertible && entry.elementCount <= 1 << 16 {
                guard let tensor = try? file.tensor(entry.name) else { fatalError("tensor '\(entry.name)' was validated but does not convert") }
                guard tensor.shape == entry.shape else { fatalError("tensor '\(entry.name)' converted to the wrong shape") }
            }
        case .wordpiece:
            guard let tokenizer = Self.wordPiece else { return }
            let ids = tokenizer.encode(String(decoding: data, as: UTF8.self), maxLength: 64)
            guard ids.count <= 64, ids.first == tokenizer.classifyID, ids.last == tokenizer.separatorID,
                  ids.allSatisfy(tokenizer.tokens.indices.contains) else {
                fatalError("WordPiece ids out of range or unframed: \(ids)")
            }
        case .bpe:
            guard let tokenizer = Self.bytePair else { return }
            let text = String(decoding: data, as: UTF8.self)
            let ids = tokenizer.encode(text)
            guard (try? tokenizer.decode(ids)) == text else { fatalError("BPE does not decode its own encoding of \(text.debugDescription)") }
        case .explorer:
            guard let first = data.first, let service = Self.explorerService else { return }
            let answer = service.respond(method: "POST", path: first % 2 == 0 ? "/api/attend" : "/api/explain", body: data.dropFirst())
            switch answer.status {
            case 200:
                guard (try? JSONSerialization.jsonObject(with: answer.body)) != nil else { fatalError("a 200 whose body is not JSON") }
            case 400..<500: break
            default: fatalError("the explorer answered \(answer.status): \(answer.text)")
            }
        case .openai:
            guard let first = data.first, let service = Self.completionService else { return }
            let path = first % 2 == 0 ? "/v1/chat/completions" : "/v1/completions"
            let (status, body) = Self.wait {
                switch await service.respond(method: "POST", path: path, authorization: nil, body: data.dropFirst()) {
                case let .complete(status, _, body): return (status, body)
                case let .events(events):
                    var all = Data()
                    do {
                        for try await event in events { all += event }
                    } catch {
                        fatalError("a stream failed: \(error)")
                    }
                    return (200, all)
                }
            }
            switch status {
            case 200:
                let done = body.starts(with: Data("data: ".utf8)) ? String(decoding: body, as: UTF8.self).hasSuffix("data: [DONE]\n\n")
                    : (try? JSONSerialization.jsonObject(with: body)) != nil
                guard done else { fatalError("a 200 that is neither JSON nor events ending in [DONE]: \(String(decoding: body, as: UTF8.self))") }
            case 400..<500: break
            default: fatalError("the API answered \(status): \(String(decoding: body, as: UTF8.self))")
            }
        case .heatmap:
            // Small drawings only: a real 10,000 × 10,000 heatmap is valid, and slow to fuzz.
            guard data.count <= 1 << 16, let drawing = try? HeatmapDrawing(npy: data, path: "<fuzz>"),
                  drawing.rows.count * (drawing.rows.first?.count ?? 0) <= 4096 else { return }
            _ = drawing.terminal(style: .plain)
            _ = drawing.terminal(style: TerminalStyle(color: true, trueColor: true))
            _ = drawing.svg(title: "fuzz")
        }
    }

    /// Equal shapes and bit-identical elements (NaN payloads included).
    private static func sameBits(_ a: NPYArray, _ b: NPYArray) -> Bool {
        switch (a, b) {
        case (.float32(let x), .float32(let y)): x.shape == y.shape && x.scalars.map(\.bitPattern) == y.scalars.map(\.bitPattern)
        case (.float64(let x), .float64(let y)): x.shape == y.shape && x.scalars.map(\.bitPattern) == y.scalars.map(\.bitPattern)
        case (.bool(let x), .bool(let y)): x == y
        default: false
        }
    }

    /// A small BERT-style vocabulary: the specials, printable ASCII, accented and CJK characters,
    /// common words and their continuation pieces, so that inputs reach every branch of WordPiece
    /// quickly (the real vocabulary's 30,522 tokens make each input 100 times slower).
    static let wordPieceVocabulary: [String] = {
        let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        let ascii = (33...126).map { String(UnicodeScalar(UInt8($0))) }
        let other = ["é", "è", "ü", "ñ", "ß", "猫", "犬", "日", "本", "語", "😀", "α", "β", "ω"]
        let words = ["the", "cat", "sat", "on", "mat", "attention", "is", "all", "you", "need", "un", "##able",
                     "##s", "##ing", "##ed", "play", "##ful", "trans", "##former", "token", "##izer", "word", "##piece"]
        return specials + ascii + ascii.map { "##" + $0 } + other + other.map { "##" + $0 } + words
    }()
}

/// A result handed from a task to the thread that waits for it (the semaphore orders the two).
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
