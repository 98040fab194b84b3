import ArgumentParser
import Attention
import Foundation

/// `attention attend`: scaled dot-product attention on `.npy` files.
public struct Attend: ParsableCommand {
    /// The subcommand's name, abstract and help.
    public static let configuration = CommandConfiguration(
        abstract: "Compute scaled dot-product attention on .npy arrays.",
        usage: "attention attend --query Q.npy --key K.npy --value V.npy --output O.npy",
        discussion: """
            Shapes (the last two dimensions are sequence and features):
              query  [B, Hq, Nq, D]   key [B, Hkv, Nk, D]   value [B, Hkv, Nk, Dv]
              also [H, N, D], unbatched [N, D], or a single query [D] with key [Nk, D].
            Hq must be a multiple of Hkv (grouped-query attention). Query, key and value
            share one dtype, float32 or float64; the outputs have that dtype. Masks
            intersect: a key is visible when every given mask allows it. A query that sees
            no key outputs 0 and has log-sum-exp -inf.

            Examples:
              attention attend --query q.npy --key k.npy --value v.npy --output o.npy
              attention attend --query q.npy --key k.npy --value v.npy --output o.npy \\
                  --causal --window 128,0 --weights w.npy --lse lse.npy
              attention attend --query q.npy --key k.npy --value v.npy --output o.npy \\
                  --key-lengths 7,5 --mask m.npy --bias alibi.npy --scale 0.125 --explain

            float32 runs the tiled kernel (AVX-512 or AVX2 when the CPU has it, all
            cores); float64 runs the reference, which accumulates in double. --explain
            says which; --implementation chooses (e.g. avx2 on an AVX-512 machine, to
            compare).

            Across processes (ring attention; Open MPI loaded at run time), with the
            same files and flags; the output equals one process's:
              mpirun -np 4 attention attend --distributed --query q.npy --key k.npy \\
                  --value v.npy --output o.npy --causal --lse lse.npy --explain

            Gradients for a given output gradient (float32 on the tiled backward, the
            bias's gradient included):
              attention attend --query q.npy --key k.npy --value v.npy --output o.npy \\
                  --grad-output do.npy --grad-query dq.npy --grad-key dk.npy \\
                  --grad-value dv.npy
            """
    )

    @Option(help: ArgumentHelp("Queries, .npy.", valueName: "Q.npy")) var query: String
    @Option(help: ArgumentHelp("Keys, .npy.", valueName: "K.npy")) var key: String
    @Option(help: ArgumentHelp("Values, .npy.", valueName: "V.npy")) var value: String
    @Option(help: ArgumentHelp("Where to write the output (shape of query with D replaced by Dv).", valueName: "O.npy"))
    var output: String
    @Option(help: ArgumentHelp("Also write the weights [B, Hq, Nq, Nk].", valueName: "W.npy")) var weights: String?
    @Option(help: ArgumentHelp("Also write the log-sum-exp of each row [B, Hq, Nq].", valueName: "L.npy")) var lse: String?
    @Option(help: "Multiply Q·Kᵀ by this (default 1/√D).") var scale: Double?
    @Flag(help: "Causal mask, bottom-right aligned: query i sees key j when j <= i + Nk - Nq.") var causal = false
    @Flag(help: "Causal mask, top-left aligned (PyTorch's is_causal): query i sees key j when j <= i.")
    var causalTopLeft = false
    @Option(help: ArgumentHelp(
        "Sliding window around the bottom-right aligned diagonal d = i + Nk - Nq: keys d-LEFT ... d+RIGHT. Example: --window 3,0",
        valueName: "LEFT,RIGHT"))
    var window: IntegerList?
    @Option(help: ArgumentHelp(
        "Real keys per batch element; later keys are padding. Example: --key-lengths 7,5", valueName: "L1,L2,..."))
    var keyLengths: IntegerList?
    @Option(help: ArgumentHelp("Boolean mask, true = may attend, broadcastable to [B, Hq, Nq, Nk].", valueName: "M.npy"))
    var mask: String?
    @Option(help: ArgumentHelp("Additive bias on the scaled scores (float), broadcastable to [B, Hq, Nq, Nk]; -inf hides a key.",
                               valueName: "B.npy"))
    var bias: String?
    @Flag(inversion: .prefixedNo, help: "Reject inputs holding NaN or infinity (on by default).") var checkFinite = true
    @Flag(help: "Print which implementation computed the result, and why.") var explain = false
    @Flag(help: "Print what ran and the files written as JSON: {path, wrote: [{file, shape, dtype}]}.") var json = false
    @OptionGroup var implementation: ImplementationOption
    @Option(help: ArgumentHelp("Gradient of a loss with respect to the output, to compute the input gradients (shape of the output).", valueName: "dO.npy"))
    var gradOutput: String?
    @Option(help: ArgumentHelp("With --grad-output: write ∂L/∂query.", valueName: "dQ.npy")) var gradQuery: String?
    @Option(help: ArgumentHelp("With --grad-output: write ∂L/∂key.", valueName: "dK.npy")) var gradKey: String?
    @Option(help: ArgumentHelp("With --grad-output: write ∂L/∂value.", valueName: "dV.npy")) var gradValue: String?
    @Option(help: ArgumentHelp("With --grad-output and --bias: write ∂L/∂bias (shape of the bias).", valueName: "dB.npy")) var gradBias: String?
    @Flag(help: "Ring attention across the processes of 'mpirun -np P': each reads its shard of the inputs, rank 0 writes the outputs. Needs Open MPI.")
    var distributed = false
    @Option(help: ArgumentHelp("With --distributed: seconds to wait for any one transfer before giving up on a peer (default 600).",
                               valueName: "SECONDS"))
    var timeout: Double?

    /// A command with every option at its default (ArgumentParser fills them in).
    public init() {}

    /// Checks the options together before anything is read.
    public func validate() throws {
        if causal && causalTopLeft {
            throw ValidationError("--causal and --causal-top-left are two alignments of one mask: pass one of them")
        }
        if let window {
            guard window.values.count == 2, window.values.allSatisfy({ $0 >= 0 }) else {
                throw ValidationError("--window takes two non-negative integers LEFT,RIGHT, got '\(window.text)'")
            }
        }
        let gradientOutputs = [gradQuery, gradKey, gradValue, gradBias].compactMap { $0 }
        if gradOutput == nil && !gradientOutputs.isEmpty {
            throw ValidationError("--grad-query, --grad-key, --grad-value and --grad-bias need --grad-output")
        }
        if gradOutput != nil && gradientOutputs.isEmpty {
            throw ValidationError("--grad-output needs at least one of --grad-query, --grad-key, --grad-value, --grad-bias")
        }
        if gradBias != nil && bias == nil { throw ValidationError("--grad-bias needs --bias") }
        if let keyLengths, keyLengths.values.contains(where: { $0 < 0 }) {
            throw ValidationError("--key-lengths must not be negative, got '\(keyLengths.text)'")
        }
        if let timeout, !(timeout > 0 && timeout <= 86_400) {
            throw ValidationError("--timeout takes seconds in (0, 86400], got \(timeout)")
        }
        if timeout != nil && !distributed { throw ValidationError("--timeout is for --distributed") }
        if distributed {
            let unsupported = [("--weights", weights), ("--mask", mask), ("--bias", bias), ("--grad-output", gradOutput)]
                .filter { $0.1 != nil }.map(\.0)
            if let first = unsupported.first {
                throw ValidationError("--distributed does not take \(first): ring attention never forms the [Nq, Nk] weights, masks or biases (use --causal, --window, --key-lengths)")
            }
        }
    }

    /// Reads the inputs, attends and writes the outputs.
    public func run() throws {
        guard json else {
            try execute { print($0) }
            return
        }
        var report = Report(path: nil, wrote: [])
        let reports = try run { event in
            switch event {
            case .path(let path): report.path = path
            case .wrote(let file): report.wrote.append(file)
            case .ranks(let ranks): report.ranks = ranks
            }
        }
        if reports { print(try Format.json(report)) }
    }

    /// Runs the command, sending each line it reports to `log`.
    public func execute(_ log: (String) -> Void) throws {
        _ = try run { event in
            switch event {
            case .path(let path): log("path: \(path)")
            case .wrote(let file): log("wrote \(file.file) \(file.shape) \(file.dtype)")
            case .ranks(let ranks):
                for r in ranks { log(r.line) }
            }
        }
    }

    /// What the command reports: the path that ran (with --explain) and each file written.
    enum Event {
        case path(String)
        case wrote(Written)
        /// With --distributed and --explain or --json: each rank's figures.
        case ranks([RankFigures])
    }

    /// A file the command wrote.
    struct Written: Encodable {
        let file: String
        let shape: [Int]
        let dtype: String
    }

    /// `--json`: `{"path": "tiled (avx2): ..." or null, "wrote": [{"file", "shape", "dtype"}]}`, and
    /// with --distributed `"ranks": [{"rank", "host", "queries", "bytesSent", "computeSeconds", "waitSeconds",
    /// "peakResidentBytes"}]`.
    struct Report: Encodable {
        var path: String?
        var wrote: [Written]
        var ranks: [RankFigures]?
    }

    /// Runs the command; returns whether this process reports (with --distributed, rank 0 only).
    private func run(reporting log: (Event) -> Void) throws -> Bool {
        if distributed {
            guard let run = try attendDistributed(reporting: log) else { return false }
            if explain || json {
                log(.path(run.summary))
                log(.ranks(run.ranks))
            }
            return true
        }
        do {
            try attendFiles(reporting: log)
        } catch let error as AttentionError {
            // The library names its arguments; the user typed flags and files.
            throw error.naming(flagNames)
        }
        return true
    }

    private func attendFiles(reporting log: (Event) -> Void) throws {
        for (path, flag) in [(query, "--query"), (key, "--key"), (value, "--value"), (mask, "--mask"), (bias, "--bias"),
                             (gradOutput, "--grad-output")] as [(String?, String)] {
            if let path { try UserPath.input(path, flag: flag) }
        }
        for (path, flag) in [(output, "--output"), (weights, "--weights"), (lse, "--lse"), (gradQuery, "--grad-query"),
                             (gradKey, "--grad-key"), (gradValue, "--grad-value"), (gradBias, "--grad-bias")] as [(String?, String)] {
            if let path { try UserPath.output(path, flag: flag) }
        }
        switch try NPY.read(contentsOf: URL(fileURLWithPath: query)) {
        case .float32: try attend(Float.self, log)
        case .float64: try attend(Double.self, log)
        case .bool:
            throw AttentionError.invalidFile(path: query, reason: "expected float32 or float64 queries, found bool")
        }
    }

    private func attend<Scalar: AttentionScalar & NPYElement>(_: Scalar.Type, _ log: (Event) -> Void) throws {
        let q: Tensor<Scalar> = try load(query, "query")
        let k: Tensor<Scalar> = try load(key, "key")
        let v: Tensor<Scalar> = try load(value, "value")
        let b: Tensor<Scalar>? = try bias.map { path in
            try NPY.read(contentsOf: URL(fileURLWithPath: path)).floatingPoint(as: Scalar.self, path: path)
        }
        if checkFinite {
            try q.checkFinite(argument: "--query \(query)")
            try k.checkFinite(argument: "--key \(key)")
            try v.checkFinite(argument: "--value \(value)")
        }
        let result = try scaledDotProductAttention(
            query: q, key: k, value: v, mask: try buildMask(), bias: b, scale: scale.map { Scalar(fromDouble: $0) },
            returning: [weights != nil ? .weights : [], lse != nil || gradOutput != nil ? .logSumExp : []],
            options: AttentionOptions(implementation: try implementation.parsed()))
        if explain || json { log(.path(result.path.description)) }
        try write(result.output, to: output, log)
        if let weights, let w = result.weights { try write(w, to: weights, log) }
        if let lse, let l = result.logSumExp { try write(l, to: lse, log) }
        if let gradOutput {
            let dO: Tensor<Scalar> = try load(gradOutput, "grad-output")
            if checkFinite { try dO.checkFinite(argument: "--grad-output \(gradOutput)") }
            let grads = try scaledDotProductAttentionBackward(
                query: q, key: k, value: v, outputGradient: dO, mask: try buildMask(), bias: b,
                scale: scale.map { Scalar(fromDouble: $0) }, forward: result,
                options: AttentionOptions(implementation: try implementation.parsed()))
            if let gradQuery { try write(grads.query, to: gradQuery, log) }
            if let gradKey { try write(grads.key, to: gradKey, log) }
            if let gradValue { try write(grads.value, to: gradValue, log) }
            if let gradBias, let dB = grads.bias { try write(dB, to: gradBias, log) }
        }
    }

    /// Reads a float array that must have exactly the query's dtype.
    private func load<Scalar: AttentionScalar>(_ path: String, _ name: String) throws -> Tensor<Scalar> {
        let array = try NPY.read(contentsOf: URL(fileURLWithPath: path))
        switch array {
        case .float32(let t as Tensor<Scalar>): return t
        case .float64(let t as Tensor<Scalar>): return t
        default:
            let expected = Scalar.self == Float.self ? "float32" : "float64"
            throw AttentionError.invalidFile(
                path: path, reason: "\(name) is \(array.dtypeName) but the query is \(expected): pass one dtype for query, key and value")
        }
    }

    func buildMask() throws -> AttentionMask {
        var mask = AttentionMask.none
        if causal { mask = mask && .causal }
        if causalTopLeft { mask = mask && .causal(.topLeft) }
        if let window { mask = mask && .slidingWindow(left: window.values[0], right: window.values[1]) }
        if let keyLengths { mask = mask && .keyLengths(keyLengths.values) }
        if let path = self.mask {
            guard case .bool(let m) = try NPY.read(contentsOf: URL(fileURLWithPath: path)) else {
                throw AttentionError.invalidFile(path: path, reason: "--mask needs a bool array (true = may attend)")
            }
            mask = mask && .boolean(m)
        }
        return mask
    }

    private func write<Scalar: AttentionScalar & NPYElement>(_ tensor: Tensor<Scalar>, to path: String, _ log: (Event) -> Void) throws {
        try NPY.write(tensor, to: URL(fileURLWithPath: path))
        log(.wrote(Written(file: path, shape: tensor.shape, dtype: Scalar.self == Float.self ? "float32" : "float64")))
    }
}

/// A comma-separated list of integers on the command line, such as `7,5`.
struct IntegerList: ExpressibleByArgument {
    let text: String
    let values: [Int]

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
        let values = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, values.count == parts.count else { return nil }
        self.text = argument
        self.values = values
    }
}
