import Attention
import AttentionRendering
import Foundation

/// The text of `attention demo`, built as a string so that tests can read it (public for them only).
public enum DemoWalkthrough {
    static let words = ["The", "cat", "sat", "on", "the", "mat"]

    /// Four features per word, by hand: roughly (noun-ness, function-word-ness, verb-ness, animal/object-ness).
    static let embeddings: [[Double]] = [
        [0.1, 0.9, 0.0, 0.1],   // The  (article)
        [0.8, 0.1, 0.3, 0.9],   // cat  (noun, animal)
        [0.2, 0.1, 0.9, 0.2],   // sat  (verb)
        [0.1, 0.5, 0.1, 0.0],   // on   (preposition)
        [0.1, 0.9, 0.0, 0.1],   // the  (article)
        [0.7, 0.2, 0.2, 0.8],   // mat  (noun, object)
    ]

    static let queries: [(name: String, vector: [Double])] = [
        ("a noun-like query (looking for things like \"cat\")", [0.8, 0.0, 0.2, 0.9]),
        ("a verb-like query (looking for things like \"sat\")", [0.2, 0.0, 0.9, 0.2]),
        ("an article-like query (looking for things like \"the\")", [0.1, 0.9, 0.0, 0.1]),
    ]

    /// Every number the walkthrough shows, computed by the library: what `attention demo --json` prints.
    public struct Numbers: Encodable, Sendable {
        /// Section 1: one query, two keys, scale 1.
        public struct WorkedExample: Encodable, Sendable {
            let query: [Double], keys: [[Double]], values: [[Double]], scores: [Double], weights: [Double], output: [Double]
        }
        /// Section 2: one query over the sentence.
        public struct SentenceQuery: Encodable, Sendable {
            let name: String, query: [Double], weights: [Double], output: [Double]
        }
        /// Section 3: attention against the plain average, by cosine to "cat".
        public struct Comparison: Encodable, Sendable {
            let cat: [Double], average: [Double], averageCosine: Double
            let attended: [Double], attendedCosine: Double, sharp: [Double], sharpCosine: Double
        }
        /// Section 4: every word as a query, without a mask and causal.
        public struct SelfAttention: Encodable, Sendable {
            let words: [String], full: [[Double]], causal: [[Double]]
        }
        /// Section 5: the noun-like query at one temperature.
        public struct Temperature: Encodable, Sendable {
            let temperature: Double, weights: [Double], entropy: Double
        }
        let workedExample: WorkedExample
        let sentenceQueries: [SentenceQuery]
        let comparison: Comparison
        let selfAttention: SelfAttention
        let temperatures: [Temperature]
    }

    /// Computes every number of the walkthrough.
    public static func numbers() throws -> Numbers {
        let query = [0.5, 0.5], keys = [[0.1, 0.2], [0.2, 0.3]], values = [[0.6, 0.8], [0.7, 0.9]]
        let worked = try singleQueryAttention(query: query, keys: keys, values: values, scale: 1)
        let sentence = try queries.map { name, vector in
            let r = try singleQueryAttention(query: vector, keys: embeddings, values: embeddings)
            return Numbers.SentenceQuery(name: name, query: vector, weights: r.weights, output: r.output)
        }
        let cat = embeddings[1]
        let attended = try singleQueryAttention(query: queries[0].vector, keys: embeddings, values: embeddings)
        let sharp = try singleQueryAttention(query: queries[0].vector, keys: embeddings, values: embeddings, scale: 8)
        let average = (0..<4).map { c in embeddings.map { $0[c] }.reduce(0, +) / Double(embeddings.count) }
        let x = try Tensor<Double>(embeddings)
        let maps = try [AttentionMask.none, .causal].map { mask in
            try scaledDotProductAttention(query: x, key: x, value: x, mask: mask, returning: .weights).weights?.rows ?? []
        }
        let temperatures = try [0.25, 0.5, 1, 2, 4].map { t in
            let w = try scoredAttention(query: Tensor(queries[0].vector), key: x, value: x, score: .temperature(t)).weights?.scalars ?? []
            return Numbers.Temperature(temperature: t, weights: w, entropy: entropy(w))
        }
        return Numbers(
            workedExample: .init(query: query, keys: keys, values: values, scores: worked.scores, weights: worked.weights, output: worked.output),
            sentenceQueries: sentence,
            comparison: .init(cat: cat, average: average, averageCosine: try cosineSimilarity(average, cat),
                              attended: attended.output, attendedCosine: try cosineSimilarity(attended.output, cat),
                              sharp: sharp.output, sharpCosine: try cosineSimilarity(sharp.output, cat)),
            selfAttention: .init(words: words, full: maps[0], causal: maps[1]),
            temperatures: temperatures)
    }

    /// The whole walkthrough as text, as `attention demo` prints it.
    public static func render() throws -> String {
        let n = try numbers()
        var out = ""
        out += "Attention is a weighted average whose weights come from the content.\n"
        out += "  output = Σ_j softmax(scores)_j · value_j,   scores_j = scale · (query · key_j)\n\n"
        out += workedExample(n.workedExample)
        out += sentenceQueries(n.sentenceQueries)
        out += attentionVersusAverage(n.comparison)
        out += selfAttentionMatrices(n.selfAttention)
        out += temperatureSweep(n.temperatures)
        return out
    }

    private static func heading(_ number: Int, _ title: String) -> String {
        let text = "\(number). \(title)"
        return text + "\n" + String(repeating: "─", count: text.count) + "\n"
    }

    /// 1. One query, two keys, by hand.
    static func workedExample(_ r: Numbers.WorkedExample) -> String {
        let (query, keys, values) = (r.query, r.keys, r.values)
        let exps = r.scores.map { exp($0) }
        var out = heading(1, "One query, step by step (scale 1)")
        out += "  query  = \(Format.vector(query, 1))\n"
        out += "  keys   = \(Format.vector(keys[0], 1)), \(Format.vector(keys[1], 1))\n"
        out += "  values = \(Format.vector(values[0], 1)), \(Format.vector(values[1], 1))\n\n"
        out += "  Step 1, compare: score_j = query · key_j\n"
        for (j, key) in keys.enumerated() {
            let terms = zip(query, key).map { "\(Format.number($0, 1))×\(Format.number($1, 1))" }.joined(separator: " + ")
            out += "    score_\(j + 1) = \(terms) = \(Format.number(r.scores[j], 2))\n"
        }
        out += "  Step 2, normalize: weight_j = exp(score_j) / Σ exp(score)\n"
        out += "    exp(scores) = \(Format.vector(exps, 4)), sum = \(Format.number(exps.reduce(0, +), 4))\n"
        out += "    weights     = \(Format.vector(r.weights, 4))   (they sum to \(Format.number(r.weights.reduce(0, +), 4)))\n"
        out += "  Step 3, blend: output = Σ_j weight_j · value_j\n"
        for c in 0..<2 {
            let terms = (0..<2).map { "\(Format.number(r.weights[$0], 4))×\(Format.number(values[$0][c], 1))" }
                .joined(separator: " + ")
            out += "    output_\(c + 1) = \(terms) = \(r.output[c])\n"
        }
        out += "  The second key matches the query better, so the output leans toward the second value.\n\n"
        return out
    }

    /// 2. Three queries over "The cat sat on the mat".
    static func sentenceQueries(_ rows: [Numbers.SentenceQuery]) -> String {
        var out = heading(2, "Different queries, different weights: \"The cat sat on the mat\"")
        out += "  Each word has a 4-d embedding; keys and values are the embeddings; scale = 1/√4.\n"
        for r in rows {
            out += "\n  Query: \(r.name) \(Format.vector(r.query, 1))\n"
            for (word, weight) in zip(words, r.weights) {
                out += "    \(word.leftPadded(to: 4))  \(Format.number(weight))  \(TerminalRenderer.bar(weight))\n"
            }
            out += "    output \(Format.vector(r.output))\n"
        }
        out += "\n  The same words get different weights: the query decides what is relevant.\n\n"
        return out
    }

    /// 3. Attention retrieves; a plain average blurs.
    static func attentionVersusAverage(_ c: Numbers.Comparison) -> String {
        var out = heading(3, "Attention versus a simple average")
        out += "  Cosine similarity to the embedding of \"cat\" \(Format.vector(c.cat, 1)):\n"
        out += "    simple average of all six words     \(Format.number(c.averageCosine, 4))  \(Format.vector(c.average))\n"
        out += "    attention, noun-like query (1/√4)   \(Format.number(c.attendedCosine, 4))  \(Format.vector(c.attended))\n"
        out += "    attention, same query, scale 8      \(Format.number(c.sharpCosine, 4))  \(Format.vector(c.sharp))\n"
        out += "  The average gives every word the same say; attention lets the relevant words dominate,\n"
        out += "  and sharper scores let it retrieve one item almost exactly.\n\n"
        return out
    }

    /// 4. Every word as a query: the full matrix, then causal.
    static func selfAttentionMatrices(_ s: Numbers.SelfAttention) -> String {
        var out = heading(4, "Self-attention: every word queries every word")
        for (title, w) in [("No mask: every word sees the whole sentence", s.full),
                           ("Causal mask: each word sees itself and the words before it", s.causal)] {
            out += "  \(title).\n  Row = query, column = key; the shades compare each row's weights with its largest.\n"
            out += "    " + "".rightPadded(to: 5) + words.map { $0.leftPadded(to: 6) }.joined() + "\n"
            for (word, row) in zip(words, w) {
                out += "    " + word.rightPadded(to: 5)
                    + row.map { Format.number($0).leftPadded(to: 6) }.joined()
                    + "   " + row.map { String(TerminalRenderer.shade($0 / (row.max() ?? 1))) }.joined() + "\n"
            }
            out += "\n"
        }
        out += "  Similar words attend to each other: \"The\" and \"the\", \"cat\" and \"mat\". Under the causal\n"
        out += "  mask \"The\" can only see itself, and each row still sums to 1.\n\n"
        return out
    }

    /// 5. Temperature: dividing the scores by T.
    static func temperatureSweep(_ rows: [Numbers.Temperature]) -> String {
        var out = heading(5, "Temperature: scores divided by T, and the entropy of the weights")
        out += "  Noun-like query; entropy in nats (0 = all weight on one word, ln 6 = \(Format.number(log(6.0))) = uniform).\n"
        for r in rows {
            out += "    T = \(Format.number(r.temperature, 2).leftPadded(to: 4))  weights \(Format.vector(r.weights))  entropy \(Format.number(r.entropy))\n"
        }
        out += "  Low temperature sharpens attention toward one word; high temperature flattens it toward\n"
        out += "  the average. Scaled dot-product attention uses T = √d (here 2) so that the spread of the\n"
        out += "  scores, and so the sharpness, does not grow with the dimension d.\n"
        return out
    }
}
