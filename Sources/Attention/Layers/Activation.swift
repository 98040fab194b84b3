import _AttentionKernels

/// An elementwise function a ``Linear`` layer can apply to its output as it computes it
/// (``Linear/callAsFunction(_:activation:argument:options:)``): on the tiled kernel each thread
/// applies it to the block of rows it has just written, while the block is in its cache, instead of
/// a pass of its own over the whole output afterwards.
public enum Activation: String, Sendable, CaseIterable {
    /// GELU in its exact (erf) form, ``gelu(_:)``: BERT's.
    case gelu
    /// GELU in its tanh form, ``geluTanh(_:)``: GPT-2's.
    case geluTanh
    /// SiLU, ``silu(_:)``: Llama's gate.
    case silu

    /// The function applied to every element of `x`.
    public func callAsFunction<Scalar: AttentionScalar>(_ x: Tensor<Scalar>) -> Tensor<Scalar> {
        switch self {
        case .gelu: Attention.gelu(x)
        case .geluTanh: Attention.geluTanh(x)
        case .silu: Attention.silu(x)
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
