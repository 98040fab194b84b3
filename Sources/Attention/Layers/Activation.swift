import Foundation
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

    /// The function applied to every element of `x`: `Float` on the vectorized kernel of the
    /// instruction set `options` choose; the reference (and other types) in `Double`.
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` for options this CPU or type cannot run.
    public func callAsFunction<Scalar: AttentionScalar>(_ x: Tensor<Scalar>, options: AttentionOptions = AttentionOptions()) throws -> Tensor<Scalar> {
        let execution = try options.execution(tiledComputes: Scalar._kernels != nil, scalar: Scalar.self)
        if let kernels = Scalar._kernels, let isa = execution.instructionSet {
            var values = x.scalars
            kernels.activation(&values, nil, self, isa, execution.threads)
            return Tensor(uncheckedShape: x.shape, scalars: values)
        }
        return x.map { Scalar(fromDouble: reference($0.doubleValue)) }
    }

    /// `f(gate) ⊙ up`, element by element: a gated feed-forward's inner activation (Llama's
    /// `silu(gate(x)) · up(x)`, Gemma's with GELU) into one new array. The same values as
    /// ``callAsFunction(_:options:)`` on `gate` times `up`: each element `f(g)` rounded to `Scalar`,
    /// then the product rounded.
    /// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` when the
    ///   shapes differ; ``AttentionError/invalidArgument(argument:reason:)`` for options this CPU or
    ///   type cannot run.
    public func gated<Scalar: AttentionScalar>(_ gate: Tensor<Scalar>, by up: Tensor<Scalar>,
                                               options: AttentionOptions = AttentionOptions()) throws -> Tensor<Scalar> {
        guard gate.shape == up.shape else {
            throw AttentionError.shapeMismatch(argument: "up", shape: up.shape, other: "gate", otherShape: gate.shape,
                                               reason: "a gated activation multiplies two tensors of one shape")
        }
        let execution = try options.execution(tiledComputes: Scalar._kernels != nil, scalar: Scalar.self)
        guard let kernels = Scalar._kernels, let isa = execution.instructionSet else {
            return Tensor(uncheckedShape: gate.shape, scalars: zip(gate.scalars, up.scalars).map { g, u in
                Scalar(fromDouble: reference(g.doubleValue)) * u
            })
        }
        var values = gate.scalars
        kernels.activation(&values, up.scalars, self, isa, execution.threads)
        return Tensor(uncheckedShape: gate.shape, scalars: values)
    }

    /// The function in `Double`, as the reference computes it.
    func reference(_ d: Double) -> Double {
        switch self {
        case .gelu: 0.5 * d * (1 + erf(d / 2.0.squareRoot()))
        case .geluTanh: 0.5 * d * (1 + tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d)))
        case .silu: d / (1 + exp(-d))
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
