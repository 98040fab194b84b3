import Attention
import Foundation

// The parsers: statements into a tree of nodes, expressions by precedence.
extension ChatTemplate {
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
}
