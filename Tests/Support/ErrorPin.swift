import Attention
import Foundation

/// What an error says, less its prose: the ``AttentionError`` case and the argument (or file) it
/// names. Error tests compare pins, so a call refused for another reason than the one under test
/// (another argument, another check) fails the test instead of passing it.
public enum ErrorPin: Equatable, Sendable, CustomStringConvertible {
    case invalidShape(String)
    case shapeMismatch(String)
    case emptySequence(String)
    case headCountMismatch
    case nonFinite(String)
    case invalidArgument(String)
    /// The file's last path component.
    case invalidFile(String)
    /// Not an `AttentionError`: its type and description.
    case other(String)

    public init(_ error: any Error) {
        guard let error = error as? AttentionError else {
            self = .other("\(type(of: error)): \(error)")
            return
        }
        switch error {
        case let .invalidShape(argument, _, _): self = .invalidShape(argument)
        case let .shapeMismatch(argument, _, _, _, _): self = .shapeMismatch(argument)
        case let .emptySequence(argument, _): self = .emptySequence(argument)
        case .headCountMismatch: self = .headCountMismatch
        case let .nonFinite(argument, _, _): self = .nonFinite(argument)
        case let .invalidArgument(argument, _): self = .invalidArgument(argument)
        case let .invalidFile(path, _): self = .invalidFile(URL(fileURLWithPath: path).lastPathComponent)
        }
    }

    public var description: String {
        switch self {
        case let .invalidShape(a): ".invalidShape(\"\(a)\")"
        case let .shapeMismatch(a): ".shapeMismatch(\"\(a)\")"
        case let .emptySequence(a): ".emptySequence(\"\(a)\")"
        case .headCountMismatch: ".headCountMismatch"
        case let .nonFinite(a): ".nonFinite(\"\(a)\")"
        case let .invalidArgument(a): ".invalidArgument(\"\(a)\")"
        case let .invalidFile(a): ".invalidFile(\"\(a)\")"
        case let .other(a): ".other(\"\(a)\")"
        }
    }
}

/// The pin of the error `body` throws, or nil if it returns.
///
///     #expect(thrownError { try model.logits([]) } == .invalidArgument("ids"))
public func thrownError<R>(_ body: () throws -> R) -> ErrorPin? {
    do {
        _ = try body()
        return nil
    } catch {
        return ErrorPin(error)
    }
}
