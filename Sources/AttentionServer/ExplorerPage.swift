import Foundation

/// The explorer's pages: `index.html`, `explorer.css`, `explorer.js`, `chat.html` and `chat.js`, package resources of this
/// module (`Sources/AttentionServer/Resources`), read once when the server is made and served as
/// they are.
///
/// Everything the page shows comes from the API: the toy explorer posts to `/api/attend` on every
/// change, the model explorer to `/api/explain`. Weight bars carry `data-weight` so tests (and
/// screen readers, through the text beside each bar) can read the numbers.
struct ExplorerPage: Sendable {
    struct File: Sendable {
        let contentType: String
        let body: String
    }

    /// The files by the URL path that serves them.
    let files: [String: File]

    /// The URL paths and the resource each serves.
    static let routes: [(path: String, resource: String, contentType: String)] = [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/explorer.css", "explorer.css", "text/css; charset=utf-8"),
        ("/explorer.js", "explorer.js", "text/javascript; charset=utf-8"),
        ("/chat", "chat.html", "text/html; charset=utf-8"),
        ("/chat.js", "chat.js", "text/javascript; charset=utf-8"),
    ]

    /// Reads the page's files from the module's resource bundle.
    ///
    /// SwiftPM puts the bundle beside the executable (and the test runner); an `attention` copied
    /// elsewhere needs it copied along. A missing bundle is an error that says so, rather than the
    /// trap `Bundle.module` would be.
    static func load() throws -> ExplorerPage {
        #if canImport(Darwin)
        let bundleName = "swift-attention_AttentionServer.bundle"
        #else
        let bundleName = "swift-attention_AttentionServer.resources"
        #endif
        let expected = Bundle.main.bundleURL.appendingPathComponent(bundleName)
        guard Bundle(url: expected) != nil else {
            throw ExplorerPageError(message: """
                the explorer's page files are not installed: expected the folder \(bundleName) beside the \
                executable, at \(expected.path); copy it there together with the executable
                """)
        }
        var files: [String: File] = [:]
        for route in routes {
            let name = route.resource as NSString
            guard let url = Bundle.module.url(forResource: name.deletingPathExtension, withExtension: name.pathExtension,
                                              subdirectory: "Resources")
            else {
                throw ExplorerPageError(message: "the explorer's page file \(route.resource) is missing from \(expected.path)")
            }
            let body: String
            do {
                body = try String(contentsOf: url, encoding: .utf8)
            } catch {
                throw ExplorerPageError(message: "cannot read the explorer's page file \(url.path): \(error.localizedDescription)")
            }
            files[route.path] = File(contentType: route.contentType, body: body)
        }
        return ExplorerPage(files: files)
    }
}

/// The explorer's page files could not be found or read.
public struct ExplorerPageError: Error, CustomStringConvertible, Sendable {
    /// What is missing, and where it was looked for.
    public let message: String
    /// The message.
    public var description: String { message }
}
