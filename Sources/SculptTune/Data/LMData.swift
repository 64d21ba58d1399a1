import Foundation
import SculptIO
import SculptModels

/// Which tokens of an example a causal-LM run learns to predict.
public enum TrainOn: String, CaseIterable, Sendable {
    /// The assistant turns (with the end-of-turn tokens the template writes after them), or the completion.
    case completion
    /// Every token, the prompt included.
    case all
}

/// One tokenised example of causal-LM data: `labels[t]` is `ids[t]` where the token is a
/// target and −100 elsewhere (the loss shifts them: position t − 1 predicts token t).
public struct LMExample: Sendable, Equatable {
    public var ids: [Int32]
    public var labels: [Int32]
    /// For exact-match evaluation: the conversation before the last assistant turn (chat
    /// data) and that turn's text; or the prompt text and completion.
    public var promptMessages: [ChatMessage]?
    public var promptText: String?
    public var reference: String?
    /// The 1-based line of the file it came from.
    public var line: Int

    /// Target tokens the loss counts: position 0 is never predicted (nothing comes before it).
    public var predictedCount: Int { labels.dropFirst().reduce(0) { $0 + ($1 == LMData.ignore ? 0 : 1) } }
}

/// Causal-LM data read from JSONL: one of `{"messages":[{"role","content"},…]}` (rendered by
/// the model's chat template), `{"prompt","completion"}` or `{"text"}` per line.
public struct LMData: Sendable {
    public static let ignore: Int32 = -100
    public var examples: [LMExample]
    /// Examples cut at the maximum length (they keep their first `maxLength` tokens).
    public var truncated: Int
    /// Truncated examples left with no target token; they are not trained on.
    public var dropped: Int
    public var file: String

    /// A sentence on what truncation did, or nil when nothing was cut.
    public var truncationNote: String? {
        guard truncated > 0 else { return nil }
        var s = "\(file): \(truncated) of \(examples.count + dropped) examples are longer than --max-length and were truncated"
        if dropped > 0 { s += "; \(dropped) of them lost every target token and are left out" }
        return s
    }

    /// Reads and tokenises `url`. A malformed line is an error naming the file and line.
    public static func load(_ url: URL, text: DecoderText, maxLength: Int, trainOn: TrainOn) throws -> LMData {
        let tokenizer = text.tokenizer
        let bos: [Int32] = tokenizer.addBOS ? tokenizer.bosTokenId.map { [$0] } ?? [] : []
        let eos = tokenizer.eosTokenId
        var examples: [LMExample] = []
        var truncated = 0, dropped = 0
        for (line, value) in try TextLines.readObjects(url) {
            func fail(_ reason: String) -> TextLinesError { TextLinesError(file: url.path, line: line, reason: reason) }
            // Segments of text, each a target or not, tokenised one by one so a target's
            // tokens are exactly those of its own text.
            var segments: [(ids: [Int32], target: Bool)] = []
            var example = LMExample(ids: [], labels: [], line: line)
            if let items = value["messages"] {
                let messages = try chatMessages(items, fail: fail)
                segments = try chatSegments(messages, text: text, fail: fail)
                let last = messages.lastIndex { $0.role == "assistant" }!
                example.promptMessages = Array(messages[..<last])
                example.reference = messages[last].content
            } else if let prompt = value["prompt"] {
                guard let p = prompt.stringValue else { throw fail("\"prompt\" must be a string") }
                guard let c = value["completion"]?.stringValue else { throw fail("a \"prompt\" line needs a \"completion\" string") }
                guard !c.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw fail("\"completion\" is empty") }
                segments = [(bos + tokenizer.encode(p), false), (tokenizer.encode(c) + (eos.map { [$0] } ?? []), true)]
                example.promptText = p
                example.reference = c
            } else if let t = value["text"] {
                guard let s = t.stringValue, !s.isEmpty else { throw fail("\"text\" must be a non-empty string") }
                segments = [(bos + tokenizer.encode(s) + (eos.map { [$0] } ?? []), true)]
            } else {
                throw fail("expected \"messages\", \"prompt\"/\"completion\" or \"text\"")
            }
            for s in segments {
                example.ids += s.ids
                example.labels += (s.target || trainOn == .all) ? s.ids : [Int32](repeating: ignore, count: s.ids.count)
            }
            if example.ids.count > maxLength {
                truncated += 1
                example.ids = Array(example.ids.prefix(maxLength))
                example.labels = Array(example.labels.prefix(maxLength))
                if example.predictedCount == 0 { dropped += 1; continue }
            }
            guard example.predictedCount > 0 else { throw fail("no token to learn (the example is a single token)") }
            examples.append(example)
        }
        guard !examples.isEmpty else { throw TuneError("\(url.path): no examples left to train on (every one lost its target to --max-length \(maxLength))") }
        return LMData(examples: examples, truncated: truncated, dropped: dropped, file: url.path)
    }

    /// The messages of a line, checked: roles system (first only), then user and assistant
    /// alternating from a user turn; at least one assistant turn; no empty assistant turn.
    static func chatMessages(_ items: StrictJSON.Value, fail: (String) -> TextLinesError) throws -> [ChatMessage] {
        guard let array = items.arrayValue else { throw fail("\"messages\" must be an array") }
        guard !array.isEmpty else { throw fail("\"messages\" is empty") }
        var messages: [ChatMessage] = []
        for (i, m) in array.enumerated() {
            guard let role = m["role"]?.stringValue else { throw fail("messages[\(i)] has no \"role\" string") }
            guard let content = m["content"]?.stringValue else { throw fail("messages[\(i)] has no \"content\" string") }
            switch role {
            case "system":
                guard i == 0 else { throw fail("messages[\(i)]: a system message must come first") }
            case "user", "assistant":
                let previous = messages.last.map(\.role)
                let expected = previous == "user" ? "assistant" : "user"
                guard role == expected else {
                    guard let previous, previous != "system" else { throw fail("messages[\(i)]: the conversation starts with an assistant turn; it must start with a user turn (after an optional system message)") }
                    throw fail("messages[\(i)]: a \(role) turn after a \(previous) turn; turns must alternate user, assistant, …")
                }
                if role == "assistant" && content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    throw fail("messages[\(i)]: the assistant turn is empty")
                }
            default:
                throw fail("messages[\(i)]: unknown role \"\(role)\" (expected system, user or assistant)")
            }
            messages.append(ChatMessage(role: role, content: content))
        }
        guard messages.contains(where: { $0.role == "assistant" }) else { throw fail("no assistant turn to learn") }
        return messages
    }

    /// The rendered conversation cut into prompt and assistant segments: each assistant turn
    /// is what rendering it adds after the conversation so far with the generation prompt,
    /// so it includes the end-of-turn text the template writes after it.
    static func chatSegments(_ messages: [ChatMessage], text: DecoderText, fail: (String) -> TextLinesError) throws -> [(ids: [Int32], target: Bool)] {
        let full = try text.renderChat(messages, addGenerationPrompt: false)
        var cuts: [(start: Int, end: Int)] = []
        for i in messages.indices where messages[i].role == "assistant" {
            let before = try text.renderChat(Array(messages[..<i]), addGenerationPrompt: true)
            let through = try text.renderChat(Array(messages[...i]), addGenerationPrompt: false)
            guard through.hasPrefix(before), full.hasPrefix(through) else {
                throw fail("the chat template does not render this conversation turn by turn (messages[\(i)] changes the text before it), so its assistant tokens cannot be found; use --train-on all")
            }
            cuts.append((before.utf8.count, through.utf8.count))
        }
        let bytes = Array(full.utf8)
        func encode(_ r: Range<Int>) -> [Int32] { text.tokenizer.encode(String(decoding: bytes[r], as: UTF8.self)) }
        var segments: [(ids: [Int32], target: Bool)] = []
        var position = 0
        for cut in cuts {
            if position < cut.start { segments.append((encode(position..<cut.start), false)) }
            segments.append((encode(cut.start..<cut.end), true))
            position = cut.end
        }
        if position < bytes.count { segments.append((encode(position..<bytes.count), false)) }
        return segments
    }
}
