#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small N-dimensional array in row-major (C) order with contiguous storage.
///
/// `Tensor` is a value type: copies share storage until one of them is written (copy on write).
/// Shapes follow the PyTorch convention used throughout the library, for example
/// `[batch, heads, sequence, headDimension]` for attention inputs. A rank-0 tensor (`shape == []`)
/// holds one element.
///
/// ```swift
/// let keys = try Tensor<Double>([[0.1, 0.2], [0.2, 0.3]])   // shape [2, 2]
/// keys[1, 0]                                                 // 0.2
/// ```
public struct Tensor<Element: Sendable>: Sendable {
    /// The extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.reduce(1, *)`.
    public private(set) var scalars: [Element]

    /// Creates a tensor from a shape and its elements in row-major order.
    ///
    /// - Throws: ``AttentionError/invalidShape(argument:shape:reason:)`` if a dimension is negative
    ///   or the element count does not match the shape.
    public init(shape: [Int], scalars: [Element]) throws {
        try Tensor.validate(shape: shape, argument: "shape")
        let count = Tensor.elementCount(of: shape)
        guard scalars.count == count else {
            throw AttentionError.invalidShape(
                argument: "scalars", shape: shape,
                reason: "the shape holds \(count) elements but \(scalars.count) were given")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// Creates a tensor of the given shape with every element equal to `value`.
    ///
    /// - Throws: ``AttentionError/invalidShape(argument:shape:reason:)`` if a dimension is negative or
    ///   the elements would take more bytes than this machine's memory.
    public init(repeating value: Element, shape: [Int]) throws {
        let count = try Tensor.allocationCount(of: shape, argument: "shape")
        self.shape = shape
        self.scalars = Array(repeating: value, count: count)
    }

    /// For shapes the package has already validated (its other modules too).
    package init(uncheckedShape shape: [Int], scalars: [Element]) {
        self.shape = shape
        self.scalars = scalars
    }

    /// The number of dimensions.
    public var rank: Int { shape.count }

    /// The total number of elements.
    public var count: Int { scalars.count }

    /// The distance in elements between neighbours along each dimension.
    public var strides: [Int] { Tensor.rowMajorStrides(of: shape) }

    /// Reads or writes one element. Every index must be inside its dimension (as with `Array`).
    public subscript(indices: Int...) -> Element {
        get { scalars[flatIndex(indices)] }
        set { scalars[flatIndex(indices)] = newValue }
    }

    /// The same elements under a new shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        try Tensor.validate(shape: newShape, argument: "shape")
        guard Tensor.elementCount(of: newShape) == count else {
            throw AttentionError.invalidShape(
                argument: "shape", shape: newShape,
                reason: "cannot reshape \(shape.shapeDescription) (\(count) elements) to it")
        }
        return Tensor(uncheckedShape: newShape, scalars: scalars)
    }

    /// Applies `transform` to every element.
    public func map<Result: Sendable>(_ transform: (Element) throws -> Result) rethrows -> Tensor<Result> {
        Tensor<Result>(uncheckedShape: shape, scalars: try scalars.map(transform))
    }

    /// Calls `body` with the contiguous storage.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    /// Calls `body` with the contiguous storage, mutable.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Element>) throws -> R
    ) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }

    private func flatIndex(_ indices: [Int]) -> Int {
        precondition(indices.count == shape.count,
                     "Tensor of rank \(shape.count) indexed with \(indices.count) indices")
        var flat = 0
        for (index, extent) in zip(indices, shape) {
            precondition(index >= 0 && index < extent, "index \(index) out of range 0..<\(extent)")
            flat = flat * extent + index
        }
        return flat
    }

    static func validate(shape: [Int], argument: String) throws {
        if shape.contains(where: { $0 < 0 }) {
            throw AttentionError.invalidShape(argument: argument, shape: shape,
                                              reason: "dimensions must not be negative")
        }
        guard elementCount(reportingOverflow: shape).overflow == false else {
            throw AttentionError.invalidShape(argument: argument, shape: shape,
                                              reason: "the element count overflows Int")
        }
    }

    /// The element count of a shape about to be allocated: a valid shape whose bytes fit this
    /// machine's memory. A shape made from a caller's integers (`[Int.max, 1]`, `[1 << 40]`) is refused
    /// here with a typed error rather than by the allocator, which would stop the process.
    static func allocationCount(of shape: [Int], argument: String) throws -> Int {
        try validate(shape: shape, argument: argument)
        let count = elementCount(of: shape)
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        let memory = physicalMemoryBytes
        guard !overflow, bytes <= memory else {
            throw AttentionError.invalidShape(
                argument: argument, shape: shape,
                reason: "\(count) elements of \(MemoryLayout<Element>.stride) bytes need more than this machine's \(memory) bytes of memory")
        }
        return count
    }

    /// The product of non-negative extents and whether it overflows Int; a zero extent makes it 0
    /// (no overflow), however large the others.
    static func elementCount(reportingOverflow extents: [Int]) -> (count: Int, overflow: Bool) {
        if extents.contains(0) { return (0, false) }
        var product = 1, overflow = false
        for extent in extents {
            let (next, overflows) = product.multipliedReportingOverflow(by: extent)
            (product, overflow) = (next, overflow || overflows)
        }
        return (product, overflow)
    }

    /// The elements of a shape that passed ``validate(shape:argument:)``: 0 when an extent is 0, even if
    /// the product of the others would overflow.
    static func elementCount(of shape: [Int]) -> Int {
        shape.contains(0) ? 0 : shape.reduce(1, *)
    }

    static func rowMajorStrides(of shape: [Int]) -> [Int] {
        var strides = Array(repeating: 1, count: shape.count)
        var stride = 1
        for axis in shape.indices.reversed() {
            strides[axis] = stride
            // Wrapping: a valid shape's strides never overflow, except those of a tensor with no
            // elements ([0, 2^40, 2^40]), which index nothing.
            stride &*= shape[axis]
        }
        return strides
    }
}

extension Tensor: Equatable where Element: Equatable {}

/// This machine's memory in bytes (`Int.max` where it cannot be read): no single allocation can exceed it.
let physicalMemoryBytes: Int = {
    let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
    guard pages > 0, pageSize > 0 else { return .max }
    return pages.saturatingMultiplied(by: pageSize)
}()

extension Tensor where Element: Numeric {
    /// A tensor of zeros.
    public init(zeros shape: [Int]) throws {
        try self.init(repeating: 0, shape: shape)
    }
}

extension Tensor: CustomStringConvertible {
    /// The element type, the shape and the first elements.
    public var description: String {
        let shown = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        let more = count > 8 ? ", … (\(count) elements)" : ""
        return "Tensor<\(Element.self)>\(shape.shapeDescription) [\(shown)\(more)]"
    }
}

extension Array where Element == Int {
    /// `[2, 3, 4]` for messages.
    var shapeDescription: String { "[" + map(String.init).joined(separator: ", ") + "]" }
}

extension Tensor where Element: AttentionScalar {
    /// A tensor from `Double` values of a validated shape.
    static func converting(_ values: [Double], _ shape: [Int]) -> Tensor {
        Tensor(uncheckedShape: shape, scalars: values.map { Element(fromDouble: $0) })
    }
}
