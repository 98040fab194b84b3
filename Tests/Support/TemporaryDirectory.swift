import Foundation
import Testing

/// A fresh folder under the system's temporary directory, removed with everything in it when the
/// last reference to it goes: held by a suite (one instance per test) or a test's local, it lasts
/// one test and leaves nothing behind.
public final class TemporaryDirectory: Sendable {
    public let url: URL

    /// Creates `<temporary directory>/<prefix>-<UUID>`.
    public init(_ prefix: String) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// The URL of `name` inside the folder.
    public func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    deinit {
        do {
            try FileManager.default.removeItem(at: url)
        } catch {
            Issue.record("could not remove the temporary folder \(url.path): \(error)")
        }
    }
}
