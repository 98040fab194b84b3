import ArgumentParser
import Attention
import AttentionModels
import AttentionRendering
import Foundation

/// `--input FILE [--field NAME]`, shared by `embed` and `similarity`.
struct CorpusInput: ParsableArguments {
    @Option(help: ArgumentHelp("A corpus file: one text per line, or JSON Lines (.jsonl, or with --field).", valueName: "FILE"))
    var input: String?
    @Option(help: ArgumentHelp("The string field of each JSON Lines object that holds its text (default for .jsonl: text).", valueName: "NAME"))
    var field: String?

    func validate() throws {
        if input == nil, field != nil { throw ValidationError("--field reads JSON Lines given with --input") }
    }

    /// The file's texts, or nil without `--input`.
    func read() throws -> Corpus? { try input.map { try Corpus.read($0, field: field) } }
}

/// The texts of a corpus file for `embed --input` and `similarity --input`: one text per line, or,
/// for a `.jsonl` file (or with `--field`), one JSON object per line whose string field is the text.
///
/// Line `i` of the file is text `i` and row `i` of the output: an empty line of a text file is the
/// empty text (embedded as sentence-transformers embeds "", from `[CLS] [SEP]`), never skipped. A
/// final newline ends the last line rather than starting an empty one; `\r\n` endings are read as
/// `\n`. A JSON Lines file has no empty records: a blank line there is an error naming it.
struct Corpus {
    let texts: [String]
    /// How many texts are empty lines of a text file.
    var emptyLines = 0
    /// What the notes call a text: a line of a file, or a sentence given as an argument.
    var unit = "line"

    /// Sentences given on the command line.
    init(sentences: [String]) {
        texts = sentences
        unit = "sentence"
    }

    private init(texts: [String], emptyLines: Int) {
        self.texts = texts
        self.emptyLines = emptyLines
    }

    /// Reads `path` (given to `flag`); `field` names the JSON field, nil for a plain text file
    /// unless the name ends in `.jsonl` (then "text").
    static func read(_ path: String, flag: String = "--input", field: String?) throws -> Corpus {
        try UserPath.input(path, flag: flag)
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw CommandError("\(flag) \(path): cannot be read (\(error.localizedDescription))", status: .ioError)
        }
        guard !data.isEmpty else { throw CommandError("\(flag) \(path): has no lines", status: .dataError) }
        // Lines are cut at the byte 0x0A (a Swift Character would keep "\r\n" whole), then decoded.
        var pieces = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if data.last == UInt8(ascii: "\n") { pieces.removeLast() }
        let lines = try pieces.enumerated().map { index, bytes in
            let line = bytes.last == UInt8(ascii: "\r") ? bytes.dropLast() : bytes
            guard let text = String(validating: line, as: UTF8.self) else {
                throw CommandError("\(flag) \(path) line \(index + 1): is not UTF-8 text", status: .dataError)
            }
            return text
        }
        let jsonField = field ?? (path.lowercased().hasSuffix(".jsonl") ? "text" : nil)
        guard let jsonField else {
            return Corpus(texts: lines, emptyLines: lines.count { $0.isEmpty })
        }
        let texts = try lines.enumerated().map { index, line in
            let place = "\(flag) \(path) line \(index + 1)"
            guard !line.allSatisfy(\.isWhitespace) else {
                throw CommandError("\(place): is blank; a JSON Lines file has one object per line", status: .dataError)
            }
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            } catch {
                throw CommandError("\(place): is not JSON", status: .dataError)
            }
            guard let record = object as? [String: Any] else {
                throw CommandError("\(place): is not a JSON object", status: .dataError)
            }
            guard let value = record[jsonField] as? String else {
                let reason = record[jsonField] == nil ? "has no field \"\(jsonField)\"" : "has a field \"\(jsonField)\" that is not a string"
                throw CommandError("\(place): \(reason) (choose the field with --field)", status: .dataError)
            }
            return value
        }
        return Corpus(texts: texts, emptyLines: 0)
    }

    /// Embeds every text in batches by length, with a progress line on a terminal (texts, texts/s,
    /// time left) when `progress`, and says once on stderr how many texts were cut at the model's
    /// limit; `quiet` silences both.
    func embed(with model: SentenceEmbedder, batchSize: Int, quiet: Bool, progress: Bool = true) throws -> [[Float]] {
        let log = ProgressLog(quiet: quiet), bar = ProgressLog(quiet: quiet || !progress)
        let started = DispatchTime.now().uptimeNanoseconds
        let (vectors, truncated) = try model.embedCorpus(texts, batchSize: batchSize) { done in
            let seconds = max(Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9, 1e-9)
            let rate = Double(done) / seconds
            bar.progress("embedded \(done)/\(texts.count) texts, \(Format.number(rate, 1))/s, "
                         + "\(TerminalRenderer.clock(Double(texts.count - done) / rate)) left",
                         keep: bar.terminal && done == texts.count)
        }
        if !truncated.isEmpty {
            let lines = truncated.prefix(5).map { String($0 + 1) }.joined(separator: ", ") + (truncated.count > 5 ? ", …" : "")
            log.line("note: \(truncated.count) text(s) longer than \(model.maxTokens) tokens were cut to \(model.maxTokens) "
                     + "(\(unit)\(truncated.count == 1 ? "" : "s") \(lines)), as sentence-transformers cuts them")
        }
        if emptyLines > 0 {
            log.line("note: \(emptyLines) empty line(s) embedded as the empty text, so that row i is line i")
        }
        return vectors
    }
}

/// Writes embeddings to `path`: `.npy` as float32 [N, dimensions], `.jsonl` as one
/// `{"text", "embedding"}` object per line in input order. Atomically: the file appears complete or
/// not at all.
enum EmbeddingOutput {
    static func check(_ path: String, flag: String = "--output") throws {
        let lower = path.lowercased()
        guard lower.hasSuffix(".npy") || lower.hasSuffix(".jsonl") else {
            throw CommandError("\(flag) \(path): give a .npy or .jsonl file name", status: .usage)
        }
        try UserPath.output(path, flag: flag)
    }

    static func write(_ vectors: [[Float]], texts: [String], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        if path.lowercased().hasSuffix(".npy") {
            let dimensions = vectors.first?.count ?? 0
            try NPY.write(try Tensor(shape: [vectors.count, dimensions], scalars: vectors.flatMap { $0 }), to: url)
            return
        }
        struct Record: Encodable { let text: String, embedding: [Float] }
        let encoder = JSONEncoder()
        var data = Data()
        for (text, vector) in zip(texts, vectors) {
            data += try encoder.encode(Record(text: text, embedding: vector))
            data.append(UInt8(ascii: "\n"))
        }
        try data.write(to: url, options: .atomic)
    }
}
