import Foundation
import _AttentionKernels

/// Hand-written backward passes of the layers a small attention model needs. Each returns the
/// gradient of the loss with respect to the layer's input and parameters, given the gradient with
/// respect to its output (row-major, features last). Accumulation is in `Double`, except for the
/// matrix products of ``Linear`` in `Float`, which run on the tiled matrix kernel.

/// Gradients of ``Linear``.
public struct LinearGradients<Scalar: AttentionScalar>: Sendable {
    /// ∂L/∂input, shaped like the input.
    public let input: Tensor<Scalar>
    /// ∂L/∂W, `[outputDimension, inputDimension]`.
    public let weight: Tensor<Scalar>
    /// ∂L/∂b, `[outputDimension]`, if the layer has a bias.
    public let bias: Tensor<Scalar>?
}

extension Linear {
    /// Backward of `y = x·Wᵀ + b`: `dx = dy·W`, `dW = dyᵀ·x`, `db = Σ_rows dy`.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func backward(input: Tensor<Scalar>, outputGradient: Tensor<Scalar>) throws -> LinearGradients<Scalar> {
        let (n, m) = (inputDimension, outputDimension)
        guard input.shape.last == n, outputGradient.shape == Array(input.shape.dropLast()) + [m] else {
            throw AttentionError.shapeMismatch(argument: "outputGradient", shape: outputGradient.shape, other: "input",
                                               otherShape: input.shape, reason: "expected the input's shape with last dimension \(m)")
        }
        let rows = input.count / n
        if let kernels = Scalar._kernels {
            let (dx, dw, db) = kernels.linearBackward(input.scalars, outputGradient.scalars, weight.scalars, rows, n, m)
            return LinearGradients(input: Tensor(uncheckedShape: input.shape, scalars: dx),
                                   weight: Tensor(uncheckedShape: weight.shape, scalars: dw),
                                   bias: bias == nil ? nil : .converting(db, [m]))
        }
        let x = input.scalars.map(\.doubleValue), dy = outputGradient.scalars.map(\.doubleValue)
        let w = weight.scalars.map(\.doubleValue)
        var dx = [Double](repeating: 0, count: rows * n), dw = [Double](repeating: 0, count: m * n)
        var db = [Double](repeating: 0, count: m)
        for r in 0..<rows {
            for o in 0..<m {
                let g = dy[r * m + o]
                guard g != 0 else { continue }
                db[o] += g
                for c in 0..<n {
                    dx[r * n + c] += g * w[o * n + c]
                    dw[o * n + c] += g * x[r * n + c]
                }
            }
        }
        return LinearGradients(input: .converting(dx, input.shape), weight: .converting(dw, weight.shape),
                               bias: bias == nil ? nil : .converting(db, [m]))
    }
}

/// `dx = dy·W`, `dW = dyᵀ·x` as two products on the matrix kernel, `db` as column sums in `Double`.
/// `x [rows, n]`, `dy [rows, m]`, `w [m, n]`.
func floatLinearBackward(x: [Float], dy: [Float], w: [Float], rows: Int, n: Int, m: Int) -> (dx: [Float], dw: [Float], db: [Double]) {
    let dx = floatProduct(dy, w, m: rows, n: n, k: m)
    let dw = floatProduct(dy.withUnsafeBufferPointer { transposedScalars($0, rows: rows, columns: m) }, x, m: m, n: n, k: rows)
    var db = [Double](repeating: 0, count: m)
    for r in 0..<rows { for o in 0..<m { db[o] += Double(dy[r * m + o]) } }
    return (dx, dw, db)
}

/// `a [m, k] · b [k, n]`, both row-major, on the matrix kernel.
func floatProduct(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> [Float] {
    guard m > 0, n > 0, k > 0 else { return [Float](repeating: 0, count: m * n) }
    var packed = [Float](repeating: 0, count: (n + 31) / 32 * 32 * k)
    var c = [Float](repeating: 0, count: m * n)
    b.withUnsafeBufferPointer { b in
        packed.withUnsafeMutableBufferPointer { p in packRowMajorPanels(b.baseAddress!, k: k, n: n, into: p.baseAddress!) }
    }
    a.withUnsafeBufferPointer { a in
        packed.withUnsafeBufferPointer { p in
            c.withUnsafeMutableBufferPointer { c in
                multiplyMatrices(a.baseAddress!, packedB: p.baseAddress!, bias: nil, into: c.baseAddress!, m: m, n: n, k: k)
            }
        }
    }
    return c
}

/// The transpose of row-major `[rows, columns]`, in 16 × 16 blocks so that reads and writes both stay
/// within a few cache lines.
extension Tensor where Element == Float {
    /// A rank-2 tensor `[rows, columns]` transposed to `[columns, rows]` (for example a
    /// Conv1D weight `[in, out]` for ``Linear``'s `[out, in]`).
    ///
    /// - Throws: ``AttentionError/invalidShape(argument:shape:reason:)`` if the tensor is not rank 2.
    public func transposed() throws -> Tensor<Float> {
        guard rank == 2 else { throw AttentionError.invalidShape(argument: "tensor", shape: shape, reason: "transposing needs rank 2") }
        return Tensor(uncheckedShape: [shape[1], shape[0]], scalars: withUnsafeBufferPointer { transposedScalars($0, rows: shape[0], columns: shape[1]) })
    }
}

/// Gradients of ``LayerNorm``.
public struct LayerNormGradients<Scalar: AttentionScalar>: Sendable {
    public let input: Tensor<Scalar>
    public let weight: Tensor<Scalar>
    public let bias: Tensor<Scalar>
}

extension LayerNorm {
    /// Backward of `y = γ·x̂ + β`, `x̂ = (x - μ)/σ`: `dγ = Σ dy·x̂`, `dβ = Σ dy`, and
    /// `dx = (g - mean(g) - x̂·mean(g·x̂)) / σ` with `g = dy·γ`.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func backward(input: Tensor<Scalar>, outputGradient: Tensor<Scalar>) throws -> LayerNormGradients<Scalar> {
        let n = weight.count
        guard input.shape.last == n, outputGradient.shape == input.shape else {
            throw AttentionError.shapeMismatch(argument: "outputGradient", shape: outputGradient.shape, other: "input",
                                               otherShape: input.shape, reason: "expected the input's shape")
        }
        let x = input.scalars.map(\.doubleValue), dy = outputGradient.scalars.map(\.doubleValue)
        let gamma = weight.scalars.map(\.doubleValue)
        var dx = [Double](repeating: 0, count: x.count)
        var dGamma = [Double](repeating: 0, count: n), dBeta = [Double](repeating: 0, count: n)
        for row in 0..<(x.count / n) {
            let slice = x[(row * n)..<((row + 1) * n)]
            let mean = slice.reduce(0, +) / Double(n)
            let variance = slice.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
            let inverse = 1 / (variance + epsilon).squareRoot()
            var meanG = 0.0, meanGX = 0.0
            for c in 0..<n {
                let xhat = (x[row * n + c] - mean) * inverse, g = dy[row * n + c] * gamma[c]
                dGamma[c] += dy[row * n + c] * xhat
                dBeta[c] += dy[row * n + c]
                meanG += g / Double(n)
                meanGX += g * xhat / Double(n)
            }
            for c in 0..<n {
                let xhat = (x[row * n + c] - mean) * inverse, g = dy[row * n + c] * gamma[c]
                dx[row * n + c] = (g - meanG - xhat * meanGX) * inverse
            }
        }
        return LayerNormGradients(input: .converting(dx, input.shape), weight: .converting(dGamma, [n]), bias: .converting(dBeta, [n]))
    }
}

/// A lookup table of vectors, one per token id: `[vocabulary, dimension]`.
public struct Embedding<Scalar: AttentionScalar>: Sendable {
    public var table: Tensor<Scalar>

    public init(table: Tensor<Scalar>) throws {
        guard table.rank == 2, !table.shape.contains(0) else {
            throw AttentionError.invalidShape(argument: "table", shape: table.shape, reason: "expected [vocabulary, dimension]")
        }
        self.table = table
    }

    /// A table drawn from N(0, 1), seeded.
    public init(vocabulary: Int, dimension: Int, seed: UInt64) throws {
        try self.init(table: .randomNormal(shape: [vocabulary, dimension], seed: seed))
    }

    /// The rows of `ids`: `[ids.count, dimension]`.
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func callAsFunction(_ ids: [Int]) throws -> Tensor<Scalar> {
        let (v, d) = (table.shape[0], table.shape[1])
        if let bad = ids.first(where: { $0 < 0 || $0 >= v }) {
            throw AttentionError.invalidArgument(argument: "ids", reason: "id \(bad) is outside the vocabulary of \(v)")
        }
        let scalars = [Scalar](unsafeUninitializedCapacity: ids.count * d) { out, count in
            table.withUnsafeBufferPointer { rows in
                for (i, id) in ids.enumerated() {
                    (out.baseAddress! + i * d).initialize(from: rows.baseAddress! + id * d, count: d)
                }
            }
            count = ids.count * d
        }
        return Tensor(uncheckedShape: [ids.count, d], scalars: scalars)
    }

    /// ∂L/∂table: each row of `outputGradient` added to the row of its id (repeated ids accumulate).
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public func backward(ids: [Int], outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        let (v, d) = (table.shape[0], table.shape[1])
        guard outputGradient.shape == [ids.count, d] else {
            throw AttentionError.invalidShape(argument: "outputGradient", shape: outputGradient.shape, reason: "expected [\(ids.count), \(d)]")
        }
        if let bad = ids.first(where: { $0 < 0 || $0 >= v }) {
            throw AttentionError.invalidArgument(argument: "ids", reason: "id \(bad) is outside the vocabulary of \(v)")
        }
        var gradient = [Double](repeating: 0, count: table.count)
        outputGradient.withUnsafeBufferPointer { dy in
            for (row, id) in ids.enumerated() {
                for c in 0..<d { gradient[id * d + c] += dy[row * d + c].doubleValue }
            }
        }
        return .converting(gradient, table.shape)
    }
}

/// Mean cross-entropy of `logits [N, C]` against target classes, and its gradient
/// `(softmax(logits) - onehot(target)) / N`. Computed stably (log-sum-exp with the maximum shifted out).
@_specialize(exported: true, where Scalar == Float)
@_specialize(exported: true, where Scalar == Double)
public func crossEntropy<Scalar: AttentionScalar>(logits: Tensor<Scalar>, targets: [Int]) throws -> (loss: Double, gradient: Tensor<Scalar>) {
    guard logits.rank == 2, logits.shape[0] == targets.count, logits.shape[0] > 0, logits.shape[1] > 0 else {
        throw AttentionError.invalidShape(argument: "logits", shape: logits.shape, reason: "expected [\(targets.count), classes] with classes > 0")
    }
    let (n, c) = (logits.shape[0], logits.shape[1])
    if let bad = targets.first(where: { $0 < 0 || $0 >= c }) {
        throw AttentionError.invalidArgument(argument: "targets", reason: "class \(bad) is outside 0..<\(c)")
    }
    var loss = 0.0
    var gradient = [Scalar](repeating: 0, count: n * c)
    logits.withUnsafeBufferPointer { z in
        gradient.withUnsafeMutableBufferPointer { g in
            for row in 0..<n {
                let base = row * c
                var m = -Double.infinity
                for k in 0..<c { m = max(m, z[base + k].doubleValue) }
                // e^(z - m) once per class, kept in the gradient, then normalized.
                var sum = 0.0
                for k in 0..<c {
                    let e = exp(z[base + k].doubleValue - m)
                    g[base + k] = Scalar(fromDouble: e)
                    sum += e
                }
                let lse = m + log(sum), scale = 1 / (sum * Double(n))
                loss += (lse - z[base + targets[row]].doubleValue) / Double(n)
                for k in 0..<c { g[base + k] = Scalar(fromDouble: g[base + k].doubleValue * scale) }
                g[base + targets[row]] = Scalar(fromDouble: g[base + targets[row]].doubleValue - 1 / Double(n))
            }
        }
    }
    return (loss, Tensor(uncheckedShape: logits.shape, scalars: gradient))
}

/// Adam with decoupled weight decay (AdamW when `weightDecay > 0`), as PyTorch's `torch.optim.AdamW`:
/// `p ← p - lr·λ·p`, then `m ← β₁m + (1-β₁)g`, `v ← β₂v + (1-β₂)g²`,
/// `p ← p - lr · m̂ / (√v̂ + ε)` with the bias-corrected `m̂ = m/(1-β₁ᵗ)`, `v̂ = v/(1-β₂ᵗ)`.
public struct Adam<Scalar: AttentionScalar>: Sendable {
    public var learningRate: Double
    public var beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double
    public private(set) var step = 0
    private var m: [[Double]] = [], v: [[Double]] = []

    public init(learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// Updates `parameters` in place from `gradients` (the same shapes, in the same order every step).
    @_specialize(exported: true, where Scalar == Float)
    @_specialize(exported: true, where Scalar == Double)
    public mutating func update(_ parameters: inout [Tensor<Scalar>], gradients: [Tensor<Scalar>]) throws {
        guard parameters.count == gradients.count, zip(parameters, gradients).allSatisfy({ $0.shape == $1.shape }) else {
            throw AttentionError.invalidArgument(argument: "gradients", reason: "need one gradient of each parameter's shape, in order")
        }
        if m.isEmpty {
            m = parameters.map { [Double](repeating: 0, count: $0.count) }
            v = m
        }
        guard m.count == parameters.count, zip(m, parameters).allSatisfy({ $0.count == $1.count }) else {
            throw AttentionError.invalidArgument(argument: "parameters", reason: "the parameters changed shape between steps")
        }
        step += 1
        let c1 = 1 - pow(beta1, Double(step)), c2 = 1 - pow(beta2, Double(step))
        let (rate, decay) = (learningRate, learningRate * weightDecay)
        for p in parameters.indices {
            gradients[p].withUnsafeBufferPointer { g in
                parameters[p].withUnsafeMutableBufferPointer { values in
                    m[p].withUnsafeMutableBufferPointer { m in
                        v[p].withUnsafeMutableBufferPointer { v in
                            for i in 0..<values.count {
                                let gi = g[i].doubleValue
                                var value = values[i].doubleValue
                                value -= decay * value
                                m[i] = beta1 * m[i] + (1 - beta1) * gi
                                v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
                                value -= rate * (m[i] / c1) / ((v[i] / c2).squareRoot() + epsilon)
                                values[i] = Scalar(fromDouble: value)
                            }
                        }
                    }
                }
            }
        }
    }
}

extension Tensor where Element: AttentionScalar {
    /// A tensor from `Double` values of a validated shape.
    static func converting(_ values: [Double], _ shape: [Int]) -> Tensor {
        Tensor(uncheckedShape: shape, scalars: values.map { Element(fromDouble: $0) })
    }
}
