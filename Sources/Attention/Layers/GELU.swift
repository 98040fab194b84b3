import Foundation

/// GELU in its exact form, `x · Φ(x) = ½ x (1 + erf(x / √2))`, elementwise.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func gelu<Scalar: AttentionScalar>(_ x: Tensor<Scalar>) -> Tensor<Scalar> {
    if let kernels = Scalar._kernels {
        // Float: a vectorized erf (absolute error below 2e-7) on the kernel modules.
        var values = x.scalars
        kernels.gelu(&values)
        return Tensor(uncheckedShape: x.shape, scalars: values)
    }
    return x.map { v in
        let d = v.doubleValue
        return Scalar(fromDouble: 0.5 * d * (1 + erf(d / 2.0.squareRoot())))
    }
}

/// GELU in its tanh form, `½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))`, elementwise: what GPT-2 uses
/// (transformers' `gelu_new`, PyTorch's `gelu(approximate="tanh")`). `Float` runs a vectorized form
/// (`x·σ(2u)`, relative error about 1e-7); other types evaluate it in `Double`.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func geluTanh<Scalar: AttentionScalar>(_ x: Tensor<Scalar>) -> Tensor<Scalar> {
    if let kernels = Scalar._kernels {
        var values = x.scalars
        kernels.geluTanh(&values)
        return Tensor(uncheckedShape: x.shape, scalars: values)
    }
    let c = (2 / Double.pi).squareRoot()
    return x.map { v in
        let d = v.doubleValue
        return Scalar(fromDouble: 0.5 * d * (1 + tanh(c * (d + 0.044715 * d * d * d))))
    }
}

/// ∂L/∂x of ``geluTanh(_:)`` from ∂L/∂y: `dy · (½(1 + tanh u) + ½x(1 - tanh²u)·√(2/π)(1 + 3·0.044715x²))`.
///
/// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` if the shapes differ.
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func geluTanhBackward<Scalar: AttentionScalar>(input x: Tensor<Scalar>, outputGradient dy: Tensor<Scalar>) throws -> Tensor<Scalar> {
    guard x.shape == dy.shape else {
        throw AttentionError.shapeMismatch(argument: "outputGradient", shape: dy.shape, other: "input", otherShape: x.shape, reason: "expected the input's shape")
    }
    if let kernels = Scalar._kernels { return Tensor(uncheckedShape: x.shape, scalars: kernels.geluTanhBackward(x.scalars, dy.scalars)) }
    let c = (2 / Double.pi).squareRoot()
    let scalars = zip(x.scalars, dy.scalars).map { xs, gs -> Scalar in
        let v = xs.doubleValue
        let th = tanh(c * (v + 0.044715 * v * v * v))
        return Scalar(fromDouble: gs.doubleValue * (0.5 * (1 + th) + 0.5 * v * (1 - th * th) * c * (1 + 3 * 0.044715 * v * v)))
    }
    return Tensor(uncheckedShape: x.shape, scalars: scalars)
}
