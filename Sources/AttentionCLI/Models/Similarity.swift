import ArgumentParser
import Attention
import AttentionModels
import AttentionRendering
import Foundation

/// `attention similarity`: cosine of two sentences' embeddings.
struct Similarity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cosine similarity of two sentences' embeddings, or the lines of a file most similar to a query.",
        usage: """
            attention similarity [<options>] <first> <second>
            attention similarity --input FILE --query TEXT [<options>]
            """,
        discussion: """
            With --input and --query, embeds every line of the file (as `attention embed --input` \
            reads it) and the query, and prints the --top most similar lines, best first, with their \
            cosine and line number.

            Examples:
              attention similarity "The cat sat on the mat" "A cat was sitting on a rug"
              attention similarity --input lines.txt --query "a cat on a mat" --top 3
            """
    )
    @OptionGroup var location: ModelLocation
    @OptionGroup var corpusInput: CorpusInput
    @Option(help: ArgumentHelp("The text to compare every line of --input with.", valueName: "TEXT")) var query: String?
    @Option(help: "How many of the most similar lines to print.") var top = 5
    @Flag(help: "No progress or notes on stderr (there is no progress in a pipe either).") var quiet = false
    @Argument(help: "The first sentence.") var first: String?
    @Argument(help: "The second sentence.") var second: String?
    @Flag(help: "Print JSON: {\"first\", \"second\", \"cosine\"}, or with --input an array of {\"line\", \"text\", \"cosine\"}; cosines in full precision.")
    var json = false

    func validate() throws {
        if corpusInput.input == nil {
            guard first != nil, second != nil else { throw ValidationError("give two sentences, or --input FILE --query TEXT") }
            guard query == nil else { throw ValidationError("--query needs --input FILE, the lines to compare it with") }
        } else {
            guard first == nil else { throw ValidationError("give two sentences or --input FILE --query TEXT, not both") }
            guard query != nil else { throw ValidationError("--input needs --query TEXT, the text to compare its lines with") }
        }
        guard top >= 1 else { throw ValidationError("--top must be at least 1, got \(top)") }
    }

    func run() throws {
        if let corpus = try corpusInput.read(), let query {
            try rank(corpus, query: query)
            return
        }
        guard let first, let second else { return }
        let v = try location.load().embed([first, second])
        let cosine = try cosineSimilarity(v[0], v[1])
        if json {
            struct Answer: Encodable { let first: String, second: String, cosine: Double }
            print(try Format.json(Answer(first: first, second: second, cosine: cosine)))
        } else {
            print(String(format: "%.4f", cosine))
        }
    }

    /// The `top` lines of the corpus most similar to `query`, best first (ties by line number).
    func rank(_ corpus: Corpus, query: String) throws {
        let model = try location.load()
        let vectors = try corpus.embed(with: model, batchSize: 32, quiet: quiet)
        let target = try model.embed([query])[0]
        let scored = try vectors.enumerated().map { line, vector in (line: line, cosine: try cosineSimilarity(target, vector)) }
        let best = scored.sorted { $0.cosine != $1.cosine ? $0.cosine > $1.cosine : $0.line < $1.line }.prefix(top)
        if json {
            struct Match: Encodable { let line: Int, text: String, cosine: Double }
            print(try Format.json(best.map { Match(line: $0.line + 1, text: corpus.texts[$0.line], cosine: $0.cosine) }))
        } else {
            for match in best {
                print(String(format: "%.4f", match.cosine) + "  line \(match.line + 1): \(corpus.texts[match.line])")
            }
        }
    }
}
