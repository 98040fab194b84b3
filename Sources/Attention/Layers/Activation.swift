import _AttentionKernels

/// An elementwise function a ``Linear`` layer can apply to its output as it computes it
/// (``Linear/callAsFunction(_:activation:argument:options:)``): on the tiled kernel each thread
/// applies it to the block of rows it has just written, while the block is in its cache, instead of
/// a pass of its own over the whole output afterwards.
public enum Activation: String, Sendable, CaseIterable {
    /// GELU in its exact (erf) form, ``gelu(_:options:)``: BERT's.
    case gelu
    /// GELU in its tanh form, ``geluTanh(_:options:)``: GPT-2's.
    case geluTanh
    /// SiLU, ``silu(_:options:)``: Llama's gate.
    case silu

    /// The function applied to every element of `x`, on the instruction set `options` choose.
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for options this CPU or type cannot run.
    public func callAsFunction<Scalar: AttentionScalar>(_ x: Tensor<Scalar>, options: AttentionOptions = AttentionOptions()) throws -> Tensor<Scalar> {
        switch self {
        case .gelu: try Attention.gelu(x, options: options)
        case .geluTanh: try Attention.geluTanh(x, options: options)
        case .silu: try Attention.silu(x, options: options)
        }
    }

    /// The Float kernel of `kernels` that applies it in place.
    func kernel(_ kernels: KernelEntryPoints) -> @Sendable (UnsafeMutablePointer<Float>, Int) -> Void {
        switch self {
        case .gelu: kernels.gelu
        case .geluTanh: kernels.geluTanh
        case .silu: kernels.silu
        }
    }
}
