import _AttentionKernels

/// An affine map over the last dimension: `y = x · Wᵀ + b`, with `W [outputDimension, inputDimension]`
/// and `b [outputDimension]`, the layout PyTorch's `nn.Linear` uses (so its weights load unchanged).
public struct Linear<Scalar: AttentionScalar>: Sendable {
    /// `[outputDimension, inputDimension]`.
    public let weight: Tensor<Scalar>
    /// `[outputDimension]`, or nil for no bias.
    public let bias: Tensor<Scalar>?
    /// The weight transposed and packed in 32-column panels (`packPanels`): the layout the matrix
    /// kernel streams. Only for Float; Double uses `weight` directly.
    private let packedWeight: [Scalar]

    public var inputDimension: Int { weight.shape[1] }
    public var outputDimension: Int { weight.shape[0] }

    /// A layer from given parameters.
    ///
    /// - Throws: ``AttentionError/invalidShape(argument:shape:reason:)`` if `weight` is not rank 2 or
    ///   `bias` is not `[outputDimension]`.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public init(weight: Tensor<Scalar>, bias: Tensor<Scalar>?) throws {
        guard weight.rank == 2, !weight.shape.contains(0) else {
            throw AttentionError.invalidShape(argument: "weight", shape: weight.shape,
                                              reason: "expected [outputDimension, inputDimension], both > 0")
        }
        if let bias, bias.shape != [weight.shape[0]] {
            throw AttentionError.shapeMismatch(argument: "bias", shape: bias.shape, other: "weight",
                                               otherShape: weight.shape, reason: "expected [\(weight.shape[0])]")
        }
        self.weight = weight
        self.bias = bias
        self.packedWeight = Linear.pack(weight)
    }

    /// A layer initialized as PyTorch's `nn.Linear`: weights and bias uniform in `±1/√inputDimension`.
    public init(inputDimension: Int, outputDimension: Int, bias: Bool = true, using generator: inout SplitMix64) throws {
        guard inputDimension > 0, outputDimension > 0 else {
            throw AttentionError.invalidArgument(
                argument: "inputDimension/outputDimension",
                reason: "must be positive, got \(inputDimension) and \(outputDimension)")
        }
        let bound = 1 / Double(inputDimension).squareRoot()
        self.weight = try .randomUniform(shape: [outputDimension, inputDimension], in: -bound...bound, using: &generator)
        self.bias = bias ? try .randomUniform(shape: [outputDimension], in: -bound...bound, using: &generator) : nil
        self.packedWeight = Linear.pack(weight)
    }

    /// The weight packed for the type's matrix kernel, or empty when it has none.
    private static func pack(_ w: Tensor<Scalar>) -> [Scalar] {
        Scalar._kernels?.packLinearWeight(w.scalars, w.shape[0], w.shape[1]) ?? []
    }

    /// Applies the layer to the last dimension of `input`, which must equal `inputDimension`.
    /// `Float` runs on the tiled matrix kernel over all cores.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func callAsFunction(_ input: Tensor<Scalar>, argument: String = "input") throws -> Tensor<Scalar> {
        guard let last = input.shape.last, last == inputDimension else {
            throw AttentionError.shapeMismatch(
                argument: argument, shape: input.shape, other: "the layer's weight", otherShape: weight.shape,
                reason: "the last dimension must be the layer's input dimension \(inputDimension)")
        }
        let rows = input.count / inputDimension
        let (n, m) = (inputDimension, outputDimension)
        if let kernels = Scalar._kernels {
            // The tiled matrix kernel (the same micro-kernel as attention), over all cores.
            let output = kernels.linear(input.scalars, packedWeight, bias?.scalars, rows, m, n)
            return Tensor(uncheckedShape: Array(input.shape.dropLast()) + [m], scalars: output)
        }
        var output = [Scalar](repeating: 0, count: rows * m)
        for r in 0..<rows {
            for o in 0..<m {
                var sum: Scalar = bias?.scalars[o] ?? 0
                for c in 0..<n { sum += input.scalars[r * n + c] * weight.scalars[o * n + c] }
                output[r * m + o] = sum
            }
        }
        return Tensor(uncheckedShape: Array(input.shape.dropLast()) + [m], scalars: output)
    }
}
