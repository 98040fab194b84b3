import Foundation
import _AttentionKernels

/// How a ``Linear`` layer keeps its weight.
public enum WeightLayout: Sendable, Equatable {
    /// `[outputDimension, inputDimension]`: PyTorch's `nn.Linear` (and BERT's checkpoints).
    case outputMajor
    /// `[inputDimension, outputDimension]`: transformers' `Conv1D` (GPT-2's checkpoints), `y = x·W + b`.
    case inputMajor
}

/// An affine map over the last dimension: `y = x · Wᵀ + b`, with `W [outputDimension, inputDimension]`
/// and `b [outputDimension]`, the layout PyTorch's `nn.Linear` uses (so its weights load unchanged).
///
/// The weight is kept as it was given, in either ``WeightLayout``: a GPT-2 checkpoint's `[in, out]`
/// matrices are used as they are, with no transposed copy. Up to 16 rows at a time (a decoding step,
/// a short prompt) are multiplied straight from that storage, the weight read once; more rows run on
/// the tiled matrix kernel, which reads the weight packed in 32-column panels, made on the first such
/// call and kept. Which path runs depends only on the number of rows, so equal inputs give equal
/// outputs.
public struct Linear<Scalar: AttentionScalar>: Sendable {
    /// The weight as stored: `[outputDimension, inputDimension]` if ``layout`` is `.outputMajor`,
    /// `[inputDimension, outputDimension]` if it is `.inputMajor`.
    public let storedWeight: Tensor<Scalar>
    /// How ``storedWeight`` is laid out.
    public let layout: WeightLayout
    /// `[outputDimension]`, or nil for no bias.
    public let bias: Tensor<Scalar>?
    /// The weight packed for the tiled matrix kernel, made when first needed.
    private let panels: PackedPanels<Scalar>

    public let inputDimension: Int
    public let outputDimension: Int

    /// `[outputDimension, inputDimension]` (nn.Linear's layout), transposed from ``storedWeight``
    /// when the layer keeps it input-major.
    public var weight: Tensor<Scalar> {
        layout == .outputMajor ? storedWeight
            : Tensor(uncheckedShape: [outputDimension, inputDimension],
                     scalars: transposedScalars(storedWeight.scalars, rows: inputDimension, columns: outputDimension))
    }

    /// `[inputDimension, outputDimension]` (Conv1D's layout), transposed from ``storedWeight`` when the
    /// layer keeps it output-major.
    public var inputMajorWeight: Tensor<Scalar> {
        layout == .inputMajor ? storedWeight
            : Tensor(uncheckedShape: [inputDimension, outputDimension],
                     scalars: transposedScalars(storedWeight.scalars, rows: outputDimension, columns: inputDimension))
    }

    /// A layer from given parameters: `weight` `[outputDimension, inputDimension]` (`.outputMajor`,
    /// the default) or `[inputDimension, outputDimension]` (`.inputMajor`).
    ///
    /// - Throws: ``AttentionError/invalidShape(argument:shape:reason:)`` if `weight` is not rank 2 or
    ///   `bias` is not `[outputDimension]`.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public init(weight: Tensor<Scalar>, bias: Tensor<Scalar>?, layout: WeightLayout = .outputMajor) throws {
        guard weight.rank == 2, !weight.shape.contains(0) else {
            throw AttentionError.invalidShape(
                argument: "weight", shape: weight.shape,
                reason: layout == .outputMajor ? "expected [outputDimension, inputDimension], both > 0"
                                               : "expected [inputDimension, outputDimension], both > 0")
        }
        let outputs = layout == .outputMajor ? weight.shape[0] : weight.shape[1]
        if let bias, bias.shape != [outputs] {
            throw AttentionError.shapeMismatch(argument: "bias", shape: bias.shape, other: "weight",
                                               otherShape: weight.shape, reason: "expected [\(outputs)]")
        }
        self.storedWeight = weight
        self.layout = layout
        self.bias = bias
        self.outputDimension = outputs
        self.inputDimension = layout == .outputMajor ? weight.shape[1] : weight.shape[0]
        self.panels = PackedPanels()
    }

    /// A layer initialized as PyTorch's `nn.Linear`: weights and bias uniform in `±1/√inputDimension`.
    public init(inputDimension: Int, outputDimension: Int, bias: Bool = true, using generator: inout SplitMix64) throws {
        guard inputDimension > 0, outputDimension > 0 else {
            throw AttentionError.invalidArgument(
                argument: "inputDimension/outputDimension",
                reason: "must be positive, got \(inputDimension) and \(outputDimension)")
        }
        let bound = 1 / Double(inputDimension).squareRoot()
        let weight = try Tensor<Scalar>.randomUniform(shape: [outputDimension, inputDimension], in: -bound...bound, using: &generator)
        let bias = bias ? try Tensor<Scalar>.randomUniform(shape: [outputDimension], in: -bound...bound, using: &generator) : nil
        try self.init(weight: weight, bias: bias)
    }

    /// The panels of the tiled matrix kernel, packed on first use.
    private func packedPanels(_ kernels: _ScalarKernels<Scalar>) -> [Scalar] {
        panels.value { kernels.packLinearWeight(storedWeight.scalars, outputDimension, inputDimension, layout) }
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
            let output = kernels.linear(input.scalars, storedWeight.scalars, layout, { packedPanels(kernels) }, bias?.scalars, rows, m, n)
            return Tensor(uncheckedShape: Array(input.shape.dropLast()) + [m], scalars: output)
        }
        let w = storedWeight.scalars
        var output = [Scalar](repeating: 0, count: rows * m)
        for r in 0..<rows {
            for o in 0..<m {
                var sum: Scalar = bias?.scalars[o] ?? 0
                switch layout {
                case .outputMajor: for c in 0..<n { sum += input.scalars[r * n + c] * w[o * n + c] }
                case .inputMajor: for c in 0..<n { sum += input.scalars[r * n + c] * w[c * m + o] }
                }
                output[r * m + o] = sum
            }
        }
        return Tensor(uncheckedShape: Array(input.shape.dropLast()) + [m], scalars: output)
    }
}

/// A value computed once, on first use, shared by every copy of the layer that holds it.
final class PackedPanels<Scalar: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var panels: [Scalar]?

    func value(_ make: () -> [Scalar]) -> [Scalar] {
        lock.lock()
        defer { lock.unlock() }
        if let panels { return panels }
        let made = make()
        panels = made
        return made
    }
}

/// Row-major `[rows, columns]` transposed, in 16 × 16 blocks so that reads and writes both stay in cache.
func transposedScalars<Scalar>(_ a: [Scalar], rows: Int, columns: Int) -> [Scalar] {
    [Scalar](unsafeUninitializedCapacity: a.count) { t, count in
        a.withUnsafeBufferPointer { a in
            guard let t = t.baseAddress else { return }
            for r0 in stride(from: 0, to: rows, by: 16) {
                for c0 in stride(from: 0, to: columns, by: 16) {
                    for c in c0..<min(c0 + 16, columns) {
                        for r in r0..<min(r0 + 16, rows) { (t + c * rows + r).initialize(to: a[r * columns + c]) }
                    }
                }
            }
        }
        count = a.count
    }
}
