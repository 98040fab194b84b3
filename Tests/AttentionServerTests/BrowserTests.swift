import AttentionServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The page in a real browser: headless Chromium loads the explorer (in a frame of a small harness
/// page served by this test), moves the temperature slider, and the harness reports the weights
/// before and after. CI installs Chromium and sets ATTENTION_REQUIRE_BROWSER=1, so there a missing
/// browser fails instead of skipping.
@Suite("Explorer in a browser")
struct BrowserTests {
    static let browser: String? = {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["ATTENTION_BROWSER"] { return path }
        let directories = (environment["PATH"] ?? "/usr/bin").split(separator: ":").map(String.init)
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for directory in directories where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
                return "\(directory)/\(name)"
            }
        }
        return nil
    }()

    static let required = ProcessInfo.processInfo.environment["ATTENTION_REQUIRE_BROWSER"] == "1"

    /// Loads the explorer in a frame, waits for its weights, moves the temperature slider to 3, waits
    /// for the weights to change, and writes `{"before": [...], "after": [...]}` into `#result`.
    static let harness = #"""
        <!doctype html><html><body>
        <iframe id="explorer" src="/" width="1280" height="900"></iframe>
        <pre id="result">pending</pre>
        <script>
        const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
        const weights = (doc) => Array.from(doc.querySelectorAll("#weights [data-weight]")).map((e) => Number(e.dataset.weight));
        async function until(check) {
          for (let i = 0; i < 200; i++) { const value = check(); if (value) return value; await sleep(50); }
          return null;
        }
        document.getElementById("explorer").addEventListener("load", async () => {
          const doc = document.getElementById("explorer").contentDocument;
          const before = await until(() => { const w = weights(doc); return w.length > 0 ? w : null; });
          const slider = doc.getElementById("temperature");
          slider.value = "3";
          slider.dispatchEvent(new Event("input", { bubbles: true }));
          const after = await until(() => { const w = weights(doc); return w.length > 0 && JSON.stringify(w) !== JSON.stringify(before) ? w : null; });
          document.getElementById("result").textContent = JSON.stringify({ before, after, scale: doc.getElementById("scaleText").textContent });
        });
        </script>
        </body></html>
        """#

    struct Report: Decodable {
        let before: [Double]?
        let after: [Double]?
        let scale: String
    }

    @Test("Moving the temperature slider changes the weights, which still sum to 1", .enabled(if: browser != nil || required))
    func temperatureSlider() async throws {
        let browser = try #require(Self.browser, "no Chromium found (set ATTENTION_BROWSER or install the chromium package)")
        let router = ExplorerServer.router(model: .unavailable("not needed here"))
        router.get("/harness") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: Self.harness)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        let dom = try await app.test(.live) { client in
            let port = try #require(client.port)
            return try await Self.run(browser, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                                "--virtual-time-budget=20000", "--dump-dom", "http://127.0.0.1:\(port)/harness"])
        }
        let start = try #require(dom.range(of: "<pre id=\"result\">")), end = try #require(dom.range(of: "</pre>", range: start.upperBound..<dom.endIndex))
        let text = dom[start.upperBound..<end.lowerBound].replacingOccurrences(of: "&quot;", with: "\"")
        let report = try JSONDecoder().decode(Report.self, from: Data(text.utf8))
        let before = try #require(report.before), after = try #require(report.after, "the weights did not change")
        #expect(before.count == 6 && after.count == 6)
        #expect(abs(before.reduce(0, +) - 1) < 1e-9 && abs(after.reduce(0, +) - 1) < 1e-9)
        #expect(zip(before, after).contains { abs($0 - $1) > 1e-3 })
        // A higher temperature flattens the weights: the largest falls.
        #expect((after.max() ?? 1) < (before.max() ?? 0))
        #expect(report.scale.contains("T = 3.00"))
    }

    /// Runs the browser and returns what it printed, killing it after two minutes.
    static func run(_ path: String, _ arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let watchdog = Task {
            try await Task.sleep(for: .seconds(120))
            if process.isRunning { process.terminate() }
        }
        let data = try await Task.detached { output.fileHandleForReading.readDataToEndOfFile() }.value
        process.waitUntilExit()
        watchdog.cancel()
        return String(decoding: data, as: UTF8.self)
    }
}
