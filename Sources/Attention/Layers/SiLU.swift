import Foundation

/// SiLU (swish), `x · σ(x)`, elementwise. `Float` runs a vectorized form (relative error about 1e-7)
/// on the instruction set `options` choose; the reference (and other types) evaluates it in `Double`.
///
/// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for options this CPU or type cannot run.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func silu<Scalar: AttentionScalar>(_ x: Tensor<Scalar>, options: AttentionOptions = AttentionOptions()) throws -> Tensor<Scalar> {
    let execution = try options.execution(tiledComputes: Scalar._kernels != nil, scalar: Scalar.self)
    if let kernels = Scalar._kernels, let isa = execution.instructionSet {
        var values = x.scalars
        kernels.silu(&values, isa)
        return Tensor(uncheckedShape: x.shape, scalars: values)
    }
    return x.map { v in
        let d = v.doubleValue
        return Scalar(fromDouble: d / (1 + exp(-d)))
    }
}
