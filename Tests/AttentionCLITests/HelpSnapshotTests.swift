import ArgumentParser
import AttentionCLI
import Foundation
import Testing

/// Every command's `--help`, compared whole with a committed snapshot in Tests/Fixtures/help (one file
/// per command type), at 80 columns: a change to any flag, default or sentence shows in review.
/// `ATTENTION_UPDATE_SNAPSHOTS=1 swift test -c release --filter Help` rewrites the snapshots.
@Suite("--help snapshots")
struct HelpSnapshotTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/help")

    /// The root command and every subcommand below it.
    static let commands: [any ParsableCommand.Type] = {
        var all: [any ParsableCommand.Type] = [], queue: [any ParsableCommand.Type] = [AttentionCommand.self]
        while let next = queue.first {
            queue.removeFirst()
            all.append(next)
            queue += next.configuration.subcommands
        }
        return all
    }()

    @Test("Every command's help is its snapshot, with no line over 80 columns", arguments: commands.map { "\($0)" })
    func snapshot(_ name: String) throws {
        let command = try #require(Self.commands.first { "\($0)" == name })
        let help = AttentionCommand.helpMessage(for: command, columns: 80) + "\n"
        let file = Self.folder.appendingPathComponent("\(name).txt")
        if ProcessInfo.processInfo.environment["ATTENTION_UPDATE_SNAPSHOTS"] == "1" {
            try FileManager.default.createDirectory(at: Self.folder, withIntermediateDirectories: true)
            try Data(help.utf8).write(to: file, options: .atomic)
        }
        let expected = try String(contentsOf: file, encoding: .utf8)
        #expect(help == expected, "\(name): run with ATTENTION_UPDATE_SNAPSHOTS=1 and review the diff")
        for line in help.split(separator: "\n") { #expect(line.count <= 80, "\(name): \(line)") }
    }

    @Test("The snapshots are exactly the commands' (none stale)")
    func noStaleSnapshots() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).filter { $0.hasSuffix(".txt") }
        #expect(Set(files) == Set(Self.commands.map { "\($0).txt" }))
    }
}
