import ArgumentParser
import Attention
import AttentionCLI
import Testing

@Suite("attention demo")
struct DemoTests {
    let text: String

    init() throws { text = try DemoWalkthrough.render() }

    @Test("Runs through the command and has every part of the walkthrough")
    func sections() throws {
        var command = try AttentionCommand.parseAsRoot(["demo"])
        try command.run()
        for heading in ["1. One query, step by step", "2. Different queries, different weights",
                        "3. Attention versus a simple average", "4. Self-attention", "5. Temperature"] {
            #expect(text.contains(heading), "missing section \(heading)")
        }
    }

    @Test("The worked example prints the lesson's output")
    func workedExample() throws {
        let values = try ["output_1 = ", "output_2 = "].map { prefix -> Double in
            let line = try #require(text.split(separator: "\n").first { $0.contains(prefix) })
            return try #require(Double(line.split(separator: "=").last?.trimmingCharacters(in: .whitespaces) ?? ""))
        }
        #expect(abs(values[0] - 0.6524979187478941) <= 2 * 0.6524979187478941.ulp)
        #expect(abs(values[1] - 0.852497918747894) <= 2 * 0.852497918747894.ulp)
    }

    /// The weight printed for each word under the query whose description contains `marker`.
    func printedWeights(after marker: String) throws -> [String: Double] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex { $0.contains(marker) })
        var weights: [String: Double] = [:]
        for line in lines[(start + 1)...].prefix(6) {
            let fields = line.split(separator: " ")
            weights[String(fields[0])] = Double(fields[1])
        }
        return weights
    }

    @Test("Each query's weights sum to 1 and peak on the word it looks for",
          arguments: [("noun-like", "cat"), ("verb-like", "sat"), ("article-like", "The")])
    func queriesPeak(marker: String, word: String) throws {
        let weights = try printedWeights(after: "Query: a\(marker == "article-like" ? "n" : "") \(marker)")
        #expect(weights.count == 6)
        #expect(abs(weights.values.reduce(0, +) - 1) < 0.003)   // printed with 3 decimals
        #expect(weights.max { $0.value < $1.value }?.key == word || weights[word] == weights.values.max())
    }

    @Test("Attention retrieves 'cat' better than the average, and entropy grows with temperature")
    func claims() throws {
        let similarity = { (label: String) throws -> Double in
            let line = try #require(self.text.split(separator: "\n").first { $0.contains(label) })
            return try #require(Double(line.split(separator: " ").first { Double($0) != nil } ?? ""))
        }
        #expect(try similarity("simple average of all six words") < similarity("attention, noun-like query"))
        let entropies = text.split(separator: "\n").filter { $0.contains("entropy ") && $0.contains("T = ") }
            .compactMap { Double($0.split(separator: " ").last ?? "") }
        #expect(entropies.count == 5)
        #expect(zip(entropies, entropies.dropFirst()).allSatisfy { $0 < $1 })
    }
}
