#if canImport(SculptTestSupport)
import SculptTestSupport
#endif
import Foundation
import XCTest
@testable import SculptIO

/// The fixed clock the expected outputs were rendered with: 2024-09-05 12:00 local time.
let chatTemplateTestDate: Date = {
    var c = DateComponents()
    c.year = 2024; c.month = 9; c.day = 5; c.hour = 12
    return Calendar(identifier: .gregorian).date(from: c)!
}()

func jsonObjectMembers(_ text: String) throws -> [String: JinjaValue] {
    guard case .object(let members) = try JinjaValue(jsonText: text) else { return [:] }
    var out: [String: JinjaValue] = [:]
    for m in members { out[m.key] = m.value }
    return out
}

final class ChatTemplateTests: XCTestCase {
    // MARK: SmolLM2 goldens from transformers

    func testSmolLM2GoldenCases() throws {
        let modelDir = try SharedData.require("models/smollm2-135m-instruct")
        let golden = try SharedData.require("goldens/smollm2/chat_cases.jsonl")
        guard let template = try ChatTemplate.load(modelDirectory: modelDir) else { return XCTFail("no chat template found") }
        XCTAssertTrue(template.origin.hasSuffix("chat_template.jinja"))
        let tokens = try ChatTemplate.specialTokens(modelDirectory: modelDir)
        XCTAssertEqual(tokens["bos_token"], "<|im_start|>")
        let text = try String(contentsOf: golden, encoding: .utf8)
        var count = 0
        for line in text.split(separator: "\n") where !line.isEmpty {
            let json = try StrictJSON.parse(Array(line.utf8))
            guard case .array(let msgs)? = json["messages"], case .bool(let agp)? = json["add_generation_prompt"],
                  case .string(let expected)? = json["text"] else { return XCTFail("bad golden line") }
            let messages = try msgs.map { m -> ChatMessage in
                guard case .string(let role)? = m["role"], case .string(let content)? = m["content"] else { throw XCTSkip("bad message") }
                return ChatMessage(role: role, content: content)
            }
            let rendered = try template.render(messages: messages, addGenerationPrompt: agp,
                                               bosToken: tokens["bos_token"], eosToken: tokens["eos_token"])
            XCTAssertEqual(rendered, expected)
            count += 1
        }
        XCTAssertEqual(count, 4)
    }

    // MARK: interpreter semantics, verified against jinja2

    func testConformanceCasesMatchJinja2() throws {
        for c in JinjaConformanceCases.all {
            let context = try jsonObjectMembers(c.contextJSON)
            let template: ChatTemplate
            do {
                template = try ChatTemplate(source: c.template, origin: "case-\(c.name).jinja")
            } catch let e as ChatTemplateError {
                if c.error == nil { XCTFail("\(c.name): unexpected parse error \(e)") }
                XCTAssertTrue(e.description.hasPrefix("case-\(c.name).jinja: "), "\(c.name): \(e)")
                XCTAssertFalse(e.description.contains("\n"))
                continue
            }
            do {
                let out = try template.render(context: context, now: chatTemplateTestDate)
                if let expected = c.expected {
                    XCTAssertEqual(out, expected, c.name)
                } else {
                    XCTFail("\(c.name): rendered \(out.debugDescription) but jinja2 raised \(c.error ?? "")")
                }
            } catch let e as ChatTemplateError {
                guard let jinjaError = c.error else {
                    XCTFail("\(c.name): unexpected error \(e)")
                    continue
                }
                XCTAssertFalse(e.description.contains("\n"))
                XCTAssertTrue(e.description.hasPrefix("case-\(c.name).jinja: "), "\(c.name): \(e)")
                // Runtime errors carry jinja2's own message.
                if let colon = jinjaError.range(of: ": ") {
                    let kind = jinjaError[..<colon.lowerBound]
                    let message = String(jinjaError[colon.upperBound...])
                    if !kind.contains("Syntax"), !kind.contains("Assertion") {
                        XCTAssertEqual(e.message, message, c.name)
                    }
                }
            }
        }
    }

    // MARK: real templates, verified against jinja2

    func testRealTemplatesMatchJinja2() throws {
        var checked = Set<String>()
        for c in RealTemplateCases.all {
            guard let source = ChatTemplateFixtures.byName[c.template] else { XCTFail("no fixture \(c.template)"); continue }
            let template = try ChatTemplate(source: source, origin: "\(c.template).jinja")
            guard case .list(let messages) = try JinjaValue(jsonText: c.messagesJSON) else { XCTFail("messages"); continue }
            var tools: [JinjaValue]?
            if let t = c.toolsJSON, case .list(let list) = try JinjaValue(jsonText: t) { tools = list }
            let extra = try jsonObjectMembers(c.extraJSON)
            let label = "\(c.template)/\(c.name)"
            do {
                let out = try template.render(messageValues: messages, addGenerationPrompt: c.addGenerationPrompt,
                                              bosToken: c.bosToken, eosToken: c.eosToken, tools: tools,
                                              extraContext: extra, now: chatTemplateTestDate)
                if let expected = c.expected {
                    XCTAssertEqual(out, expected, label)
                } else {
                    XCTFail("\(label): rendered but jinja2 raised \(c.error ?? "")")
                }
            } catch let e as ChatTemplateError {
                guard let jinjaError = c.error else { XCTFail("\(label): \(e)"); continue }
                XCTAssertTrue(jinjaError.hasSuffix(e.message), "\(label): \(e) vs \(jinjaError)")
                if jinjaError.hasPrefix("TemplateError: ") { XCTAssertEqual(e.kind, .raised, label) }
                XCTAssertTrue(e.description.hasPrefix("\(c.template).jinja: line "), label)
            }
            checked.insert(c.template)
        }
        XCTAssertEqual(checked.count, ChatTemplateFixtures.byName.count)
    }

    func testChatMessageOverloadMatchesValues() throws {
        let template = try ChatTemplate(source: ChatTemplateFixtures.qwen25, origin: "qwen25.jinja")
        let messages = [ChatMessage(role: "user", content: "Hi", extra: ["name": "bob"])]
        let out = try template.render(messages: messages, addGenerationPrompt: true, bosToken: nil, eosToken: nil)
        XCTAssertEqual(out, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        let named = try ChatTemplate(source: "{{ messages[0].name }}:{{ messages[0] | tojson }}", origin: "t")
        XCTAssertEqual(try named.render(messages: messages, addGenerationPrompt: false, bosToken: nil, eosToken: nil),
                       "bob:{\"role\": \"user\", \"content\": \"Hi\", \"name\": \"bob\"}")
        let data = try JSONEncoder().encode(messages[0])
        XCTAssertEqual(try JSONDecoder().decode(ChatMessage.self, from: data), messages[0])
    }

    func testStrftimeNowDefaultsToTheClock() throws {
        let template = try ChatTemplate(source: ChatTemplateFixtures.llama32, origin: "llama32.jinja")
        let out = try template.render(messages: [ChatMessage(role: "user", content: "x")], addGenerationPrompt: true,
                                      bosToken: "<|begin_of_text|>", eosToken: nil, now: chatTemplateTestDate)
        XCTAssertTrue(out.contains("Today Date: 05 Sep 2024\n"), out)
    }

    func testGenerationTagRendersItsBody() throws {
        let t = try ChatTemplate(source: "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}[{{ m.content }}]{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}", origin: "gen.jinja")
        let out = try t.render(messages: [ChatMessage(role: "user", content: "q"), ChatMessage(role: "assistant", content: "a")],
                               addGenerationPrompt: false, bosToken: nil, eosToken: nil)
        XCTAssertEqual(out, "q[a]")
    }

    // MARK: loading

    func testLoadFromTokenizerConfig() throws {
        let dir = temporaryDirectory()
        XCTAssertNil(try ChatTemplate.load(modelDirectory: dir))
        let config = dir.appendingPathComponent("tokenizer_config.json")
        try #"{"bos_token": {"content": "<s>", "__type": "AddedToken"}, "eos_token": "</s>", "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"}"#
            .write(to: config, atomically: true, encoding: .utf8)
        let t = try XCTUnwrap(try ChatTemplate.load(modelDirectory: dir))
        XCTAssertTrue(t.origin.contains("tokenizer_config.json"))
        let tokens = try ChatTemplate.specialTokens(modelDirectory: dir)
        XCTAssertEqual(tokens, ["bos_token": "<s>", "eos_token": "</s>"])
        XCTAssertEqual(try t.render(messages: [ChatMessage(role: "user", content: "x")], addGenerationPrompt: false,
                                    bosToken: tokens["bos_token"], eosToken: tokens["eos_token"]), "<s>x")

        try #"{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ 1 }}"}]}"#
            .write(to: config, atomically: true, encoding: .utf8)
        let d = try XCTUnwrap(try ChatTemplate.load(modelDirectory: dir))
        XCTAssertEqual(try d.render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil), "D1")

        try #"{"chat_template": [{"name": "tool_use", "template": "T"}]}"#.write(to: config, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ChatTemplate.load(modelDirectory: dir))
        try #"{"chat_template": 5}"#.write(to: config, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ChatTemplate.load(modelDirectory: dir))
        try "{ not json".write(to: config, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ChatTemplate.load(modelDirectory: dir)) { XCTAssertTrue("\($0)".contains("tokenizer_config.json")) }

        // chat_template.jinja wins over tokenizer_config.json.
        try "J{{ messages | length }}\n".write(to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        let j = try XCTUnwrap(try ChatTemplate.load(modelDirectory: dir))
        XCTAssertEqual(try j.render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil), "J0")
    }

    func testContextPrecedence() throws {
        let t = try ChatTemplate(source: "{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|{{ tools }}|{{ documents }}|{{ add_generation_prompt }}", origin: "ctx")
        XCTAssertEqual(try t.render(messages: [], addGenerationPrompt: true, bosToken: "<s>", eosToken: nil,
                                    extraContext: ["pad_token": "<pad>", "eos_token": "E"]), "<s>|E|<pad>|None|None|True")
        XCTAssertThrowsError(try t.render(messages: [], addGenerationPrompt: true, bosToken: nil, eosToken: nil, extraContext: ["messages": []]))
    }
}
