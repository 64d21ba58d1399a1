// Chat templates: renders a conversation exactly as Hugging Face transformers'
// `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=…)` does, by
// interpreting the model's Jinja template the way transformers compiles it:
// `ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
// extensions=[AssistantTracker, loopcontrols])` with the `raise_exception` and `strftime_now`
// globals and its own `tojson` filter (`json.dumps(..., ensure_ascii=False)`).

import Foundation

/// A chat-template failure. `description` is one line: `<origin>: line <n>: <message>`.
public struct ChatTemplateError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// The template is not valid Jinja (unterminated tag, bad expression, unknown tag).
        case syntax
        /// Valid Jinja that this interpreter does not run (e.g. `{% include %}`), rejected rather
        /// than approximated.
        case unsupported
        /// An error while rendering that Jinja would also raise (undefined attribute access,
        /// type errors, unsafe method calls).
        case runtime
        /// The template called `raise_exception(message)`.
        case raised
        /// A resource limit was hit (output size, nesting or recursion depth, loop iterations).
        case limit
        /// The template file or `tokenizer_config.json` could not be read.
        case io
    }

    public var kind: Kind
    /// The template's file (or `tokenizer_config.json` key) the error belongs to.
    public var origin: String
    public var line: Int?
    public var message: String

    public init(kind: Kind, origin: String, line: Int?, message: String) {
        self.kind = kind
        self.origin = origin
        self.line = line
        self.message = message
    }

    public var description: String {
        let text = kind == .raised ? "raise_exception: " + message : message
        let prefix = PyText.oneLine(origin, limit: 400)
        if let line { return "\(prefix): line \(line): \(PyText.oneLine(text, limit: 600))" }
        return "\(prefix): \(PyText.oneLine(text, limit: 600))"
    }
}

/// One chat message as `apply_chat_template` receives it: `{"role": …, "content": …}` plus any
/// extra string fields (such as `name`), which the template sees as further keys.
public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String
    /// Extra string fields; the template sees them after `role` and `content`, in key order.
    public var extra: [String: String]

    public init(role: String, content: String, extra: [String: String] = [:]) {
        self.role = role
        self.content = content
        self.extra = extra
    }

    /// The message as the dict the template sees.
    public var jinjaValue: JinjaValue {
        var members = [JinjaValue.Member(key: "role", value: .string(role)),
                       JinjaValue.Member(key: "content", value: .string(content))]
        for key in extra.keys.sorted() where key != "role" && key != "content" {
            members.append(JinjaValue.Member(key: key, value: .string(extra[key] ?? "")))
        }
        return .object(members)
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        role = try c.decode(String.self, forKey: Key(stringValue: "role"))
        content = try c.decode(String.self, forKey: Key(stringValue: "content"))
        var extra: [String: String] = [:]
        for key in c.allKeys where key.stringValue != "role" && key.stringValue != "content" {
            extra[key.stringValue] = try c.decode(String.self, forKey: key)
        }
        self.extra = extra
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(role, forKey: Key(stringValue: "role"))
        try c.encode(content, forKey: Key(stringValue: "content"))
        for key in extra.keys.sorted() where key != "role" && key != "content" {
            try c.encode(extra[key], forKey: Key(stringValue: key))
        }
    }
}

/// A parsed chat template, ready to render conversations. Parsing happens once, in `init`.
public struct ChatTemplate: Sendable {
    /// The template text.
    public let source: String
    /// Where the template came from (a file path), named in every error.
    public let origin: String
    let nodes: [JinjaNode]
    /// Resource limits of each render (tests lower them).
    var limits = JinjaLimits()

    /// Parses `source`. Throws `ChatTemplateError` (`.syntax` or `.unsupported`) naming `origin`,
    /// the line and the construct for anything the interpreter cannot run faithfully.
    public init(source: String, origin: String) throws {
        self.source = source
        self.origin = origin
        do {
            nodes = try JinjaParser.parse(source)
        } catch let e as JinjaError {
            throw ChatTemplateError(kind: e.kind, origin: origin, line: e.line, message: e.message)
        }
    }

    /// The model's chat template: `chat_template.jinja` if present, else `tokenizer_config.json`'s
    /// `chat_template` (a string, or a list of `{"name", "template"}` of which "default" is used),
    /// else nil.
    public static func load(modelDirectory: URL) throws -> ChatTemplate? {
        let jinja = modelDirectory.appendingPathComponent("chat_template.jinja")
        if FileManager.default.fileExists(atPath: jinja.path) {
            guard let data = FileManager.default.contents(atPath: jinja.path) else {
                throw ChatTemplateError(kind: .io, origin: jinja.path, line: nil, message: "cannot read the file")
            }
            return try ChatTemplate(source: decodeUTF8(data), origin: jinja.path)
        }
        let configURL = modelDirectory.appendingPathComponent("tokenizer_config.json")
        guard let config = try readConfig(configURL) else { return nil }
        switch config["chat_template"] {
        case nil, .null?:
            return nil
        case .string(let s)?:
            return try ChatTemplate(source: s, origin: configURL.path + " (chat_template)")
        case .array(let entries)?:
            for entry in entries {
                guard case .string(let name)? = entry["name"], case .string(let template)? = entry["template"] else {
                    throw ChatTemplateError(kind: .io, origin: configURL.path, line: nil,
                                            message: "\"chat_template\": each entry must have string \"name\" and \"template\"")
                }
                if name == "default" {
                    return try ChatTemplate(source: template, origin: configURL.path + " (chat_template \"default\")")
                }
            }
            throw ChatTemplateError(kind: .io, origin: configURL.path, line: nil,
                                    message: "\"chat_template\": several named templates and none is named \"default\"")
        case let other?:
            throw ChatTemplateError(kind: .io, origin: configURL.path, line: nil,
                                    message: "\"chat_template\": expected a string or a list, found \(other.kindDescription)")
        }
    }

    /// The special tokens `apply_chat_template` passes to the template (`bos_token`, `eos_token`,
    /// `unk_token`, `pad_token`, `sep_token`, `cls_token`, `mask_token`) as set in the model's
    /// `tokenizer_config.json` (plain strings or `{"content": …}` objects); empty if there is none.
    public static func specialTokens(modelDirectory: URL) throws -> [String: String] {
        let configURL = modelDirectory.appendingPathComponent("tokenizer_config.json")
        guard let config = try readConfig(configURL) else { return [:] }
        var out: [String: String] = [:]
        for key in ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"] {
            switch config[key] {
            case .string(let s)?: out[key] = s
            case .object?:
                if case .string(let s)? = config[key]?["content"] { out[key] = s }
            default: break
            }
        }
        return out
    }

    private static func decodeUTF8(_ data: Data) -> String {
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func readConfig(_ url: URL) throws -> StrictJSON.Value? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ChatTemplateError(kind: .io, origin: url.path, line: nil, message: "cannot read the file")
        }
        do {
            return try StrictJSON.parse([UInt8](data), options: .lenientText)
        } catch {
            throw ChatTemplateError(kind: .io, origin: url.path, line: nil, message: "not valid JSON: \(error)")
        }
    }

    /// Renders `messages` as `apply_chat_template(messages, tokenize=False,
    /// add_generation_prompt=…)` does. `bosToken`/`eosToken` become `bos_token`/`eos_token` (left
    /// undefined when nil); `extraContext` adds or overrides template variables (for example
    /// `date_string`, `pad_token`, `enable_thinking`); `now` is what `strftime_now` reports.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String?, eosToken: String?,
                       extraContext: [String: JinjaValue] = [:], now: Date = Date()) throws -> String {
        try render(messageValues: messages.map(\.jinjaValue), addGenerationPrompt: addGenerationPrompt,
                   bosToken: bosToken, eosToken: eosToken, extraContext: extraContext, now: now)
    }

    /// Renders arbitrary message objects (for tool calls: `tool_calls`, `tool` roles, list
    /// content) with optional `tools` (JSON schemas) and `documents`, which are `None` when nil,
    /// as in transformers.
    public func render(messageValues: [JinjaValue], addGenerationPrompt: Bool, bosToken: String?, eosToken: String?,
                       tools: [JinjaValue]? = nil, documents: [JinjaValue]? = nil,
                       extraContext: [String: JinjaValue] = [:], now: Date = Date()) throws -> String {
        var context: [String: JinjaRuntimeValue] = [:]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        for (k, v) in extraContext {
            if ["messages", "tools", "documents", "add_generation_prompt"].contains(k) {
                throw ChatTemplateError(kind: .runtime, origin: origin, line: nil,
                                        message: "extraContext must not set \"\(k)\" (it is a render argument)")
            }
            context[k] = JinjaRuntimeValue(v)
        }
        context["messages"] = .list(messageValues.map(JinjaRuntimeValue.init))
        context["tools"] = tools.map { .list($0.map(JinjaRuntimeValue.init)) } ?? JinjaRuntimeValue.none
        context["documents"] = documents.map { .list($0.map(JinjaRuntimeValue.init)) } ?? JinjaRuntimeValue.none
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        return try run(context, now: now)
    }

    /// Renders with exactly these template variables (no defaults added).
    func render(context: [String: JinjaValue], now: Date) throws -> String {
        try run(context.mapValues(JinjaRuntimeValue.init), now: now)
    }

    private func run(_ context: [String: JinjaRuntimeValue], now: Date) throws -> String {
        let interpreter = JinjaInterpreter(limits: limits, now: now.timeIntervalSince1970)
        do {
            return try interpreter.render(nodes, context: context)
        } catch let e as JinjaError {
            throw ChatTemplateError(kind: e.kind, origin: origin, line: e.line, message: e.message)
        }
    }
}
