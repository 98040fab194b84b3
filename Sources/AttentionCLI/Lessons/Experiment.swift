import ArgumentParser
import Attention
import AttentionExperiments
import AttentionRendering
import Foundation

/// `attention experiment`: the lessons' experiments, each with numbers and a picture.
struct Experiment: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the lessons' experiments: numbers in the terminal, pictures as SVG, data as JSON or CSV.",
        discussion: """
            Each experiment is deterministic for a given --seed.

            Examples:
              attention experiment scaling
              attention experiment patterns --svg patterns.svg
              attention experiment retrieval --json > retrieval.json
            """,
        subcommands: [ScalingCommand.self, PatternsCommand.self, HeadsCommand.self, RetrievalCommand.self, CrossCommand.self]
    )
}

/// Options every experiment shares.
struct ExperimentOutput: ParsableArguments {
    @Option(help: "Seed of every random draw; the same seed gives the same numbers.") var seed: UInt64 = 42
    @Option(help: ArgumentHelp("Also write the picture as SVG to this file.", valueName: "FILE")) var svg: String?
    @Flag(help: "Print the numbers as JSON instead of text.") var json = false
    @Flag(help: "Print the numbers as CSV instead of text.") var csv = false

    func validate() throws {
        if json && csv { throw ValidationError("--json and --csv are two formats of the same numbers: pass one") }
    }

    /// Checks that `--svg` can be written, before the work: called first by the commands' `run()`.
    func checkFiles() throws {
        if let svg { try UserPath.output(svg, flag: "--svg") }
    }

    var style: TerminalStyle { TerminalStyle.detect() }

    /// Prints `text`, JSON or CSV as asked, and writes the SVG if asked.
    func emit<T: Encodable>(text: () -> String, data: T, csv table: () -> (header: [String], rows: [[String]]), svg picture: () -> String) throws {
        if json {
            print(try Format.json(data))
        } else if csv {
            let (header, rows) = table()
            print(CSV.render(header: header, rows: rows), terminator: "")
        } else {
            print(text(), terminator: "")
        }
        if let svg {
            try SVG.write(picture(), to: svg)
            if !json && !csv { print("wrote \(svg)") }
        }
    }
}

/// `x` with `digits` decimals, for the experiments' tables.
func f(_ x: Double, _ digits: Int = 3) -> String { Format.number(x, digits) }
