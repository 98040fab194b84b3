import Attention
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// Chat templates rendered as transformers' `apply_chat_template` renders them (fixtures from
/// scripts/make-chat-template-fixtures.py, with transformers' own Jinja environment).
@Suite("Chat templates")
struct ChatTemplateTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            struct Message: Decodable { let role: String, content: String }
            let template: String, messages: [Message], addGenerationPrompt: Bool, text: String
        }
        let templates: [String: String]
        let cases: [Case]
    }

    @Test("Every template and conversation renders to transformers' text, character for character")
    func fixtures() throws {
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.root.appendingPathComponent("chat-templates.json")))
        #expect(fixture.cases.count == 18)
        for c in fixture.cases {
            let template = try ChatTemplate(try #require(fixture.templates[c.template]))
            let messages = c.messages.map { ChatTemplate.Message(role: $0.role, content: $0.content) }
            let text = try template.render(messages, addGenerationPrompt: c.addGenerationPrompt, variables: ["bos_token": "<s>"])
            #expect(text == c.text, "\(c.template), \(c.messages.count) messages, generation prompt \(c.addGenerationPrompt)")
        }
    }

    @Test("Constructs outside the supported Jinja are refused when parsed, naming them; bad values when rendered")
    func errors() throws {
        func reason(_ source: String) -> String {
            do { _ = try ChatTemplate(source); return "no error" } catch { return "\(error)" }
        }
        #expect(reason("{% macro greet() %}hi{% endmacro %}").contains("'{% macro %}' at offset 0 is not supported"))
        #expect(reason("{{ 2 * 3 }}").contains("'*' at offset 5"))
        #expect(reason("{% if x %}open").contains("ends before {% elif or else or endif %}"))
        #expect(reason("{% for m in messages %}").contains("ends before {% endfor %}"))
        #expect(reason("ab {{ 'unclosed }}").contains("never closed"))
        #expect(reason("{{ x | tojson }}").contains("only the filters trim, length, upper and lower"))
        #expect(reason("{{ messages[0] ").contains("never closed"))
        #expect(reason("{% for in messages %}{% endfor %}").contains("not 'for name in expression'"))
        let indexed = try ChatTemplate("{{ messages[3].content }}")
        #expect(thrownError { try indexed.render([.init(role: "user", content: "hi")], addGenerationPrompt: false) } == .invalidArgument("chat template"))
        let mixed = try ChatTemplate("{{ 'a' + messages }}")
        #expect(thrownError { try mixed.render([], addGenerationPrompt: false) } == .invalidArgument("chat template"))
    }
}
