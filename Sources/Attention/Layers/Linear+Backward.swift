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
    public func backward(
        input: Tensor<Scalar>, outputGradient: Tensor<Scalar>, options: AttentionOptions = AttentionOptions()
    ) throws -> LinearGradients<Scalar> {
        let execution = try options.execution(tiledComputes: Scalar._kernels != nil, scalar: Scalar.self)
        let (n, m) = (inputDimension, outputDimension)
        guard input.shape.last == n, outputGradient.shape == Array(input.shape.dropLast()) + [m] else {
            throw AttentionError.shapeMismatch(argument: "outputGradient", shape: outputGradient.shape, other: "input",
                                               otherShape: input.shape, reason: "expected the input's shape with last dimension \(m)")
        }
        let rows = input.count / n
        if let kernels = Scalar._kernels, let isa = execution.instructionSet {
            let (dx, dw, db) = kernels.linearBackward(input.scalars, outputGradient.scalars, weight.scalars, rows, n, m, isa, execution.threads)
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
func floatLinearBackward(
    x: [Float], dy: [Float], w: [Float], rows: Int, n: Int, m: Int, isa: KernelInstructionSet, threads: Int
) -> (dx: [Float], dw: [Float], db: [Double]) {
    let dx = floatProduct(dy, w, m: rows, n: n, k: m, isa: isa, threads: threads)
    let dw = floatProduct(dy.withUnsafeBufferPointer { transposedScalars($0, rows: rows, columns: m) }, x, m: m, n: n, k: rows,
                          isa: isa, threads: threads)
    var db = [Double](repeating: 0, count: m)
    for r in 0..<rows { for o in 0..<m { db[o] += Double(dy[r * m + o]) } }
    return (dx, dw, db)
}

/// `a [m, k] · b [k, n]`, both row-major, on the matrix kernel.
func floatProduct(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, isa: KernelInstructionSet, threads: Int) -> [Float] {
    guard m > 0, n > 0, k > 0 else { return [Float](repeating: 0, count: m * n) }
    var packed = [Float](repeating: 0, count: (n + 31) / 32 * 32 * k)
    var c = [Float](repeating: 0, count: m * n)
    b.withUnsafeBufferPointer { b in
        packed.withUnsafeMutableBufferPointer { p in packRowMajorPanels(b.baseAddress!, k: k, n: n, into: p.baseAddress!) }
    }
    a.withUnsafeBufferPointer { a in
        packed.withUnsafeBufferPointer { p in
            c.withUnsafeMutableBufferPointer { c in
                multiplyMatrices(a.baseAddress!, packedB: p.baseAddress!, bias: nil, into: c.baseAddress!, m: m, n: n, k: k,
                                 threads: threads, isa: isa)
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
