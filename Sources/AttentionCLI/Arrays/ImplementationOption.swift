import ArgumentParser
import Attention

/// `--implementation automatic|reference|avx512|avx2|portable`, shared by the commands that run attention.
struct ImplementationOption: ParsableArguments {
    @Option(help: ArgumentHelp(
        // The same text on every machine (the help snapshots are compared whole); what this CPU
        // runs is said when a name it lacks is given.
        "automatic, reference, or a tiled kernel's instruction set: \(KernelInstructionSet.allCases.map(\.rawValue).joined(separator: ", ")) (one this CPU lacks is refused, naming those it runs).",
        valueName: "name"))
    var implementation = "automatic"

    func validate() throws {
        _ = try parsed()
    }

    /// The implementation named, or a validation error listing the names.
    func parsed() throws -> AttentionImplementation {
        switch implementation {
        case "automatic": return .automatic
        case "reference": return .reference
        default:
            guard let isa = KernelInstructionSet(rawValue: implementation) else {
                let names = ["automatic", "reference"] + KernelInstructionSet.allCases.map(\.rawValue)
                throw ValidationError("--implementation must be one of \(names.joined(separator: ", ")), got '\(implementation)'")
            }
            guard isa.isSupported else {
                throw ValidationError("--implementation \(isa.rawValue): this CPU cannot run it (it runs \(KernelInstructionSet.allCases.filter(\.isSupported).map(\.rawValue).joined(separator: ", ")))")
            }
            return .tiled(isa)
        }
    }
}

/// `--kv-dtype float32|float16|bfloat16`.
extension KVCache.Storage: ExpressibleByArgument {
    /// The names `--kv-dtype` accepts.
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

/// `--weights q8_0|q4_0|q4_1` (any case).
extension QuantizedMatrix.Format: ExpressibleByArgument {
    /// The format named `argument`, in any case (`q4_1` or `Q4_1`); nil for another name.
    public init?(argument: String) {
        guard let format = Self.allCases.first(where: { $0.rawValue.lowercased() == argument.lowercased() }) else { return nil }
        self = format
    }
    /// The names `--weights` accepts.
    public static var allValueStrings: [String] { allCases.map { $0.rawValue.lowercased() } }
}

/// `--precision int8|float32`: how products with block-quantized weights compute.
extension QuantizedPrecision: ExpressibleByArgument {
    /// The names `--precision` accepts.
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

/// The help of `--precision`, the same for every command that takes it.
let precisionHelp = ArgumentHelp(
    "Products with block-quantized weights: int8 rounds each input row to 8-bit integers per block of 32 and multiplies on the integer units (as llama.cpp does; every block format), float32 dequantizes the weights exactly and multiplies in Float.",
    valueName: "int8|float32")
