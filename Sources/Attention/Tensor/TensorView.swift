/// A read-only window onto the trailing dimensions of a tensor, fixed at some leading indices.
///
/// A view shares the tensor's storage (no elements are copied) and keeps it alive.
///
/// ```swift
/// let q = try Tensor<Float>.randomNormal(shape: [2, 8, 128, 64], seed: 1)
/// let head = try q.view(1, 3)          // shape [128, 64]: batch 1, head 3
/// head[0, 5] == q[1, 3, 0, 5]          // true
/// ```
public struct TensorView<Element: Sendable>: Sendable {
    /// The tensor the view looks into.
    public let base: Tensor<Element>
    /// The position of the view's first element in `base.scalars`.
    public let offset: Int
    /// The shape of the view: the trailing dimensions of `base` after the fixed leading indices.
    public let shape: [Int]

    /// The number of elements in the view.
    public var count: Int { Tensor<Element>.elementCount(of: shape) }

    /// Reads one element of the view.
    public subscript(indices: Int...) -> Element {
        precondition(indices.count == shape.count, "view of rank \(shape.count) indexed with \(indices.count) indices")
        var flat = 0
        for (index, extent) in zip(indices, shape) {
            precondition(index >= 0 && index < extent, "index \(index) out of range 0..<\(extent)")
            flat = flat * extent + index
        }
        return base.scalars[offset + flat]
    }

    /// Calls `body` with the view's elements, contiguous in row-major order.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try base.withUnsafeBufferPointer { all in
            try body(UnsafeBufferPointer(rebasing: all[offset..<offset + count]))
        }
    }

    /// Copies the view into a tensor of its own.
    public func copy() -> Tensor<Element> {
        Tensor(uncheckedShape: shape, scalars: Array(base.scalars[offset..<offset + count]))
    }
}

extension Tensor {
    /// A view of the sub-tensor at the given leading indices, without copying.
    ///
    /// - Throws: ``AttentionError/invalidArgument(argument:reason:)`` if there are more indices than
    ///   dimensions or an index is out of range.
    public func view(_ leading: Int...) throws -> TensorView<Element> {
        try view(at: leading)
    }

    /// A view of the sub-tensor at the given leading indices, without copying.
    public func view(at leading: [Int]) throws -> TensorView<Element> {
        guard leading.count <= rank else {
            throw AttentionError.invalidArgument(
                argument: "indices",
                reason: "\(leading.count) leading indices for a tensor of shape \(shape.shapeDescription)")
        }
        var offset = 0
        let strides = self.strides
        for (axis, index) in leading.enumerated() {
            guard index >= 0 && index < shape[axis] else {
                throw AttentionError.invalidArgument(
                    argument: "indices",
                    reason: "index \(index) on dimension \(axis) is outside 0..<\(shape[axis]) of shape \(shape.shapeDescription)")
            }
            offset += index * strides[axis]
        }
        return TensorView(base: self, offset: offset, shape: Array(shape.dropFirst(leading.count)))
    }
}
