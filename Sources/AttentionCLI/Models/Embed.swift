import ArgumentParser
import Attention
import AttentionModels
import AttentionRendering
import Foundation

/// `attention embed`: sentence embeddings.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a 384-d embedding for each sentence (mean pooling over real tokens, L2-normalized).",
        usage: """
            attention embed [<options>] <sentences> ...
            attention embed --input FILE [--output FILE] [<options>]
            """,
        discussion: """
            With --input, embeds a corpus file: one text per line (an empty line is the empty text, \
            so that row i is line i), or one JSON object per line for a .jsonl file or with --field. \
            Texts are batched by length as sentence-transformers batches them (sorted, embedded, \
            returned in file order); texts over 256 tokens are cut to 256, said once on stderr. With \
            stderr a terminal, a progress line shows texts, texts/s and time left. --output writes a \
            .npy (float32 [N, 384]) or a .jsonl ({"text", "embedding"} per line), atomically.

            Examples:
              attention embed "The cat sat on the mat" "A dog lay on the rug"
              attention embed --json "The cat sat on the mat" > embedding.json
              attention embed --input lines.txt --output embeddings.npy
              attention embed --input records.jsonl --field body --output embeddings.jsonl
            """
    )
    @OptionGroup var location: ModelLocation
    @OptionGroup var corpusInput: CorpusInput
    @Option(help: ArgumentHelp("Write the embeddings to a .npy (float32 [N, 384]) or .jsonl file instead of printing them.", valueName: "FILE"))
    var output: String?
    @Option(help: "Texts per batch.") var batchSize = 32
    @Flag(help: "Print a JSON array of arrays, one per sentence, in input order.") var json = false
    @Flag(help: "No progress or notes on stderr (there is no progress in a pipe either).") var quiet = false
    @Argument(help: "Sentences.") var sentences: [String] = []

    func validate() throws {
        if corpusInput.input == nil {
            guard !sentences.isEmpty else { throw ValidationError("give at least one sentence, or a file with --input") }
        } else {
            guard sentences.isEmpty else { throw ValidationError("give sentences or --input FILE, not both") }
        }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if output != nil, json { throw ValidationError("--json prints the embeddings; --output writes them: choose one") }
    }

    func run() throws {
        // Files are checked before the model loads, so that a wrong path fails at once.
        let corpus = try corpusInput.read() ?? Corpus(sentences: sentences)
        if let output { try EmbeddingOutput.check(output) }
        let model = try location.load()
        let texts = corpus.texts
        // A few sentences on the command line take a moment: no progress line for one batch of them.
        let vectors = try corpus.embed(with: model, batchSize: batchSize, quiet: quiet,
                                       progress: corpusInput.input != nil || texts.count > batchSize)
        if let output {
            try EmbeddingOutput.write(vectors, texts: texts, to: output)
            if !quiet { FileHandle.standardError.write(Data("wrote \(vectors.count) embeddings to \(output)\n".utf8)) }
        } else if json {
            print("[" + vectors.map { "[" + $0.map { "\($0)" }.joined(separator: ", ") + "]" }.joined(separator: ",\n ") + "]")
        } else {
            for (sentence, v) in zip(texts, vectors) {
                print("\(sentence)\n  [" + v.prefix(8).map { String(format: "%.4f", $0) }.joined(separator: ", ") + ", … \(v.count) values]")
            }
        }
    }
}
