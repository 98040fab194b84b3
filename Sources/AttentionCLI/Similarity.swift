import ArgumentParser
import Attention
import AttentionModels
import AttentionRendering
import Foundation

/// `attention similarity`: cosine of two sentences' embeddings.
struct Similarity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cosine similarity of two sentences' embeddings.",
        discussion: """
            Example:
              attention similarity "The cat sat on the mat" "A cat was sitting on a rug"
            """
    )
    @OptionGroup var location: ModelLocation
    @Argument(help: "The first sentence.") var first: String
    @Argument(help: "The second sentence.") var second: String
    @Flag(help: "Print {\"first\", \"second\", \"cosine\"} as JSON, the cosine in full precision.") var json = false

    func run() throws {
        let v = try location.load().embed([first, second])
        let cosine = try cosineSimilarity(v[0], v[1])
        if json {
            struct Answer: Encodable { let first: String, second: String, cosine: Double }
            print(try Format.json(Answer(first: first, second: second, cosine: cosine)))
        } else {
            print(String(format: "%.4f", cosine))
        }
    }
}
