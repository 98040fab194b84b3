import Foundation
import _AttentionKernels
import _AttentionKernelsAVX2
import _AttentionKernelsAVX512
import _AttentionKernelsAVX512VNNI
import _CPUFeatures

/// Which code computes attention.
public enum AttentionImplementation: Sendable, Equatable, CustomStringConvertible {
    /// The fastest path for the arguments: the tiled kernel for `Float` on the best instruction set
    /// this CPU has, the reference for `Double`.
    case automatic
    /// The naive oracle, accumulating in `Double`.
    case reference
    /// The tiled online-softmax kernel (`Float` only) for an instruction set.
    case tiled(KernelInstructionSet)

    /// `automatic`, `reference` or the instruction set's name, as `--implementation` takes it.
    public var description: String {
        switch self {
        case .automatic: "automatic"
        case .reference: "reference"
        case .tiled(let isa): "tiled (\(isa.rawValue))"
        }
    }
}

/// The instruction sets the kernels are compiled for: the same Swift source, compiled once per
/// instruction set with register tiles shaped for its register file.
///
/// Every fact about an instruction set, and where it lives:
///
/// | set      | module (its flags in Package.swift)                      | CPU check (`_CPUFeatures`)                    | arithmetic, register shape |
/// |----------|----------------------------------------------------------|-----------------------------------------------|----------------------------|
/// | avx512   | `_AttentionKernelsAVX512` (`-target-cpu skylake-avx512`) | AVX-512 F, VL, BW, DQ and FMA                 | `FusedMultiplyAdd`, wide   |
/// | avx2     | `_AttentionKernelsAVX2` (`-target-cpu haswell`)          | AVX2, FMA, F16C, BMI, BMI2, POPCNT and MOVBE  | `FusedMultiplyAddNarrow`, narrow |
/// | portable | `_AttentionKernels` (the target's baseline)              | none                                          | `SeparateMultiplyAdd` on x86-64 (fused on arm64), wide |
///
/// One module more holds only the block-quantized products: `_AttentionKernelsAVX512VNNI`
/// (`-target-cpu cascadelake`, `FusedMultiplyAddVNNI`), whose integer products are `vpdpbusd`; on a
/// CPU with AVX-512 VNNI (`attention_cpu_supports_avx512_vnni`) the avx512 table takes its products
/// from there (``integerDotUnit`` says which instructions the integer products run on).
///
/// The tile geometry of each register shape (tiles, key panels, key blocks, probe flops) is listed in
/// `_AttentionKernels/TileGeometry.swift`; the C intrinsics (`_KernelIntrinsics`) are the same source
/// on every set, lowered by each module's flags. Which set runs is decided by
/// each call's ``AttentionOptions`` alone (``AttentionOptions/implementation``, resolved in one place).
public enum KernelInstructionSet: String, Sendable, CaseIterable {
    /// 512-bit vectors with FMA (x86-64 CPUs with AVX-512 F, VL, BW and DQ): tiles of 8 rows × 2
    /// sixteen-lane vectors.
    case avx512
    /// 256-bit vectors with FMA (x86-64 CPUs with AVX2, FMA and the other Haswell extensions):
    /// tiles of 4 rows × 3 eight-lane vectors (keys in 48-key panels).
    case avx2
    /// The target's baseline: SSE2 on x86-64 (multiply, then add), NEON on arm64.
    case portable

    /// The fastest instruction set this CPU runs; the one ``AttentionImplementation/automatic`` uses.
    public static let best: KernelInstructionSet = allCases.first(where: \.isSupported) ?? .portable

    /// Whether this CPU can run the instruction set.
    public var isSupported: Bool {
        switch self {
        case .avx512: Self.cpuHasAVX512
        case .avx2: Self.cpuHasAVX2
        case .portable: true
        }
    }

    /// The entry points compiled for this instruction set. Call them only when ``isSupported``.
    /// On a CPU with AVX-512 VNNI the AVX-512 table's block-quantized products are those compiled
    /// for VNNI (`_AttentionKernelsAVX512VNNI`).
    var kernels: KernelEntryPoints {
        switch self {
        case .avx512: Self.cpuHasAVX512VNNI ? Self.avx512WithVNNI : avx512Kernels
        case .avx2: avx2Kernels
        case .portable: portableKernels
        }
    }

    /// What this set's integer products of quantized weights run on, on this CPU:
    /// `avx512-vnni` (`vpdpbusd`), `maddubs` (`vpmaddubsw`, AVX-512 BW or AVX2) or `vector`.
    public var integerDotUnit: String { kernels.integerDot.rawValue }

    private static let cpuHasAVX512 = attention_cpu_supports_avx512() != 0
    private static let cpuHasAVX512VNNI = attention_cpu_supports_avx512_vnni() != 0
    private static let avx512WithVNNI = avx512Kernels.replacingQuantized(with: avx512VNNIQuantized)
    private static let cpuHasAVX2 = attention_cpu_supports_avx2() != 0
}

/// Options for one attention call beyond its mathematical arguments.
public struct AttentionOptions: Sendable {
    /// Which code runs; default ``AttentionImplementation/automatic``.
    public var implementation: AttentionImplementation
    /// Worker threads, from 1 to ``maximumThreads``; default: every active processor. The work is cut
    /// for this many threads (so results and plans follow it), but a loop runs on at most one thread
    /// per active processor: more would only take turns on the same cores, and a pool grown to 1024
    /// threads by one call would be woken by every later loop.
    public var threads: Int?

    /// How products with block-quantized weights (``QuantizedMatrix``) compute; default
    /// ``QuantizedPrecision/int8``.
    public var quantizedPrecision: QuantizedPrecision

    /// The most worker threads a call takes.
    public static let maximumThreads = 1024

    /// Options for a call; the defaults choose the best code on every active processor.
    public init(implementation: AttentionImplementation = .automatic, threads: Int? = nil, quantizedPrecision: QuantizedPrecision = .int8) {
        self.implementation = implementation
        self.threads = threads
        self.quantizedPrecision = quantizedPrecision
    }
}

/// How a product with block-quantized weights computes (``QuantizedMatrix/multiply(_:argument:options:)``).
public enum QuantizedPrecision: String, Sendable, CaseIterable {
    /// The input rounded to 8-bit integers per block of 32 values (a Float scale `max|x| / 127` per
    /// block, as llama.cpp quantizes activations), then integer dot products with the weights'
    /// integers (AVX-512 VNNI where the CPU has it): about four times the products per instruction.
    /// The result is the exact product of the weights with that rounded input, so it differs from
    /// ``float32`` by the input's rounding, about 0.4% of each block's largest value (a matrix that
    /// ``QuantizedMatrix/refinesIntegerInput`` rounds it in two passes, keeping about 15 bits). For
    /// every ``QuantizedMatrix/Format``; a matrix can keep Float products
    /// (``QuantizedMatrix/usesIntegerProducts``).
    case int8
    /// Each weight dequantized exactly to Float and multiplied with the Float input.
    case float32
}

/// What runs one call: the tiled kernel on an instruction set, or the reference (and why), on how
/// many threads. ``AttentionOptions/execution(tiledComputes:scalar:)`` is the one place that decides it,
/// for the forward and backward passes alike.
struct Execution {
    /// The instruction set of the tiled kernel, or nil for the reference.
    let instructionSet: KernelInstructionSet?
    let threads: Int
    /// Why the reference runs, when it does.
    let reason: String
}

extension AttentionOptions {
    /// Checks, before any work, that a call on `Scalar` would accept these options: threads in
    /// 1...``maximumThreads``, an instruction set this CPU runs, the tiled kernel only for `Float`.
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` naming `threads` or `implementation`.
    public func validate<Scalar: AttentionScalar>(for scalar: Scalar.Type = Float.self) throws {
        _ = try execution(tiledComputes: Scalar._kernels != nil, scalar: scalar)
    }

    /// Resolves the options for a call whose scalar type the tiled kernel does (`tiledComputes`) or
    /// does not compute.
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for threads outside 1...``maximumThreads``, an
    ///   instruction set this CPU lacks, or the tiled kernel asked for a type it does not compute.
    func execution<Scalar>(tiledComputes: Bool, scalar _: Scalar.Type) throws -> Execution {
        let threads = self.threads ?? availableProcessors
        guard (1...Self.maximumThreads).contains(threads) else {
            throw AttentionError.invalidArgument(argument: "threads", reason: "must be in 1...\(Self.maximumThreads), got \(threads)")
        }
        switch implementation {
        case .reference:
            return Execution(instructionSet: nil, threads: threads, reason: "requested")
        case .automatic:
            guard tiledComputes else {
                return Execution(instructionSet: nil, threads: threads,
                                 reason: "\(Scalar.self) runs on the reference (the tiled kernel is Float only)")
            }
            return Execution(instructionSet: .best, threads: threads, reason: "")
        case .tiled(let requested):
            guard requested.isSupported else {
                throw AttentionError.invalidArgument(
                    argument: "implementation",
                    reason: "this CPU cannot run the \(requested.rawValue) kernel (it runs: \(KernelInstructionSet.allCases.filter(\.isSupported).map(\.rawValue).joined(separator: ", ")))")
            }
            guard tiledComputes else {
                throw AttentionError.invalidArgument(
                    argument: "implementation", reason: "the tiled kernel computes in Float; \(Scalar.self) runs on the reference")
            }
            return Execution(instructionSet: requested, threads: threads, reason: "")
        }
    }
}

/// Which path computed a result, and why: see ``AttentionResult/path``.
public struct AttentionPath: Sendable, Equatable, CustomStringConvertible {
    /// The code that ran: ``AttentionImplementation/reference`` or ``AttentionImplementation/tiled(_:)``.
    public let implementation: AttentionImplementation
    /// Why this path, and how the work was cut (threads, tiles, key splits).
    public var detail: String {
        if let givenDetail { return givenDetail }
        if let plan { return plan.description }
        if let (pairs, groupSize) = singleQueryGroups {
            return "one query per head over a KV cache: 1 thread, \(pairs) key/value head(s) of \(groupSize) query head(s) each, in one pass"
        }
        return ""
    }
    /// The tiled forward pass's plan, when it ran.
    public let plan: ForwardPlan?
    /// The detail given, or nil for the plan's description: written out only when asked for, since
    /// a decoding step makes hundreds of calls that no one asks.
    private let givenDetail: String?
    /// For the single-query kernel over a cache: its key/value heads (of every batch element) and
    /// the query heads each serves, described only when asked for, like the plan.
    private let singleQueryGroups: (pairs: Int, groupSize: Int)?

    /// A path that ran `implementation`, described by `detail`.
    public init(implementation: AttentionImplementation, detail: String, plan: ForwardPlan? = nil) {
        self.implementation = implementation
        self.givenDetail = detail
        self.plan = plan
        singleQueryGroups = nil
    }

    /// The single-query kernel over a cache, for `pairs` key/value heads of `groupSize` query heads.
    init(singleQuery isa: KernelInstructionSet, pairs: Int, groupSize: Int) {
        implementation = .tiled(isa)
        givenDetail = nil
        plan = nil
        singleQueryGroups = (pairs, groupSize)
    }

    /// The tiled forward pass that ran `plan`, described by it.
    init(tiled isa: KernelInstructionSet, plan: ForwardPlan) {
        implementation = .tiled(isa)
        givenDetail = nil
        self.plan = plan
        singleQueryGroups = nil
    }

    /// Whether two paths ran the same code the same way: implementation, plan and detail.
    public static func == (a: AttentionPath, b: AttentionPath) -> Bool {
        a.implementation == b.implementation && a.plan == b.plan && a.detail == b.detail
    }

    /// `implementation: detail`, as `attend --explain` prints it.
    public var description: String { "\(implementation): \(detail)" }
}
