/// Building tensors from nested Swift arrays, and reading them back.
///
/// Limited to the element types tensors hold in practice (``TensorElement``: `Float`, `Double`,
/// `Bool`) so that a nested array literal always means a higher rank, never a vector of arrays.
extension Tensor where Element: TensorElement {
    /// A rank-1 tensor from an array.
    public init(_ vector: [Element]) {
        self.init(uncheckedShape: [vector.count], scalars: vector)
    }

    /// A rank-2 tensor from rows of equal length.
    ///
    /// - Throws: ``AttentionError/invalidShape(argument:shape:reason:)`` naming `argument` if the
    ///   rows are ragged.
    public init(_ matrix: [[Element]], argument: String = "matrix") throws {
        let columns = matrix.first?.count ?? 0
        if let ragged = matrix.firstIndex(where: { $0.count != columns }) {
            throw AttentionError.invalidShape(
                argument: argument, shape: [matrix.count, columns],
                reason: "row \(ragged) has \(matrix[ragged].count) elements, row 0 has \(columns)")
        }
        self.init(uncheckedShape: [matrix.count, columns], scalars: matrix.flatMap { $0 })
    }

    /// A rank-3 tensor from nested arrays of equal lengths.
    public init(_ cube: [[[Element]]]) throws {
        let slices = try cube.map { try Tensor($0) }
        try self.init(stacking: slices, argument: "cube")
    }

    /// A rank-4 tensor from nested arrays of equal lengths.
    public init(_ hypercube: [[[[Element]]]]) throws {
        let slices = try hypercube.map { try Tensor($0) }
        try self.init(stacking: slices, argument: "hypercube")
    }

    /// Stacks tensors of one shape along a new leading dimension.
    public init(stacking tensors: [Tensor], argument: String = "tensors") throws {
        let inner = tensors.first?.shape ?? []
        if let odd = tensors.firstIndex(where: { $0.shape != inner }) {
            throw AttentionError.invalidShape(
                argument: argument, shape: tensors[odd].shape,
                reason: "element \(odd) has shape \(tensors[odd].shape.shapeDescription), element 0 has \(inner.shapeDescription)")
        }
        self.init(uncheckedShape: [tensors.count] + inner, scalars: tensors.flatMap { $0.scalars })
    }

    /// The rows of a rank-2 tensor as nested arrays.
    public var rows: [[Element]] {
        guard rank == 2 else { return [scalars] }
        let columns = shape[1]
        return (0..<shape[0]).map { Array(scalars[$0 * columns..<($0 + 1) * columns]) }
    }
}

/// The element types of tensors built from nested arrays: `Float`, `Double` and `Bool`.
public protocol TensorElement: Sendable {}
extension Float: TensorElement {}
extension Double: TensorElement {}
extension Bool: TensorElement {}
