import ArgumentParser

/// `attention demo`: the lessons' walkthrough in the terminal.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Walk through attention step by step: one query by hand, then a sentence.",
        discussion: """
            Prints, in order:
              1. the worked single-query example: scores, softmax, weighted sum;
              2. "The cat sat on the mat" with 4-d embeddings and three queries
                 (noun-like, verb-like, article-like), their weights as bars;
              3. attention against a simple average, by cosine similarity to "cat";
              4. the full self-attention matrix, then the causal one;
              5. a temperature sweep with the entropy of each distribution.
            Every number is computed by the Attention library as the command runs.

            Example:
              attention demo
            """
    )

    @Flag(help: "Print every number of the walkthrough as JSON instead of the text.") var json = false

    func run() throws {
        if json {
            print(try Format.json(DemoWalkthrough.numbers()))
        } else {
            print(try DemoWalkthrough.render(), terminator: "")
        }
    }
}
