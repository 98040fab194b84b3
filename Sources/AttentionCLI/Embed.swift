import ArgumentParser
import Attention
import AttentionModels
import AttentionRendering
import Foundation

/// `attention embed`: sentence embeddings.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a 384-d embedding for each sentence (mean pooling over real tokens, L2-normalized).",
        discussion: """
            Examples:
              attention embed "The cat sat on the mat" "A dog lay on the rug"
              attention embed --json "The cat sat on the mat" > embedding.json
            """
    )
    @OptionGroup var location: ModelLocation
    @Flag(help: "Print a JSON array of arrays, one per sentence, in input order.") var json = false
    @Flag(help: "No progress on stderr (there is none in a pipe either).") var quiet = false
    @Argument(help: "Sentences.") var sentences: [String]

    func validate() throws {
        guard !sentences.isEmpty else { throw ValidationError("give at least one sentence") }
    }

    func run() throws {
        let model = try location.load()
        // Batches of 32; with stderr a terminal, a progress line (sentences, rate, time left) after each.
        let log = ProgressLog(quiet: quiet || sentences.count <= 32)
        let started = DispatchTime.now().uptimeNanoseconds
        let vectors = try model.embed(sentences, batchSize: 32) { done in
            let seconds = max(Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9, 1e-9)
            let rate = Double(done) / seconds
            log.progress("embedded \(done)/\(sentences.count) sentences, \(Format.number(rate, 1))/s, "
                         + "\(TerminalRenderer.clock(Double(sentences.count - done) / rate)) left", keep: log.terminal && done == sentences.count)
        }
        if json {
            print("[" + vectors.map { "[" + $0.map { "\($0)" }.joined(separator: ", ") + "]" }.joined(separator: ",\n ") + "]")
        } else {
            for (sentence, v) in zip(sentences, vectors) {
                print("\(sentence)\n  [" + v.prefix(8).map { String(format: "%.4f", $0) }.joined(separator: ", ") + ", … \(v.count) values]")
            }
        }
    }
}
