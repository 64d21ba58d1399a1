import Foundation
import Yams

// The one place YAML configs enter (train --config, merge). Yams's `load` trusts the
// document's shape: a mapping key that is itself a mapping or a sequence (`? width: 4`,
// `[a, b]: 4`) traps inside it, and a repeated key silently keeps the last value. This reader
// composes the node tree first, refuses both with the file and the line, and only then
// builds the plain values (`[String: Any]`, `[Any]`, scalars) the config parsers read.

/// A strict YAML reader for config files.
public enum StrictYAML {
    /// Parses the first document of `text`; nil for an empty document. Errors are
    /// `ConfigError`s naming `file` (and the key and line where there is one), on one line.
    public static func load(_ text: String, file: String) throws -> Any? {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            let lines = String(describing: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            throw ConfigError(file: file, key: nil, message: "not valid YAML: \(lines.filter { !$0.isEmpty && $0 != "^" }.joined(separator: " "))")
        }
        guard let root else { return nil }
        try check(root, file: file, path: "")
        return Constructor.default.any(from: root)
    }

    private static func line(_ node: Node) -> String { node.mark.map { "line \($0.line)" } ?? "unknown line" }

    private static func check(_ node: Node, file: String, path: String) throws {
        switch node {
        case .scalar:
            return
        case .sequence(let seq):
            for (i, item) in seq.enumerated() { try check(item, file: file, path: "\(path)[\(i)]") }
        case .mapping(let map):
            var seen: [String: Node] = [:]
            for (key, value) in map {
                guard case .scalar(let scalar) = key else {
                    let kind = key.mapping != nil ? "a mapping" : "a sequence"
                    throw ConfigError(file: file, key: path.isEmpty ? nil : path,
                                      message: "\(line(key)): a key must be a plain name, not \(kind)")
                }
                let name = path.isEmpty ? scalar.string : "\(path).\(scalar.string)"
                if let first = seen[scalar.string] {
                    throw ConfigError(file: file, key: name, message: "\(line(key)): duplicate key (first at \(line(first)))")
                }
                seen[scalar.string] = key
                try check(value, file: file, path: name)
            }
        }
    }
}
