import AttentionExplorer
import Attention
import AttentionModels
import AttentionServer
import AttentionServing
import AttentionTestSupport
import Foundation
import Testing

/// The page in a real browser: headless Chromium loads the explorer (in a frame of a small harness
/// page served by this test), moves the temperature slider, and the harness reports the weights
/// before and after. CI installs Chromium and sets ATTENTION_REQUIRE_BROWSER=1, so there a missing
/// browser fails instead of skipping.
@Suite("Explorer in a browser", .serialized)
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
    /// What a skipped run prints.
    static let skipReason: Comment = "no Chromium on the PATH (apt-get install chromium); with ATTENTION_REQUIRE_BROWSER=1 this fails instead"

    /// The start of a harness page: the explorer in a frame, a `#result` for the report, and `until`,
    /// which polls a check every 50 ms (of the browser's virtual time) for up to 20 s.
    static let harnessStart = #"""
        <!doctype html><html><body>
        <iframe id="explorer" src="/" width="1280" height="900"></iframe>
        <pre id="result">pending</pre>
        <script>
        const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
        async function until(check) {
          for (let i = 0; i < 400; i++) { const value = check(); if (value) return value; await sleep(50); }
          return null;
        }
        """#

    /// Loads the explorer in a frame, waits for its weights, moves the temperature slider to 3, waits
    /// for the weights to change, and writes `{"before": [...], "after": [...]}` into `#result`.
    static let harness = #"""
        \#(harnessStart)
        const weights = (doc) => Array.from(doc.querySelectorAll("#weights [data-weight]")).map((e) => Number(e.dataset.weight));
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

    @Test("Moving the temperature slider changes the weights, which still sum to 1", .enabled(if: browser != nil || required, Self.skipReason))
    func temperatureSlider() async throws {
        let report = try await Self.report(Report.self, harness: Self.harness, model: .unavailable("not needed here"))
        let before = try #require(report.before), after = try #require(report.after, "the weights did not change")
        #expect(before.count == 6 && after.count == 6)
        #expect(abs(before.reduce(0, +) - 1) < 1e-9 && abs(after.reduce(0, +) - 1) < 1e-9)
        #expect(zip(before, after).contains { abs($0 - $1) > 1e-3 })
        // A higher temperature flattens the weights: the largest falls.
        #expect((after.max() ?? 1) < (before.max() ?? 0))
        #expect(report.scale.contains("T = 3.00"))
    }

    /// Loads the explorer with the GPT fixture, explains a text, and reports the model view's
    /// thumbnails (one per layer and head, a pixel per token) and the head opened by a click.
    static let modelHarness = #"""
        \#(harnessStart)
        document.getElementById("explorer").addEventListener("load", async () => {
          const doc = document.getElementById("explorer").contentDocument;
          await until(() => doc.getElementById("explain"));
          doc.getElementById("text").value = "The cat sat on the mat because it was tired of the long day";
          doc.getElementById("explain").click();
          const canvases = await until(() => { const c = doc.querySelectorAll("#modelview canvas"); return c.length > 0 ? c : null; });
          const first = canvases ? canvases[0] : null;
          // A causal map: the top-right pixel (query 0, last key) is white, the top-left is not.
          const pixel = (x, y) => first ? Array.from(first.getContext("2d").getImageData(x, y, 1, 1).data.slice(0, 3)) : null;
          if (canvases) canvases[canvases.length - 1].click();
          const title = await until(() => doc.getElementById("vectorTitle").textContent || null);
          document.getElementById("result").textContent = JSON.stringify({
            canvases: canvases ? canvases.length : 0, width: first ? first.width : 0,
            tokens: doc.querySelectorAll('#headview text[data-side="q"]').length,
            topLeft: pixel(0, 0), topRight: first ? pixel(first.width - 1, 0) : null, title: title || "",
            keyValueMarks: doc.querySelectorAll("#heads sub").length });
        });
        </script>
        </body></html>
        """#

    struct ModelReport: Decodable {
        let canvases: Int
        let width: Int
        let tokens: Int
        let topLeft: [Int]?
        let topRight: [Int]?
        let title: String
        /// The heads' marks of the key/value head they read (grouped-query attention).
        let keyValueMarks: Int
    }

    @Test("The model view decodes the compact weights: a causal map per layer and head, and a head opens", .enabled(if: browser != nil || required, Self.skipReason))
    func modelView() async throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/gpt2")
        let report = try await Self.report(ModelReport.self, harness: Self.modelHarness, model: ExplorerModel.load(from: fixture))
        #expect(report.canvases == 2 * 4)   // the fixture: 2 layers of 4 heads
        #expect(report.tokens > 5 && report.width == report.tokens)
        #expect(report.topRight == [255, 255, 255], "query 0 must not see the last key")
        #expect(report.topLeft.map { $0[0] < 255 } == true, "query 0 sees itself with weight 1")
        #expect(report.title == "layer 2, head 4")
        #expect(report.keyValueMarks == 0)
    }

    @Test("A GGUF decoder's model view: 30 layers × 9 causal maps, each head marked with the key/value head it reads", .enabled(if: browser != nil || required, Self.skipReason))
    func decoderView() async throws {
        let directory = SmolLM2Store.defaultDirectory()
        try SmolLM2Store.fetch(into: directory) { print($0) }
        let report = try await Self.report(ModelReport.self, harness: Self.modelHarness, model: ExplorerModel.load(gguf: SmolLM2Store.file(in: directory)))
        #expect(report.canvases == 30 * 9)
        #expect(report.tokens > 5 && report.width == report.tokens)
        #expect(report.topRight == [255, 255, 255], "query 0 must not see the last key")
        #expect(report.title == "layer 30, head 9")
        #expect(report.keyValueMarks == 9)
    }

    /// Loads the chat explorer, sends a message, waits for the answer and the conversation's tokens,
    /// clicks the answer's third token from the end, and reports what the page shows.
    static let chatHarness = #"""
        \#(harnessStart.replacingOccurrences(of: #"src="/""#, with: #"src="/chat""#))
        document.getElementById("explorer").addEventListener("load", async () => {
          const doc = document.getElementById("explorer").contentDocument;
          // A streamed answer does not hold the browser's virtual time: wait up to 1,000,000 polls of it.
          const longUntil = async (check) => { for (let i = 0; i < 1000000; i++) { const v = check(); if (v) return v; await sleep(50); } return null; };
          await longUntil(() => doc.querySelectorAll("#head option").length > 1 || null);
          doc.getElementById("message").value = "What is the capital of France?";
          doc.getElementById("maxTokens").value = "24";
          doc.getElementById("send").requestSubmit();
          await longUntil(() => doc.querySelector(".message.assistant[data-done]"));
          const tokens = await longUntil(() => { const t = doc.querySelectorAll("#tokens .token"); return t.length > 0 ? t : null; });
          const chosen = tokens ? tokens.length - 3 : 0;
          if (tokens) tokens[chosen].click();
          await longUntil(() => doc.querySelector('#tokens .token.query[data-index="' + chosen + '"]'));
          const spans = Array.from(doc.querySelectorAll("#tokens .token"));
          const weights = spans.filter((s) => s.dataset.weight !== undefined).map((s) => Number(s.dataset.weight));
          document.getElementById("result").textContent = JSON.stringify({
            answer: doc.querySelector(".message.assistant").textContent, tokens: spans.length, chosen,
            weighted: weights.length, sum: weights.reduce((a, b) => a + b, 0),
            headOptions: Array.from(doc.querySelectorAll("#head option")).map((o) => o.textContent),
            caption: doc.getElementById("queryText").textContent, status: doc.getElementById("status").textContent });
        });
        </script>
        </body></html>
        """#

    struct ChatReport: Decodable {
        let answer: String
        let tokens: Int
        let chosen: Int
        let weighted: Int
        let sum: Double
        let headOptions: [String]
        let caption: String
        let status: String
    }

    @Test("The chat explorer: the answer streams in and is the API's greedy answer; a clicked token shows its weights over the tokens before it",
          .enabled(if: browser != nil || required, Self.skipReason))
    func chatExplorer() async throws {
        let directory = SmolLM2Store.defaultDirectory()
        try SmolLM2Store.fetch(into: directory) { print($0) }
        let file = try GGUF(contentsOf: SmolLM2Store.file(in: directory))
        let decoder = try LlamaModel(gguf: file)
        let served = try ServedModel(gguf: file, model: decoder, id: "smollm2")
        let generator = try BatchedGenerator(model: decoder, configuration: .init(slots: 2, capacity: 512))
        defer { generator.shutdown() }
        let api = CompletionService(served: served, generator: generator)
        let report = try await Self.report(ChatReport.self, harness: Self.chatHarness, model: .decoder(decoder, served.tokenizer, name: "smollm2"), api: api,
                                           virtualTime: 100_000_000)
        // The page's answer is the API's greedy answer to the same message.
        let template = try #require(served.template)
        let ids = served.tokenizer.encode(try template.render([.init(role: "user", content: "What is the capital of France?")], addGenerationPrompt: true))
        let stop = Set([served.endOfTurn, served.endOfText].compactMap { $0 })
        let run = try decoder.generate(prompt: ids, maxTokens: 24, endOfText: served.endOfTurn)
        #expect(report.answer == (try served.tokenizer.decode(run.generatedIDs.filter { !stop.contains($0) })), "\(report)")
        #expect(report.tokens > ids.count && report.weighted == report.chosen + 1, "\(report)")
        #expect(abs(report.sum - 1) < 0.01, "the mean of the heads' weights sums to 1: \(report.sum)")
        #expect(report.headOptions.count == 10 && report.headOptions.filter { $0.contains("key/value head") }.count == 9)
        #expect(report.caption.contains("Token \(report.chosen + 1) of \(report.tokens)") && report.caption.contains("layer 30"), "\(report.caption)")
    }

    /// Serves the explorer for `model` with `harness` at /harness, loads that in the browser, and decodes
    /// the JSON the harness writes into its `#result`.
    static func report<Report: Decodable>(_: Report.Type, harness: String, model: ExplorerModel, api: CompletionService? = nil,
                                          virtualTime: Int = 30000) async throws -> Report {
        let browser = try #require(Self.browser, "no Chromium found (set ATTENTION_BROWSER or install the chromium package)")
        let dom = try await LiveExplorer.serve(model: model, api: api, extraPages: ["/harness": harness]) { base in
            try await Self.run(browser, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                         "--virtual-time-budget=\(virtualTime)", "--dump-dom", base.appendingPathComponent("harness").absoluteString])
        }
        let start = try #require(dom.range(of: "<pre id=\"result\">")), end = try #require(dom.range(of: "</pre>", range: start.upperBound..<dom.endIndex))
        let text = dom[start.upperBound..<end.lowerBound].replacingOccurrences(of: "&quot;", with: "\"")
        do { return try JSONDecoder().decode(Report.self, from: Data(text.utf8)) } catch { throw ReportError(description: "the harness reported: \(text.prefix(500))") }
    }

    /// Runs the browser and returns what it printed, killing it after two minutes.
    static func run(_ path: String, _ arguments: [String]) async throws -> String {
        // A profile of its own: two browsers on one profile would find each other and hand over.
        let scratch = try TemporaryDirectory("attention-browser"), profile = scratch.url
        // Kept to the end: Swift may release a local after its last use, which would remove the profile.
        defer { withExtendedLifetime(scratch) {} }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--user-data-dir=\(profile.path)"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let watchdog = Task {
            try await Task.sleep(for: .seconds(120))
            if process.isRunning { process.terminate() }
        }
        // Read on a thread of its own: a blocking read on the (two-thread) cooperative pool can starve
        // the watchdog and the server.
        let data = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: output.fileHandleForReading.readDataToEndOfFile()) }
        }
        process.waitUntilExit()
        watchdog.cancel()
        return String(decoding: data, as: UTF8.self)
    }
}

/// A harness whose report is not the JSON the test expects (still "pending": it did not finish).
struct ReportError: Error, CustomStringConvertible {
    let description: String
}
