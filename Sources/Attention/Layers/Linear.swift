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
    /// `[inputDimension, outputDimension]` if it is `.inputMajor`. A copy when the layer reads its
    /// weight in place from a file (``init(weights:name:shape:bias:layout:)``).
    public var storedWeight: Tensor<Scalar> {
        switch storage {
        case let .tensor(t): t
        case let .mapped(m):
            Tensor(uncheckedShape: storedShape, scalars: m.withUnsafeBufferPointer { Array($0.withMemoryRebound(to: Scalar.self) { $0 }) })
        case let .quantized(q):
            Tensor(uncheckedShape: storedShape, scalars: q.dequantized().scalars.map { Scalar(Double($0)) })
        }
    }
    /// The weight in its block format, when the layer was made from one (``init(quantizedWeight:bias:)``).
    public var quantizedWeight: QuantizedMatrix? {
        if case let .quantized(q) = storage { q } else { nil }
    }
    /// Where the weight lives: a tensor, or (Float only) a safetensors file's mapped bytes or a
    /// block-quantized matrix.
    let storage: WeightStorage<Scalar>
    /// How ``storedWeight`` is laid out.
    public let layout: WeightLayout
    /// `[outputDimension]`, or nil for no bias.
    public let bias: Tensor<Scalar>?
    /// The weight packed for the tiled matrix kernel, made when first needed.
    private let panels: PackedPanels<Scalar>
    /// The screen of ``largestOutputs(_:of:argument:options:)``, made when first needed.
    let screen = OutputScreenBox()

    /// Features in: the last dimension of the input.
    public let inputDimension: Int
    /// Features out.
    public let outputDimension: Int

    /// `[outputDimension, inputDimension]` (nn.Linear's layout), transposed from ``storedWeight``
    /// when the layer keeps it input-major.
    public var weight: Tensor<Scalar> {
        layout == .outputMajor ? storedWeight
            : Tensor(uncheckedShape: [outputDimension, inputDimension],
                     scalars: withUnsafeStoredWeight { transposedScalars($0, rows: inputDimension, columns: outputDimension) })
    }

    /// `[inputDimension, outputDimension]` (Conv1D's layout), transposed from ``storedWeight`` when the
    /// layer keeps it output-major.
    public var inputMajorWeight: Tensor<Scalar> {
        layout == .inputMajor ? storedWeight
            : Tensor(uncheckedShape: [inputDimension, outputDimension],
                     scalars: withUnsafeStoredWeight { transposedScalars($0, rows: outputDimension, columns: inputDimension) })
    }

    /// A layer from given parameters: `weight` `[outputDimension, inputDimension]` (`.outputMajor`,
    /// the default) or `[inputDimension, outputDimension]` (`.inputMajor`).
    ///
    /// - Throws: ``AttentionError/invalidShape(argument:shape:reason:)`` if `weight` is not rank 2 or
    ///   `bias` is not `[outputDimension]`.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public init(weight: Tensor<Scalar>, bias: Tensor<Scalar>?, layout: WeightLayout = .outputMajor) throws {
        let (outputs, inputs) = try Self.dimensions(of: weight.shape, bias: bias, layout: layout)
        self.init(storage: .tensor(weight), layout: layout, bias: bias, outputs: outputs, inputs: inputs)
    }

    /// The output and input dimensions a weight of `shape` in `layout` gives, checked with the bias.
    /// - Throws: as ``init(weight:bias:layout:)``.
    fileprivate static func dimensions(of shape: [Int], bias: Tensor<Scalar>?, layout: WeightLayout) throws -> (outputs: Int, inputs: Int) {
        guard shape.count == 2, !shape.contains(0) else {
            throw AttentionError.invalidShape(
                argument: "weight", shape: shape,
                reason: layout == .outputMajor ? "expected [outputDimension, inputDimension], both > 0"
                                               : "expected [inputDimension, outputDimension], both > 0")
        }
        let (outputs, inputs) = layout == .outputMajor ? (shape[0], shape[1]) : (shape[1], shape[0])
        if let bias, bias.shape != [outputs] {
            throw AttentionError.shapeMismatch(argument: "bias", shape: bias.shape, other: "weight",
                                               otherShape: shape, reason: "expected [\(outputs)]")
        }
        return (outputs, inputs)
    }

    fileprivate init(storage: WeightStorage<Scalar>, layout: WeightLayout, bias: Tensor<Scalar>?, outputs: Int, inputs: Int) {
        self.storage = storage
        self.layout = layout
        self.bias = bias
        self.outputDimension = outputs
        self.inputDimension = inputs
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

    /// The stored weight's scalars in place, without a copy.
    public func withUnsafeStoredWeight<R>(_ body: (UnsafeBufferPointer<Scalar>) throws -> R) rethrows -> R {
        switch storage {
        case let .tensor(t): try t.withUnsafeBufferPointer(body)
        case let .mapped(m): try m.withUnsafeBufferPointer { try $0.withMemoryRebound(to: Scalar.self, body) }
        case .quantized: try storedWeight.withUnsafeBufferPointer(body)
        }
    }

    private var storedShape: [Int] { layout == .outputMajor ? [outputDimension, inputDimension] : [inputDimension, outputDimension] }

    /// The panels of the tiled matrix kernel, packed on first use.
    private func packedPanels(_ kernels: _ScalarKernels<Scalar>) -> [Scalar] {
        panels.value { withUnsafeStoredWeight { kernels.packLinearWeight($0, outputDimension, inputDimension, layout) } }
    }

    /// Applies the layer to the last dimension of `input`, which must equal `inputDimension`.
    ///
    /// `options` chooses the code as for attention: ``AttentionImplementation/automatic`` runs
    /// `Float` on the tiled matrix kernel of the best instruction set this CPU has and other types on
    /// a plain loop; ``AttentionImplementation/tiled(_:)`` forces an instruction set (Float only);
    /// ``AttentionImplementation/reference`` runs the plain loop. The kernel shares the work among
    /// `options.threads` threads (default: every active processor); small products run on one.
    ///
    /// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` for an input
    ///   of another last dimension; ``AttentionError/invalidArgument(argument:reason:)`` for options
    ///   this CPU or scalar type cannot run, or threads outside 1...``AttentionOptions/maximumThreads``.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func callAsFunction(_ input: Tensor<Scalar>, argument: String = "input", options: AttentionOptions = AttentionOptions()) throws -> Tensor<Scalar> {
        try apply(input, activation: nil, argument: argument, options: options)
    }

    /// `activation(input · Wᵀ + b)`: the layer, then `activation` on each element of its output, as
    /// `activation(layer(input))` computes it. On the tiled kernel each thread applies it to the rows
    /// it has just computed, while they are in its cache: no second pass over the output, and no
    /// second array.
    ///
    /// - Throws: as ``callAsFunction(_:argument:options:)``.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func callAsFunction(
        _ input: Tensor<Scalar>, activation: Activation, argument: String = "input", options: AttentionOptions = AttentionOptions()
    ) throws -> Tensor<Scalar> {
        try apply(input, activation: activation, argument: argument, options: options)
    }

    private func apply(_ input: Tensor<Scalar>, activation: Activation?, argument: String, options: AttentionOptions) throws -> Tensor<Scalar> {
        let execution = try options.execution(tiledComputes: Scalar._kernels != nil, scalar: Scalar.self)
        guard let last = input.shape.last, last == inputDimension else {
            throw AttentionError.shapeMismatch(
                argument: argument, shape: input.shape, other: "the layer's weight", otherShape: [outputDimension, inputDimension],
                reason: "the last dimension must be the layer's input dimension \(inputDimension)")
        }
        let rows = input.count / inputDimension
        let (n, m) = (inputDimension, outputDimension)
        // A block-quantized weight computes as its matrix does, the reference included (which rounds
        // the input as the options' quantized precision says).
        if case let .quantized(q) = storage, let floats = input as? Tensor<Float> {
            var y = try q.multiply(floats, argument: argument, options: options)
            if let bias = bias as? Tensor<Float> {
                y = Tensor(uncheckedShape: y.shape, scalars: y.scalars.enumerated().map { $1 + bias.scalars[$0 % m] })
            }
            if let output = y as? Tensor<Scalar> { return try activation.map { try $0(output, options: options) } ?? output }
        }
        if let kernels = Scalar._kernels, let isa = execution.instructionSet {
            let output = withUnsafeStoredWeight {
                kernels.linear(input.scalars, $0, layout, { packedPanels(kernels) }, bias?.scalars, activation, rows, m, n, isa,
                               execution.threads)
            }
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
        let result = Tensor(uncheckedShape: Array(input.shape.dropLast()) + [m], scalars: output)
        return try activation.map { try $0(result, options: options) } ?? result
    }
}

extension Linear where Scalar == Float {
    /// A layer that reads its weight, the F32 tensor `name` of `weights` (`shape` as `layout` implies),
    /// where it lies in the file, with no copy: loading a checkpoint maps it and is done. The file must
    /// not be truncated or rewritten in place while the layer lives (writing a new file and renaming
    /// it over the old, as ``SafeTensors/write(_:to:metadata:)`` does, is safe). Tensors of another
    /// dtype, or misaligned, are converted into a copy instead.
    ///
    /// - Throws: ``AttentionError/invalidFile(path:reason:)`` if there is no such tensor or its shape
    ///   differs from `shape`; as ``init(weight:bias:layout:)`` for a bias that does not fit.
    public init(weights: SafeTensors, name: String, shape: [Int], bias: Tensor<Float>?, layout: WeightLayout = .outputMajor) throws {
        guard let entry = weights.entries[name] else {
            throw AttentionError.invalidFile(path: weights.path, reason: "no tensor named '\(name)'")
        }
        guard entry.shape == shape else {
            throw AttentionError.invalidFile(path: weights.path, reason: "'\(name)' has shape \(entry.shape), expected \(shape)")
        }
        guard let mapped = weights.mappedFloats(name) else {
            try self.init(weight: weights.tensor(name), bias: bias, layout: layout)
            return
        }
        let (outputs, inputs) = try Self.dimensions(of: shape, bias: bias, layout: layout)
        self.init(storage: .mapped(mapped), layout: layout, bias: bias, outputs: outputs, inputs: inputs)
    }
}

extension Linear where Scalar == Float {
    /// A layer whose weight `[outputDimension, inputDimension]` stays in its block format: the
    /// products read the blocks directly (``QuantizedMatrix/multiply(_:argument:options:)``, under
    /// ``AttentionOptions/quantizedPrecision``), and ``AttentionImplementation/reference`` runs that
    /// method's plain loop on the dequantized weight.
    /// - Throws: ``AttentionError/shapeMismatch(argument:shape:other:otherShape:reason:)`` if `bias`
    ///   is not `[outputDimension]`.
    public init(quantizedWeight: QuantizedMatrix, bias: Tensor<Float>?) throws {
        let (outputs, inputs) = try Self.dimensions(of: [quantizedWeight.rows, quantizedWeight.columns], bias: bias, layout: .outputMajor)
        self.init(storage: .quantized(quantizedWeight), layout: .outputMajor, bias: bias, outputs: outputs, inputs: inputs)
    }
}

/// Where a ``Linear`` layer's weight lives.
enum WeightStorage<Scalar: AttentionScalar>: Sendable {
    case tensor(Tensor<Scalar>)
    /// Only for Float layers.
    case mapped(MappedFloats)
    /// Only for Float layers: `[outputs, inputs]` in blocks.
    case quantized(QuantizedMatrix)
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
func transposedScalars<Scalar>(_ a: UnsafeBufferPointer<Scalar>, rows: Int, columns: Int) -> [Scalar] {
    [Scalar](unsafeUninitializedCapacity: a.count) { t, count in
        guard let t = t.baseAddress else { return }
        for r0 in stride(from: 0, to: rows, by: 16) {
            for c0 in stride(from: 0, to: columns, by: 16) {
                for c in c0..<min(c0 + 16, columns) {
                    for r in r0..<min(r0 + 16, rows) { (t + c * rows + r).initialize(to: a[r * columns + c]) }
                }
            }
        }
        count = a.count
    }
}
