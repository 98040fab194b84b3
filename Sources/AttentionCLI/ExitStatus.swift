import ArgumentParser
import Attention
import AttentionDistributed
import AttentionServer
import Foundation

/// The exit statuses of `attention`, after sysexits(3): a script can tell a wrong flag from a bad
/// file from a folder it cannot write. Listed in `attention --help`.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    /// It worked.
    case success = 0
    /// Something failed that none of the others names (a computation that could not finish).
    case failure = 1
    /// A flag, argument or their values are wrong (also misspelled subcommands and options).
    case usage = 64
    /// An input file exists but its contents are not what the command needs.
    case dataError = 65
    /// An input file or folder does not exist or cannot be read.
    case noInput = 66
    /// A resource the command needs is missing (the explorer's page files, a free port, MPI).
    case unavailable = 69
    /// An output file cannot be created (its folder is missing or read-only, or it is a folder).
    case cannotCreate = 73
    /// Reading or writing failed midway.
    case ioError = 74

    /// What `--help` says of the status.
    var meaning: String {
        switch self {
        case .success: "success"
        case .failure: "failure"
        case .usage: "usage error: a flag or value (the message names it)"
        case .dataError: "an input file's contents do not fit"
        case .noInput: "an input file or folder is missing or unreadable"
        case .unavailable: "a needed resource is missing (a free port, the explorer's files, MPI)"
        case .cannotCreate: "an output file cannot be created"
        case .ioError: "reading or writing failed midway"
        }
    }

    /// The lines of `attention --help` that list the statuses (sysexits' numbers).
    static var helpText: String {
        "Exit status:\n" + allCases.map { "  \(String($0.rawValue).leftPadded(to: 2))  \($0.meaning)" }.joined(separator: "\n")
    }
}

/// An error the command line reports as it is: `message` names the flag, file or value as the user
/// typed it, what was expected and what to do; `status` is the exit status.
public struct CommandError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The whole message, without the "Error: " prefix.
    public let message: String
    /// The exit status it ends the process with.
    public let status: ExitStatus

    /// An error that exits with `status`.
    public init(_ message: String, status: ExitStatus) {
        self.message = message
        self.status = status
    }

    /// The message.
    public var description: String { message }
}

/// Paths the user gives, checked before any work starts so that the message names the flag.
enum UserPath {
    /// `path`, given to `flag`, must be a readable file.
    static func input(_ path: String, flag: String) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw CommandError("\(flag) \(path): no such file", status: .noInput)
        }
        guard !isFolder.boolValue else { throw CommandError("\(flag) \(path): is a folder; give a file", status: .noInput) }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw CommandError("\(flag) \(path): cannot be read (permissions)", status: .noInput)
        }
    }

    /// `path`, given to `flag`, must name a file that can be created or replaced: not a folder, in a
    /// folder that exists and can be written.
    static func output(_ path: String, flag: String) throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw CommandError("\(flag) \(path): is a folder; give a file name (for example \(path)/out\(Self.suffix(flag)))", status: .cannotCreate)
        }
        let folder = (URL(fileURLWithPath: path).deletingLastPathComponent().path as NSString).standardizingPath
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw CommandError("\(flag) \(path): the folder \(folder) does not exist; create it first", status: .cannotCreate)
        }
        guard FileManager.default.isWritableFile(atPath: folder) else {
            throw CommandError("\(flag) \(path): the folder \(folder) cannot be written", status: .cannotCreate)
        }
    }

    private static func suffix(_ flag: String) -> String {
        switch flag {
        case "--svg": ".svg"
        case "--csv": ".csv"
        default: ".npy"
        }
    }
}

extension AttentionCommand {
    /// The exit status for an error a command threw: ``ExitStatus`` by kind (a usage error for a
    /// flag named by the library, bad data for a file that exists, no input for one that does not),
    /// ArgumentParser's own for its parse errors (64) and for help and version (0).
    public static func exitStatus(for error: any Error) -> Int32 {
        switch error {
        case let error as CommandError:
            return error.status.rawValue
        case let error as AttentionError:
            switch error {
            case .invalidArgument(let argument, _) where argument.hasPrefix("--"):
                return ExitStatus.usage.rawValue
            case .invalidFile(let path, _):
                return (FileManager.default.fileExists(atPath: path) ? ExitStatus.dataError : ExitStatus.noInput).rawValue
            default:
                return ExitStatus.dataError.rawValue
            }
        case is ExplorerPageError, DistributedError.mpiUnavailable:
            return ExitStatus.unavailable.rawValue
        case DistributedError.ranksDisagree:
            return ExitStatus.dataError.rawValue
        case DistributedError.peersFailed(_, let code):
            return Int32(clamping: code)
        case let error as CocoaError where error.isFileError:
            return ExitStatus.ioError.rawValue
        default:
            return exitCode(for: error).rawValue
        }
    }
}

extension AttentionCommand {
    /// The message for a word where a subcommand belongs that is none of them, naming the nearest
    /// (`attention atend` → `attend`); nil when the arguments name subcommands only.
    /// ArgumentParser suggests the nearest option for a misspelled flag itself.
    public static func unknownSubcommandMessage(_ arguments: [String]) -> String? {
        var command: any ParsableCommand.Type = AttentionCommand.self
        var path = ["attention"]
        for argument in arguments {
            let subcommands = command.configuration.subcommands
            guard !subcommands.isEmpty, !argument.hasPrefix("-"), argument != "help" else { return nil }
            if let next = subcommands.first(where: { $0._commandName == argument }) {
                command = next
                path.append(argument)
                continue
            }
            let names = subcommands.map { $0._commandName }
            let scored = names.map { (name: $0, distance: editDistance($0, argument)) }
            let nearest = scored.min { $0.distance < $1.distance }
            let prefix = names.filter { $0.hasPrefix(argument) }
            let what = "'\(argument)' is not a subcommand of \(path.joined(separator: " "))"
            if prefix.count == 1 {
                return "\(what). Did you mean '\(prefix[0])'?"
            }
            if let nearest, nearest.distance <= max(2, argument.count / 3) {
                return "\(what). Did you mean '\(nearest.name)'?"
            }
            return "\(what); its subcommands are \(names.joined(separator: ", "))"
        }
        return nil
    }

    /// Levenshtein distance: insertions, deletions and substitutions.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
}

extension AttentionError {
    /// The same error with the library's argument names replaced by what the user typed
    /// (`keyLengths` → `--key-lengths`, `key` → `--key k.npy`), for commands that pass flags on.
    func naming(_ names: [String: String]) -> AttentionError {
        func name(_ argument: String) -> String { names[argument] ?? argument }
        switch self {
        case let .invalidShape(argument, shape, reason):
            return .invalidShape(argument: name(argument), shape: shape, reason: reason)
        case let .shapeMismatch(argument, shape, other, otherShape, reason):
            return .shapeMismatch(argument: name(argument), shape: shape, other: name(other), otherShape: otherShape, reason: reason)
        case let .emptySequence(argument, shape):
            return .emptySequence(argument: name(argument), shape: shape)
        case let .nonFinite(argument, index, value):
            return .nonFinite(argument: name(argument), index: index, value: value)
        case let .invalidArgument(argument, reason):
            return .invalidArgument(argument: name(argument), reason: reason)
        case .headCountMismatch, .invalidFile:
            return self
        }
    }
}
