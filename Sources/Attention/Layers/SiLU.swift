import Foundation

/// SiLU (swish), `x · σ(x)`, elementwise. `Float` runs a vectorized form (relative error about 1e-7)
/// on the instruction set `options` choose; the reference (and other types) evaluates it in `Double`.
///
/// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for options this CPU or type cannot run.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func silu<Scalar: AttentionScalar>(_ x: Tensor<Scalar>, options: AttentionOptions = AttentionOptions()) throws -> Tensor<Scalar> {
    try Activation.silu(x, options: options)
}
