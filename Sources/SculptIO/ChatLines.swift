import Foundation

/// One conversation of a chat JSONL file: `{"messages": [{"role", "content"}, …]}` with an
/// optional `"add_generation_prompt": true|false` (by default true exactly when the last
/// message is the user's).
public struct ChatLine: Sendable {
    public let messages: [ChatMessage]
    public let addGenerationPrompt: Bool
    public let line: Int
}

public enum ChatLines {
    /// Reads every conversation; a malformed one is an error naming the file and line.
    public static func read(_ url: URL) throws -> [ChatLine] {
        try TextLines.readObjects(url).map { line, value in
            func fail(_ reason: String) -> TextLinesError { TextLinesError(file: url.path, line: line, reason: reason) }
            guard let items = value["messages"]?.arrayValue else { throw fail("expected a \"messages\" array") }
            guard !items.isEmpty else { throw fail("\"messages\" is empty") }
            let messages = try items.enumerated().map { i, m -> ChatMessage in
                guard let role = m["role"]?.stringValue, !role.isEmpty else { throw fail("messages[\(i)] has no \"role\" string") }
                guard let content = m["content"]?.stringValue else { throw fail("messages[\(i)] has no \"content\" string") }
                return ChatMessage(role: role, content: content)
            }
            var prompt = messages.last?.role == "user"
            if let v = value["add_generation_prompt"] {
                guard let b = v.boolValue else { throw fail("\"add_generation_prompt\" must be true or false") }
                prompt = b
            }
            return ChatLine(messages: messages, addGenerationPrompt: prompt, line: line)
        }
    }
}
