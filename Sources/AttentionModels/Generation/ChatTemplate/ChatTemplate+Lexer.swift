import Attention
import Foundation

// The lexer: a template's text into text, expression and statement tokens, and each tag's words.
extension ChatTemplate {
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
}
