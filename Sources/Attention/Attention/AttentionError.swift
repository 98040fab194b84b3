import Foundation

/// Everything that can go wrong with input the caller provides.
///
/// Each case names the argument at fault and, where shapes are involved, the shapes, so that the
/// message alone says what to fix. The library never traps on such input.
public enum AttentionError: Error, Equatable, Sendable {
    /// A tensor has a shape the operation does not accept.
    case invalidShape(argument: String, shape: [Int], reason: String)
    /// Two tensors that must agree on some dimension do not.
    case shapeMismatch(argument: String, shape: [Int], other: String, otherShape: [Int], reason: String)
    /// A sequence (or batch, or feature dimension) that must hold at least one element is empty.
    case emptySequence(argument: String, shape: [Int])
    /// The query head count is not a multiple of the key/value head count.
    case headCountMismatch(queryHeads: Int, keyValueHeads: Int)
    /// An input holds NaN or an infinity where a finite value is required.
    case nonFinite(argument: String, index: [Int], value: Double)
    /// A scalar or list argument is out of its domain.
    case invalidArgument(argument: String, reason: String)
    /// A file could not be read or written, or its contents are not what was expected.
    case invalidFile(path: String, reason: String)
}

extension AttentionError: CustomStringConvertible {
    /// The message: what is wrong, naming the argument and the shapes.
    public var description: String {
        switch self {
        case let .invalidShape(argument, shape, reason):
            return "\(argument) has shape \(shape.shapeDescription): \(reason)"
        case let .shapeMismatch(argument, shape, other, otherShape, reason):
            return "\(argument) with shape \(shape.shapeDescription) does not fit \(other) with shape \(otherShape.shapeDescription): \(reason)"
        case let .emptySequence(argument, shape):
            return "\(argument) has shape \(shape.shapeDescription): attention needs at least one element in every dimension"
        case let .headCountMismatch(queryHeads, keyValueHeads):
            return "query has \(queryHeads) heads and key/value have \(keyValueHeads): the query head count must be a multiple of the key/value head count"
        case let .nonFinite(argument, index, value):
            return "\(argument) holds the non-finite value \(value) at index \(index.shapeDescription)"
        case let .invalidArgument(argument, reason):
            return "\(argument): \(reason)"
        case let .invalidFile(path, reason):
            return "\(path): \(reason)"
        }
    }
}

extension AttentionError: LocalizedError {
    /// ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
