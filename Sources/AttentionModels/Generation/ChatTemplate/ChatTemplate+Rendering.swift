import Attention
import Foundation

// Rendering: the nodes evaluated against a scope of values, as Jinja evaluates them.
extension ChatTemplate {
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
