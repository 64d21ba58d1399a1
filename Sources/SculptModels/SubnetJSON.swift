import Foundation

/// A sub-network description that does not fit the search space, naming the field.
public struct SubnetError: Error, CustomStringConvertible, Equatable {
    public let field: String
    public let message: String
    public var description: String { "sub-network field \"\(field)\": \(message)" }
    public init(field: String, message: String) { self.field = field; self.message = message }
}

/// A value whose one-line JSON form (sorted keys) is how users write and read it.
public protocol CompactJSON: Encodable {}

extension CompactJSON {
    public var json: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// The parsing every sub-network type shares: a JSON object with only known dimensions, and
/// per-layer (or per-stage) integer lists where a single number means "the same everywhere".
public enum SubnetJSONObject {
    public static func parse(_ text: String, known: [String]) throws -> [String: Any] {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw SubnetError(field: "(json)", message: "not a JSON object")
        }
        for key in obj.keys.sorted() where !known.contains(key) {
            throw SubnetError(field: key, message: "unknown dimension (known: \(known.joined(separator: ", ")))")
        }
        return obj
    }

    /// `obj[key]` as a list of integers; a single integer is repeated `count` times.
    public static func integers(_ obj: [String: Any], _ key: String, repeating count: Int) throws -> [Int] {
        guard let v = obj[key] else { throw SubnetError(field: key, message: "missing") }
        if let n = v as? Int { return Array(repeating: n, count: max(count, 0)) }
        guard let a = v as? [Any], let r = a.map({ $0 as? Int }) as? [Int] else {
            throw SubnetError(field: key, message: "must be an integer or a list of integers")
        }
        return r
    }
}
