#if canImport(SculptTestSupport)
import SculptTestSupport
#endif
import Foundation
import XCTest
@testable import SculptIO

final class ChatTemplateErrorTests: XCTestCase {
    private func parseError(_ source: String, file: StaticString = #filePath, line: UInt = #line) -> ChatTemplateError? {
        do {
            _ = try ChatTemplate(source: source, origin: "/models/x/chat_template.jinja")
            XCTFail("parsed", file: file, line: line)
        } catch let e as ChatTemplateError {
            XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
            XCTAssertTrue(e.description.hasPrefix("/models/x/chat_template.jinja: "), e.description, file: file, line: line)
            return e
        } catch {
            XCTFail("\(error)", file: file, line: line)
        }
        return nil
    }

    private func renderError(_ source: String, _ messages: [ChatMessage] = [], file: StaticString = #filePath, line: UInt = #line) -> ChatTemplateError? {
        do {
            let t = try ChatTemplate(source: source, origin: "/models/x/chat_template.jinja")
            let out = try t.render(messages: messages, addGenerationPrompt: false, bosToken: nil, eosToken: nil)
            XCTFail("rendered \(out.debugDescription)", file: file, line: line)
        } catch let e as ChatTemplateError {
            XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
            XCTAssertTrue(e.description.hasPrefix("/models/x/chat_template.jinja: "), e.description, file: file, line: line)
            return e
        } catch {
            XCTFail("\(error)", file: file, line: line)
        }
        return nil
    }

    func testUnsupportedTag() {
        let e = parseError("line one\n{# two #}\n{% include 'other.jinja' %}")
        XCTAssertEqual(e?.description, #"/models/x/chat_template.jinja: line 3: unsupported Jinja tag "include""#)
        XCTAssertEqual(e?.kind, .unsupported)
        XCTAssertEqual(parseError("{% extends 'base' %}")?.kind, .unsupported)
        XCTAssertEqual(parseError("{% for x in xs recursive %}{% endfor %}")?.kind, .unsupported)
        XCTAssertEqual(parseError("{{ x | truncate(3) }}")?.description, #"/models/x/chat_template.jinja: line 1: unsupported Jinja filter "truncate""#)
        XCTAssertEqual(parseError("{% do x.append(1) %}")?.description, #"/models/x/chat_template.jinja: line 1: unknown Jinja tag "do""#)
    }

    func testUnterminatedBlock() {
        let e = parseError("{% for m in messages %}\n{{ m.content }}\n")
        XCTAssertEqual(e?.line, 1)
        XCTAssertEqual(e?.kind, .syntax)
        XCTAssertTrue(e?.message.contains("\"for\" tag is never closed") ?? false, e?.description ?? "")
        XCTAssertEqual(parseError("a\n{% if x %}\nb\n{% endfor %}")?.line, 4)
        XCTAssertEqual(parseError("{{ x ")?.kind, .syntax)
        XCTAssertEqual(parseError("{% raw %} never ends")?.kind, .syntax)
    }

    func testBadExpression() {
        XCTAssertEqual(parseError("x\n{{ 1 + }}")?.line, 2)
        XCTAssertNotNil(parseError("{{ a b }}"))
        XCTAssertNotNil(parseError("{{ (1, 2 }}"))
        XCTAssertNotNil(parseError("{% set = 1 %}"))
        XCTAssertNotNil(parseError("{{ 'unterminated }}"))
        XCTAssertNotNil(parseError("{{ x is nosuchtest }}"))
        XCTAssertNotNil(parseError("{{ f(a=1, 2) }}"))
        XCTAssertNotNil(parseError("{% macro m(a=1, b) %}{% endmacro %}"))
    }

    func testRaiseException() {
        let e = renderError("{% for m in messages %}\n{% if m.role == 'system' %}\n{{ raise_exception('System role not supported') }}\n{% endif %}\n{% endfor %}",
                            [ChatMessage(role: "system", content: "s")])
        XCTAssertEqual(e?.kind, .raised)
        XCTAssertEqual(e?.message, "System role not supported")
        XCTAssertEqual(e?.description, "/models/x/chat_template.jinja: line 3: raise_exception: System role not supported")
    }

    func testUndefinedMethodAndAttributes() {
        let e = renderError("{{ messages[0].content.shout() }}", [ChatMessage(role: "user", content: "x")])
        XCTAssertEqual(e?.message, "'str object' has no attribute 'shout'")
        XCTAssertEqual(e?.kind, .runtime)
        XCTAssertEqual(renderError("{{ missing.attr }}")?.message, "'missing' is undefined")
        XCTAssertEqual(renderError("{{ messages.append(1) }}")?.message, "access to attribute 'append' of 'list' object is unsafe.")
        XCTAssertEqual(renderError("{{ messages[0].role }}")?.message, "list object has no element 0")
        XCTAssertEqual(renderError("{{ ''.rsplit(' ') }}")?.kind, .unsupported)
        XCTAssertEqual(renderError("{{ cycler(1, 2) }}")?.kind, .unsupported)
        XCTAssertEqual(renderError("{{ messages.__class__ }}{{ messages.__class__.x }}")?.kind, .runtime)
    }

    func testLimits() {
        XCTAssertEqual(renderError("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")?.kind, .limit)
        XCTAssertEqual(renderError("{{ range(1000000) | length }}")?.kind, .limit)
        XCTAssertEqual(renderError("{{ 'x' * 100000000 }}")?.kind, .limit)
        XCTAssertEqual(renderError("{{ 2 ** 100 }}")?.kind, .unsupported)
        XCTAssertEqual(renderError("{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns }}")?.kind, .limit)
        let deep = String(repeating: "(", count: 300) + "1" + String(repeating: ")", count: 300)
        XCTAssertEqual(parseError("{{ \(deep) }}")?.kind, .syntax)
        let nested = String(repeating: "{% if true %}", count: 100) + String(repeating: "{% endif %}", count: 100)
        XCTAssertEqual(parseError(nested)?.kind, .limit)
        do {
            var t = try ChatTemplate(source: "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", origin: "big")
            t.limits.maxOutputBytes = 1 << 30
            t.limits.maxLoopIterations = 100_000
            XCTAssertThrowsError(try t.render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil)) {
                XCTAssertEqual(($0 as? ChatTemplateError)?.kind, .limit)
            }
        } catch {
            XCTFail("\(error)")
        }
    }
}
