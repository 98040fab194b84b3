import Foundation

/// GELU in its exact form, `x · Φ(x) = ½ x (1 + erf(x / √2))`, elementwise. `Float` runs a vectorized
/// erf (absolute error below 2e-7) on the instruction set `options` choose; the reference (and other
/// types) evaluates it in `Double`.
///
/// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for options this CPU or type cannot run.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func gelu<Scalar: AttentionScalar>(_ x: Tensor<Scalar>, options: AttentionOptions = AttentionOptions()) throws -> Tensor<Scalar> {
    try Activation.gelu(x, options: options)
}

/// GELU in its tanh form, `½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))`, elementwise: what GPT-2 uses
/// (transformers' `gelu_new`, PyTorch's `gelu(approximate="tanh")`). `Float` runs a vectorized form
/// (`x·σ(2u)`, relative error about 1e-7) on the instruction set `options` choose; the reference (and
/// other types) evaluates it in `Double`.
///
/// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for options this CPU or type cannot run.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func geluTanh<Scalar: AttentionScalar>(_ x: Tensor<Scalar>, options: AttentionOptions = AttentionOptions()) throws -> Tensor<Scalar> {
    try Activation.geluTanh(x, options: options)
}

/// ∂L/∂x of ``geluTanh(_:options:)`` from ∂L/∂y: `dy · (½(1 + tanh u) + ½x(1 - tanh²u)·√(2/π)(1 + 3·0.044715x²))`,
/// on the instruction set `options` choose (the reference in `Double`).
///
/// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` if the shapes differ;
///   ``AttentionError/invalidArgument(argument:reason:)`` for options this CPU or type cannot run.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func geluTanhBackward<Scalar: AttentionScalar>(
    input x: Tensor<Scalar>, outputGradient dy: Tensor<Scalar>, options: AttentionOptions = AttentionOptions()
) throws -> Tensor<Scalar> {
    guard x.shape == dy.shape else {
        throw AttentionError.shapeMismatch(argument: "outputGradient", shape: dy.shape, other: "input", otherShape: x.shape, reason: "expected the input's shape")
    }
    let execution = try options.execution(tiledComputes: Scalar._kernels != nil, scalar: Scalar.self)
    if let kernels = Scalar._kernels, let isa = execution.instructionSet {
        return Tensor(uncheckedShape: x.shape, scalars: kernels.geluTanhBackward(x.scalars, dy.scalars, isa))
    }
    let c = (2 / Double.pi).squareRoot()
    let scalars = zip(x.scalars, dy.scalars).map { xs, gs -> Scalar in
        let v = xs.doubleValue
        let th = tanh(c * (v + 0.044715 * v * v * v))
        return Scalar(fromDouble: gs.doubleValue * (0.5 * (1 + th) + 0.5 * v * (1 - th * th) * c * (1 + 3 * 0.044715 * v * v)))
    }
    return Tensor(uncheckedShape: x.shape, scalars: scalars)
}
