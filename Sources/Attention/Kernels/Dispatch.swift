import _CPUFeatures

/// Which code computes attention.
public enum AttentionImplementation: Sendable, Equatable, CustomStringConvertible {
    /// The fastest path for the arguments: the tiled kernel for `Float`, the reference for `Double`.
    case automatic
    /// The naive oracle, accumulating in `Double`.
    case reference
    /// The tiled online-softmax kernel (`Float` only) for an instruction set.
    case tiled(KernelInstructionSet)

    public var description: String {
        switch self {
        case .automatic: "automatic"
        case .reference: "reference"
        case .tiled(let isa): "tiled (\(isa.rawValue))"
        }
    }
}

/// The instruction sets the tiled kernel is compiled for.
public enum KernelInstructionSet: String, Sendable, CaseIterable {
    /// 512-bit vectors with FMA (x86-64 CPUs with AVX-512 F, VL, BW and DQ).
    case avx512
    /// The target's baseline: SSE2 on x86-64, NEON on arm64.
    case portable

    /// The best instruction set this CPU runs.
    public static let best: KernelInstructionSet = attention_cpu_supports_avx512() != 0 ? .avx512 : .portable

    /// Whether this CPU can run the instruction set.
    public var isSupported: Bool { self == .portable || Self.best == .avx512 }
}

/// Options for one attention call beyond its mathematical arguments.
public struct AttentionOptions: Sendable {
    /// Which code runs; default ``AttentionImplementation/automatic``.
    public var implementation: AttentionImplementation
    /// Worker threads; default: every active processor.
    public var threads: Int?

    public init(implementation: AttentionImplementation = .automatic, threads: Int? = nil) {
        self.implementation = implementation
        self.threads = threads
    }
}

/// Which path computed a result, and why: see ``AttentionResult/path``.
public struct AttentionPath: Sendable, Equatable, CustomStringConvertible {
    /// The code that ran: ``AttentionImplementation/reference`` or ``AttentionImplementation/tiled(_:)``.
    public let implementation: AttentionImplementation
    /// Why this path, and how the work was cut (threads, tiles, key splits).
    public let detail: String

    public var description: String { "\(implementation): \(detail)" }
}
