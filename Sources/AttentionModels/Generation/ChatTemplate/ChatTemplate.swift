import Attention
import Foundation

/// A model's chat template (`tokenizer.chat_template` in a GGUF file, `chat_template` in
/// transformers' tokenizer config): Jinja text that turns a conversation into the prompt the model
/// was trained on. Rendered as transformers' `apply_chat_template` renders it, for the subset of
/// Jinja that chat templates use:
///
/// - text, `{{ expression }}`, `{% if %}` / `{% elif %}` / `{% else %}` / `{% endif %}`,
///   `{% for x in list %}` / `{% endfor %}` (with `loop.index`, `loop.index0`, `loop.first`,
///   `loop.last`, `loop.length`), `{% set name = expression %}`, `{# comments #}`, and `-` to trim
///   whitespace beside a tag; like transformers, a block tag's first newline after it is removed and
///   the spaces before it on its line are stripped (`trim_blocks`, `lstrip_blocks`);
/// - expressions: string, integer and `true`/`false`/`none` literals, names, `a.b` and `a['b']`,
///   `list[0]` and `list[-1]`, `+` (strings are joined), `==`, `!=`, `and`, `or`, `not`,
///   `is defined` / `is not defined`, `in`, parentheses, `|trim`, `|length`, `|upper`, `|lower`.
///
/// Anything else (macros, other filters, arithmetic beyond `+`) is refused when the template is
/// parsed, with an error that names the construct and where it is.
public struct ChatTemplate: Sendable {
    /// One turn of a conversation.
    public struct Message: Sendable, Equatable, Codable {
        /// `system`, `user` or `assistant`.
        public var role: String
        /// The turn's text.
        public var content: String

        /// A message.
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    /// The template's text.
    public let source: String
    private let nodes: [Node]

    /// Parses `source`.
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` naming the construct that is not
    ///   understood and its offset in the text.
    public init(_ source: String) throws {
        self.source = source
        var parser = Parser(tokens: try Lexer.tokens(of: source))
        nodes = try parser.nodes(until: [])
    }

    /// The prompt for `messages`; with `addGenerationPrompt` it ends with the assistant's header, so
    /// that the model continues as the assistant. `variables` adds other names the template reads
    /// (`bos_token`, ...).
    /// - Throws: `AttentionError.invalidArgument(argument:reason:)` for an expression that cannot be
    ///   evaluated on these values (an index out of range, `+` of a string and a list, ...).
    public func render(_ messages: [Message], addGenerationPrompt: Bool, variables: [String: String] = [:]) throws -> String {
        var scope: [String: Value] = variables.mapValues(Value.string)
        scope["messages"] = .list(messages.map { .dictionary(["role": .string($0.role), "content": .string($0.content)]) })
        scope["add_generation_prompt"] = .bool(addGenerationPrompt)
        var out = ""
        try Self.render(nodes, scope: &scope, into: &out)
        return out
    }

    // MARK: values

    indirect enum Value: Equatable, Sendable {
        case string(String), integer(Int), bool(Bool), list([Value]), dictionary([String: Value]), none, undefined

        var truthy: Bool {
            switch self {
            case .string(let s): !s.isEmpty
            case .integer(let n): n != 0
            case .bool(let b): b
            case .list(let l): !l.isEmpty
            case .dictionary(let d): !d.isEmpty
            case .none, .undefined: false
            }
        }

        var text: String {
            switch self {
            case .string(let s): s
            case .integer(let n): String(n)
            case .bool(let b): b ? "True" : "False"
            case .none: "None"
            case .undefined: ""
            case .list(let l): "[" + l.map(\.text).joined(separator: ", ") + "]"
            case .dictionary: "{...}"
            }
        }
    }

    static func fail(_ reason: String) -> AttentionError { .invalidArgument(argument: "chat template", reason: reason) }
}
