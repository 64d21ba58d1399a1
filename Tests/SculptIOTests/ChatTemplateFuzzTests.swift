#if canImport(SculptTestSupport)
import SculptTestSupport
#endif
import Foundation
import XCTest
@testable import SculptIO

/// Mutates the real templates at random (seeded) and checks that parsing and rendering either
/// succeed or throw a one-line `ChatTemplateError`: nothing traps, hangs or runs away.
final class ChatTemplateFuzzTests: XCTestCase {
    typealias SplitMix64 = SafeTensorsTestRNG

    static let fragments = ["{%", "%}", "{{", "}}", "{#", "#}", "-", "+", "(", ")", "[", "]", "{", "}", "'", "\"", "|", ".",
        ",", ":", "=", "==", "*", "**", "//", "%", "~", " if ", " else ", " in ", " not ", " is ", " and ", " or ",
        "{% for x in messages %}", "{% endfor %}", "{% if x %}", "{% endif %}", "{% else %}", "{% set ns = namespace(a=1) %}",
        "{% set ns.a = ns.a * 2 %}", "{{ loop.index }}", "{% break %}", "{% continue %}", "{% macro m(a) %}{{ m(a) }}{% endmacro %}",
        "{{ m(1) }}", "range(99999)", "| tojson", "| trim", "| length", "[::-1]", "[1:]", "messages[0]", "\\", "\n", "  ",
        "none", "true", "0", "-1", "1e309", "9223372036854775807", "'x' * 99999", "{% raw %}", "{% endraw %}", "{% generation %}",
        "{% call m(1) %}", "{% endcall %}", "{% filter upper %}", "{% endfilter %}", ".split()", "raise_exception('e')",
        "{{ strftime_now('%d') }}", "é", "😀", "\u{0}", "\r"]

    func mutate(_ s: String, _ rng: inout SplitMix64) -> String {
        var a = Array(s.unicodeScalars)
        for _ in 0..<(1 + rng.below(4)) {
            let i = rng.below(a.count + 1)
            switch rng.below(5) {
            case 0 where !a.isEmpty:
                let j = min(a.count, i + 1 + rng.below(12))
                a.removeSubrange(min(i, a.count)..<j)
            case 1 where !a.isEmpty:
                let start = rng.below(a.count)
                let end = min(a.count, start + 1 + rng.below(40))
                a.insert(contentsOf: a[start..<end], at: i)
            case 2 where !a.isEmpty:
                let j = rng.below(a.count)
                if i < a.count { a.swapAt(i, j) }
            default:
                let f = ChatTemplateFuzzTests.fragments[rng.below(ChatTemplateFuzzTests.fragments.count)]
                a.insert(contentsOf: f.unicodeScalars, at: i)
            }
        }
        return PyText.string(a)
    }

    func testMutatedRealTemplatesNeverCrash() throws {
        var rng = SplitMix64(seed: 0x5C0_1B7)
        let seeds = ChatTemplateFixtures.byName.keys.sorted().compactMap { ChatTemplateFixtures.byName[$0] }
        let messageSets: [[JinjaValue]] = [
            [["role": "user", "content": "hi"]],
            [["role": "system", "content": "s"], ["role": "user", "content": "u"], ["role": "assistant", "content": "a"]],
            [["role": "user", "content": "q"], ["role": "assistant", "content": "", "tool_calls": [["type": "function", "function": ["name": "f", "arguments": ["x": 1]]]]], ["role": "tool", "content": "r"]],
        ]
        let tools: [JinjaValue] = [["type": "function", "function": ["name": "f", "parameters": ["type": "object"]]]]
        let deadline = Date().addingTimeInterval(6)
        var parsed = 0, rendered = 0, iterations = 0
        while iterations < 4000, Date() < deadline {
            iterations += 1
            let source = mutate(seeds[rng.below(seeds.count)], &rng)
            guard var template = try? ChatTemplate(source: source, origin: "fuzz.jinja") else { continue }
            parsed += 1
            template.limits.maxOutputBytes = 1 << 20
            template.limits.maxLoopIterations = 20_000
            let messages = messageSets[rng.below(messageSets.count)]
            do {
                _ = try template.render(messageValues: messages, addGenerationPrompt: rng.below(2) == 0, bosToken: "<s>",
                                        eosToken: "</s>", tools: rng.below(2) == 0 ? tools : nil, now: chatTemplateTestDate)
                rendered += 1
            } catch let e as ChatTemplateError {
                XCTAssertFalse(e.description.contains("\n"))
            }
        }
        print("fuzz: \(iterations) mutated templates, \(parsed) parsed, \(rendered) rendered")
        XCTAssertGreaterThan(parsed, 0)
    }
}
