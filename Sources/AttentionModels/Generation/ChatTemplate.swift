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
    public struct Message: Sendable, Equatable {
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

    // MARK: lexing

    enum Token: Equatable {
        case text(String)
        case output([Word], at: Int)       // {{ ... }}
        case statement([Word], at: Int)    // {% ... %}
    }

    /// A word of an expression or statement.
    enum Word: Equatable {
        case name(String), string(String), integer(Int), symbol(String)
    }

    enum Lexer {
        static func tokens(of source: String) throws -> [Token] {
            let s = Array(source.unicodeScalars)
            var tokens: [Token] = []
            var text = "", i = 0
            var trimNextLeading = false
            /// Ends the pending text before the tag at `tagStart`: all trailing whitespace goes for `{%-`;
            /// with `lstrip` the spaces and tabs between the line's start and the tag (lstrip_blocks).
            func flushText(before tagStart: Int, trimTrailing: Bool, lstrip: Bool) {
                if trimTrailing {
                    while let last = text.unicodeScalars.last, last.properties.isWhitespace { text.unicodeScalars.removeLast() }
                } else if lstrip {
                    var k = tagStart - 1, blanks = 0
                    while k >= 0, s[k] == " " || s[k] == "\t" { k -= 1; blanks += 1 }
                    if k < 0 || s[k] == "\n" {
                        for _ in 0..<blanks where text.unicodeScalars.last == " " || text.unicodeScalars.last == "\t" {
                            text.unicodeScalars.removeLast()
                        }
                    }
                }
                if !text.isEmpty { tokens.append(.text(text)) }
                text = ""
            }
            while i < s.count {
                if s[i] == "{", i + 1 < s.count, ["{", "%", "#"].contains(s[i + 1]) {
                    let kind = s[i + 1], start = i
                    let close: Unicode.Scalar = kind == "{" ? "}" : kind == "%" ? "%" : "#"
                    var j = i + 2
                    let trimBefore = j < s.count && s[j] == "-", keepBefore = j < s.count && s[j] == "+"
                    if trimBefore || keepBefore { j += 1 }
                    // Find the closing delimiter outside string literals.
                    var end = -1, quote: Unicode.Scalar?
                    var k = j
                    while k + 1 < s.count {
                        if let q = quote {
                            if s[k] == "\\" { k += 2; continue }
                            if s[k] == q { quote = nil }
                        } else if kind != "#" && (s[k] == "'" || s[k] == "\"") {
                            quote = s[k]
                        } else if s[k] == close && s[k + 1] == "}" {
                            end = k
                            break
                        }
                        k += 1
                    }
                    guard end >= 0 else { throw ChatTemplate.fail("the tag at offset \(start) is never closed") }
                    var innerEnd = end
                    let trimAfter = innerEnd > j && s[innerEnd - 1] == "-"
                    if trimAfter || (innerEnd > j && s[innerEnd - 1] == "+") { innerEnd -= 1 }
                    flushText(before: start, trimTrailing: trimBefore, lstrip: kind != "{" && !keepBefore)
                    let inner = String(String.UnicodeScalarView(s[j..<innerEnd]))
                    switch kind {
                    case "{": tokens.append(.output(try words(inner, at: j), at: start))
                    case "%": tokens.append(.statement(try words(inner, at: j), at: start))
                    default: break
                    }
                    i = end + 2
                    trimNextLeading = trimAfter
                    // trim_blocks: the first newline after a block tag or comment goes.
                    if kind != "{" && !trimAfter && i < s.count && s[i] == "\n" { i += 1 }
                    continue
                }
                if trimNextLeading && s[i].properties.isWhitespace { i += 1; continue }
                trimNextLeading = false
                text.unicodeScalars.append(s[i])
                i += 1
            }
            flushText(before: s.count, trimTrailing: false, lstrip: false)
            return tokens
        }

        static func words(_ text: String, at offset: Int) throws -> [Word] {
            let s = Array(text.unicodeScalars)
            var words: [Word] = [], i = 0
            while i < s.count {
                let c = s[i]
                if c.properties.isWhitespace { i += 1; continue }
                if c == "'" || c == "\"" {
                    var value = "", j = i + 1
                    while j < s.count, s[j] != c {
                        if s[j] == "\\", j + 1 < s.count {
                            switch s[j + 1] {
                            case "n": value += "\n"
                            case "t": value += "\t"
                            case "r": value += "\r"
                            default: value.unicodeScalars.append(s[j + 1])
                            }
                            j += 2
                            continue
                        }
                        value.unicodeScalars.append(s[j])
                        j += 1
                    }
                    guard j < s.count else { throw ChatTemplate.fail("a string at offset \(offset + i) is never closed") }
                    words.append(.string(value))
                    i = j + 1
                } else if c.properties.isAlphabetic || c == "_" {
                    var j = i
                    while j < s.count, s[j].properties.isAlphabetic || s[j] == "_" || ("0"..."9").contains(s[j]) { j += 1 }
                    words.append(.name(String(String.UnicodeScalarView(s[i..<j]))))
                    i = j
                } else if ("0"..."9").contains(c) {
                    var j = i
                    while j < s.count, ("0"..."9").contains(s[j]) { j += 1 }
                    guard let n = Int(String(String.UnicodeScalarView(s[i..<j]))) else { throw ChatTemplate.fail("a number at offset \(offset + i) is too large") }
                    words.append(.integer(n))
                    i = j
                } else if i + 1 < s.count, ["==", "!="].contains(String(c) + String(s[i + 1])) {
                    words.append(.symbol(String(c) + String(s[i + 1])))
                    i += 2
                } else if "()[].+|=,-".unicodeScalars.contains(c) {
                    words.append(.symbol(String(c)))
                    i += 1
                } else {
                    throw ChatTemplate.fail("'\(c)' at offset \(offset + i) is not part of the supported Jinja")
                }
            }
            return words
        }
    }

    // MARK: parsing

    indirect enum Expression: Equatable, Sendable {
        case literal(Value)
        case name(String)
        case member(Expression, Expression)          // a.b, a['b'], a[0]
        case add(Expression, Expression)
        case compare(Expression, Expression, equal: Bool)
        case and(Expression, Expression), or(Expression, Expression), not(Expression)
        case contains(Expression, Expression)        // a in b
        case defined(Expression, Bool)
        case filter(Expression, String)
    }

    indirect enum Node: Equatable, Sendable {
        case text(String)
        case output(Expression)
        case branch([(Expression, [Node])], otherwise: [Node])
        case loop(variable: String, over: Expression, body: [Node])
        case assign(String, Expression)

        static func == (a: Node, b: Node) -> Bool {
            switch (a, b) {
            case let (.text(x), .text(y)): x == y
            case let (.output(x), .output(y)): x == y
            case let (.loop(v1, o1, b1), .loop(v2, o2, b2)): v1 == v2 && o1 == o2 && b1 == b2
            case let (.assign(n1, e1), .assign(n2, e2)): n1 == n2 && e1 == e2
            case let (.branch(c1, e1), .branch(c2, e2)):
                e1 == e2 && c1.count == c2.count && zip(c1, c2).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            default: false
            }
        }
    }

    struct Parser {
        let tokens: [Token]
        var position = 0

        init(tokens: [Token]) { self.tokens = tokens }

        /// Nodes up to a statement whose first word is in `terminators` (left unconsumed), or the end.
        mutating func nodes(until terminators: Set<String>) throws -> [Node] {
            var out: [Node] = []
            while position < tokens.count {
                switch tokens[position] {
                case .text(let t):
                    out.append(.text(t))
                    position += 1
                case .output(let words, let at):
                    var e = ExpressionParser(words: words, offset: at)
                    out.append(.output(try e.whole()))
                    position += 1
                case .statement(let words, let at):
                    guard case .name(let keyword)? = words.first else { throw ChatTemplate.fail("an empty tag at offset \(at)") }
                    if terminators.contains(keyword) { return out }
                    position += 1
                    let rest = Array(words.dropFirst())
                    switch keyword {
                    case "if": out.append(try branch(rest, at: at))
                    case "for":
                        guard rest.count >= 3, case .name(let variable) = rest[0], rest[1] == .name("in") else {
                            throw ChatTemplate.fail("the for at offset \(at) is not 'for name in expression'")
                        }
                        var e = ExpressionParser(words: Array(rest.dropFirst(2)), offset: at)
                        let over = try e.whole()
                        let body = try nodes(until: ["endfor"])
                        try expect("endfor", after: at)
                        out.append(.loop(variable: variable, over: over, body: body))
                    case "set":
                        guard rest.count >= 3, case .name(let name) = rest[0], rest[1] == .symbol("=") else {
                            throw ChatTemplate.fail("the set at offset \(at) is not 'set name = expression'")
                        }
                        var e = ExpressionParser(words: Array(rest.dropFirst(2)), offset: at)
                        out.append(.assign(name, try e.whole()))
                    default:
                        throw ChatTemplate.fail("'{% \(keyword) %}' at offset \(at) is not supported (if, for, set are)")
                    }
                }
            }
            guard terminators.isEmpty else { throw ChatTemplate.fail("the template ends before {% \(terminators.sorted().joined(separator: " or ")) %}") }
            return out
        }

        mutating func branch(_ condition: [Word], at: Int) throws -> Node {
            var cases: [(Expression, [Node])] = []
            var words = condition, otherwise: [Node] = []
            while true {
                var e = ExpressionParser(words: words, offset: at)
                let test = try e.whole()
                cases.append((test, try nodes(until: ["elif", "else", "endif"])))
                guard position < tokens.count, case .statement(let next, _) = tokens[position], case .name(let keyword)? = next.first else {
                    throw ChatTemplate.fail("the if at offset \(at) has no endif")
                }
                position += 1
                if keyword == "elif" { words = Array(next.dropFirst()); continue }
                if keyword == "else" {
                    otherwise = try nodes(until: ["endif"])
                    try expect("endif", after: at)
                }
                return .branch(cases, otherwise: otherwise)
            }
        }

        mutating func expect(_ keyword: String, after at: Int) throws {
            guard position < tokens.count, case .statement(let words, _) = tokens[position], words.first == .name(keyword) else {
                throw ChatTemplate.fail("the block at offset \(at) has no {% \(keyword) %}")
            }
            position += 1
        }
    }

    struct ExpressionParser {
        let words: [Word]
        let offset: Int
        var i = 0

        init(words: [Word], offset: Int) {
            self.words = words
            self.offset = offset
        }

        func fail(_ what: String) -> AttentionError { ChatTemplate.fail("\(what) in the tag at offset \(offset)") }

        mutating func whole() throws -> Expression {
            let e = try or()
            guard i == words.count else { throw fail("unexpected \(words[i])") }
            return e
        }

        mutating func accept(_ word: Word) -> Bool {
            guard i < words.count, words[i] == word else { return false }
            i += 1
            return true
        }

        mutating func or() throws -> Expression {
            var e = try and()
            while accept(.name("or")) { e = .or(e, try and()) }
            return e
        }

        mutating func and() throws -> Expression {
            var e = try not()
            while accept(.name("and")) { e = .and(e, try not()) }
            return e
        }

        mutating func not() throws -> Expression {
            if accept(.name("not")) { return .not(try not()) }
            return try comparison()
        }

        mutating func comparison() throws -> Expression {
            let left = try sum()
            if accept(.symbol("==")) { return .compare(left, try sum(), equal: true) }
            if accept(.symbol("!=")) { return .compare(left, try sum(), equal: false) }
            if accept(.name("in")) { return .contains(left, try sum()) }
            if accept(.name("not")) {
                guard accept(.name("in")) else { throw fail("'not' after an expression needs 'in'") }
                return .not(.contains(left, try sum()))
            }
            if accept(.name("is")) {
                let negated = accept(.name("not"))
                guard accept(.name("defined")) else { throw fail("only 'is defined' and 'is not defined' are supported") }
                return .defined(left, !negated)
            }
            return left
        }

        mutating func sum() throws -> Expression {
            var e = try filtered()
            while accept(.symbol("+")) { e = .add(e, try filtered()) }
            return e
        }

        mutating func filtered() throws -> Expression {
            var e = try postfix()
            while accept(.symbol("|")) {
                guard i < words.count, case .name(let name) = words[i], ["trim", "length", "upper", "lower"].contains(name) else {
                    throw fail("only the filters trim, length, upper and lower are supported")
                }
                i += 1
                e = .filter(e, name)
            }
            return e
        }

        mutating func postfix() throws -> Expression {
            var e = try primary()
            while true {
                if accept(.symbol(".")) {
                    guard i < words.count, case .name(let name) = words[i] else { throw fail("'.' needs a name after it") }
                    i += 1
                    e = .member(e, .literal(.string(name)))
                } else if accept(.symbol("[")) {
                    let index = try or()
                    guard accept(.symbol("]")) else { throw fail("'[' is never closed") }
                    e = .member(e, index)
                } else {
                    return e
                }
            }
        }

        mutating func primary() throws -> Expression {
            guard i < words.count else { throw fail("an expression ends early") }
            let word = words[i]
            i += 1
            switch word {
            case .string(let s): return .literal(.string(s))
            case .integer(let n): return .literal(.integer(n))
            case .name("true"), .name("True"): return .literal(.bool(true))
            case .name("false"), .name("False"): return .literal(.bool(false))
            case .name("none"), .name("None"): return .literal(.none)
            case .name(let n): return .name(n)
            case .symbol("-"):
                guard i < words.count, case .integer(let n) = words[i] else { throw fail("'-' is only supported before a number") }
                i += 1
                return .literal(.integer(-n))
            case .symbol("("):
                let e = try or()
                guard accept(.symbol(")")) else { throw fail("'(' is never closed") }
                return e
            default: throw fail("unexpected \(word)")
            }
        }
    }

    // MARK: rendering

    static func render(_ nodes: [Node], scope: inout [String: Value], into out: inout String) throws {
        for node in nodes {
            switch node {
            case .text(let t): out += t
            case .output(let e): out += try evaluate(e, scope).text
            case .assign(let name, let e): scope[name] = try evaluate(e, scope)
            case .branch(let cases, let otherwise):
                if let (_, body) = try cases.first(where: { try evaluate($0.0, scope).truthy }) {
                    try render(body, scope: &scope, into: &out)
                } else {
                    try render(otherwise, scope: &scope, into: &out)
                }
            case .loop(let variable, let over, let body):
                guard case .list(let items) = try evaluate(over, scope) else { throw fail("a for loop runs over a list only") }
                let saved = (scope[variable], scope["loop"])
                for (n, item) in items.enumerated() {
                    scope[variable] = item
                    scope["loop"] = .dictionary([
                        "index0": .integer(n), "index": .integer(n + 1), "first": .bool(n == 0),
                        "last": .bool(n == items.count - 1), "length": .integer(items.count),
                    ])
                    try render(body, scope: &scope, into: &out)
                }
                scope[variable] = saved.0
                scope["loop"] = saved.1
            }
        }
    }

    static func evaluate(_ e: Expression, _ scope: [String: Value]) throws -> Value {
        switch e {
        case .literal(let v): return v
        case .name(let n): return scope[n] ?? .undefined
        case .member(let base, let key):
            switch (try evaluate(base, scope), try evaluate(key, scope)) {
            case let (.dictionary(d), .string(k)): return d[k] ?? .undefined
            case let (.list(l), .integer(n)):
                let index = n < 0 ? l.count + n : n
                guard l.indices.contains(index) else { throw fail("index \(n) is outside a list of \(l.count)") }
                return l[index]
            case (.undefined, _): throw fail("a member of an undefined value")
            case let (value, key): throw fail("cannot index \(value.text) by \(key.text)")
            }
        case .add(let a, let b):
            switch (try evaluate(a, scope), try evaluate(b, scope)) {
            case let (.integer(x), .integer(y)): return .integer(x &+ y)
            case let (.string(x), .string(y)): return .string(x + y)
            case let (.list(x), .list(y)): return .list(x + y)
            case let (x, y): throw fail("'+' of \(x.text) and \(y.text): strings join strings only")
            }
        case .compare(let a, let b, let equal):
            let same = try evaluate(a, scope) == evaluate(b, scope)
            return .bool(same == equal)
        case .and(let a, let b): return .bool(try evaluate(a, scope).truthy && evaluate(b, scope).truthy)
        case .or(let a, let b): return .bool(try evaluate(a, scope).truthy || evaluate(b, scope).truthy)
        case .not(let a): return .bool(!(try evaluate(a, scope).truthy))
        case .contains(let a, let b):
            switch (try evaluate(a, scope), try evaluate(b, scope)) {
            case let (.string(x), .string(y)): return .bool(y.contains(x))
            case let (x, .list(l)): return .bool(l.contains(x))
            case let (.string(x), .dictionary(d)): return .bool(d[x] != nil)
            case let (x, y): throw fail("'in' of \(x.text) and \(y.text)")
            }
        case .defined(let a, let wanted):
            return .bool((try evaluate(a, scope) != .undefined) == wanted)
        case .filter(let a, let name):
            let v = try evaluate(a, scope)
            switch (name, v) {
            case ("trim", .string(let s)): return .string(s.trimmingCharacters(in: .whitespacesAndNewlines))
            case ("upper", .string(let s)): return .string(s.uppercased())
            case ("lower", .string(let s)): return .string(s.lowercased())
            case ("length", .string(let s)): return .integer(s.count)
            case ("length", .list(let l)): return .integer(l.count)
            case ("length", .dictionary(let d)): return .integer(d.count)
            default: throw fail("|\(name) of \(v.text)")
            }
        }
    }
}
