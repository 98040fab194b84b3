import Foundation

/// A lookup table of vectors, one per token id: `[vocabulary, dimension]`.
public struct Embedding<Scalar: AttentionScalar>: Sendable {
    /// `[vocabulary, dimension]`: row `i` is token `i`'s vector.
    public var table: Tensor<Scalar>

    /// A layer that looks rows of `table` up.
    /// - Throws: ``AttentionError/invalidShape(argument:shape:reason:)`` unless `table` is 2-D.
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
