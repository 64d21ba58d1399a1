import Foundation
import SculptIO

/// The class names of a run, index = class id. Saved as `labels.json` so evaluation and
/// prediction map ids back to names exactly as training did.
public struct LabelVocabulary: Codable, Sendable, Equatable {
    public let names: [String]

    public init(names: [String]) { self.names = names }

    /// Sorted label names: numerically when every label is an integer ("2" before "10"),
    /// otherwise lexicographically, so the id of a label never depends on file order.
    public init(collecting labels: some Sequence<String>) {
        let unique = Array(Set(labels))
        if unique.allSatisfy({ Int($0) != nil }) {
            names = unique.sorted { Int($0)! < Int($1)! }
        } else {
            names = unique.sorted()
        }
    }

    public var count: Int { names.count }

    public func id(of label: String) -> Int32? { index[label].map(Int32.init) }

    private var index: [String: Int] { Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) }) }

    /// Class ids of the examples; a label outside the vocabulary is an error naming the line.
    public func ids(of examples: [TextExample], file: String) throws -> [Int32] {
        let idx = index
        return try examples.map { e in
            guard let i = idx[e.label] else {
                throw TextLinesError(file: file, line: e.line,
                                     reason: "unknown label \"\(e.label)\" (the training labels are: \(names.prefix(20).joined(separator: ", ")))")
            }
            return Int32(i)
        }
    }

    public func write(to url: URL) throws {
        try RunJSON.write(self, to: url)
    }

    public static func read(from url: URL) throws -> LabelVocabulary {
        guard let data = try? Data(contentsOf: url) else { throw TuneError("\(url.path): cannot read the label vocabulary") }
        do { return try JSONDecoder().decode(LabelVocabulary.self, from: data) } catch {
            throw TuneError("\(url.path): not a label vocabulary (\(error))")
        }
    }
}
