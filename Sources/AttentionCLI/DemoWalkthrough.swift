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

    /// The whole walkthrough as text, as `attention demo` prints it.
    public static func render() throws -> String {
        var out = ""
        out += "Attention is a weighted average whose weights come from the content.\n"
        out += "  output = Σ_j softmax(scores)_j · value_j,   scores_j = scale · (query · key_j)\n\n"
        out += try workedExample()
        out += try sentenceQueries()
        out += try attentionVersusAverage()
        out += try selfAttentionMatrices()
        out += try temperatureSweep()
        return out
    }

    private static func heading(_ number: Int, _ title: String) -> String {
        let text = "\(number). \(title)"
        return text + "\n" + String(repeating: "─", count: text.count) + "\n"
    }

    /// 1. One query, two keys, by hand.
    static func workedExample() throws -> String {
        let query = [0.5, 0.5]
        let keys = [[0.1, 0.2], [0.2, 0.3]]
        let values = [[0.6, 0.8], [0.7, 0.9]]
        let r = try singleQueryAttention(query: query, keys: keys, values: values, scale: 1)
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
    static func sentenceQueries() throws -> String {
        var out = heading(2, "Different queries, different weights: \"The cat sat on the mat\"")
        out += "  Each word has a 4-d embedding; keys and values are the embeddings; scale = 1/√4.\n"
        for (name, query) in queries {
            let r = try singleQueryAttention(query: query, keys: embeddings, values: embeddings)
            out += "\n  Query: \(name) \(Format.vector(query, 1))\n"
            for (word, weight) in zip(words, r.weights) {
                out += "    \(word.leftPadded(to: 4))  \(Format.number(weight))  \(TerminalRenderer.bar(weight))\n"
            }
            out += "    output \(Format.vector(r.output))\n"
        }
        out += "\n  The same words get different weights: the query decides what is relevant.\n\n"
        return out
    }

    /// 3. Attention retrieves; a plain average blurs.
    static func attentionVersusAverage() throws -> String {
        let cat = embeddings[1]
        let attended = try singleQueryAttention(query: queries[0].vector, keys: embeddings, values: embeddings)
        let sharp = try singleQueryAttention(query: queries[0].vector, keys: embeddings, values: embeddings, scale: 8)
        let average = (0..<4).map { c in embeddings.map { $0[c] }.reduce(0, +) / Double(embeddings.count) }
        var out = heading(3, "Attention versus a simple average")
        out += "  Cosine similarity to the embedding of \"cat\" \(Format.vector(cat, 1)):\n"
        out += "    simple average of all six words     \(Format.number(try cosineSimilarity(average, cat), 4))  \(Format.vector(average))\n"
        out += "    attention, noun-like query (1/√4)   \(Format.number(try cosineSimilarity(attended.output, cat), 4))  \(Format.vector(attended.output))\n"
        out += "    attention, same query, scale 8      \(Format.number(try cosineSimilarity(sharp.output, cat), 4))  \(Format.vector(sharp.output))\n"
        out += "  The average gives every word the same say; attention lets the relevant words dominate,\n"
        out += "  and sharper scores let it retrieve one item almost exactly.\n\n"
        return out
    }

    /// 4. Every word as a query: the full matrix, then causal.
    static func selfAttentionMatrices() throws -> String {
        let x = try Tensor<Double>(embeddings)
        var out = heading(4, "Self-attention: every word queries every word")
        for (title, mask) in [("No mask: every word sees the whole sentence", AttentionMask.none),
                              ("Causal mask: each word sees itself and the words before it", AttentionMask.causal)] {
            let r = try scaledDotProductAttention(query: x, key: x, value: x, mask: mask, returning: .weights)
            let w = r.weights?.rows ?? []
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
    static func temperatureSweep() throws -> String {
        let query = queries[0].vector
        var out = heading(5, "Temperature: scores divided by T, and the entropy of the weights")
        out += "  Noun-like query; entropy in nats (0 = all weight on one word, ln 6 = \(Format.number(log(6.0))) = uniform).\n"
        let x = try Tensor<Double>(embeddings)
        for t in [0.25, 0.5, 1, 2, 4] {
            let r = try scoredAttention(query: Tensor(query), key: x, value: x, score: .temperature(t))
            let w = r.weights?.scalars ?? []
            out += "    T = \(Format.number(t, 2).leftPadded(to: 4))  weights \(Format.vector(w))  entropy \(Format.number(entropy(w)))\n"
        }
        out += "  Low temperature sharpens attention toward one word; high temperature flattens it toward\n"
        out += "  the average. Scaled dot-product attention uses T = √d (here 2) so that the spread of the\n"
        out += "  scores, and so the sharpness, does not grow with the dimension d.\n"
        return out
    }
}
