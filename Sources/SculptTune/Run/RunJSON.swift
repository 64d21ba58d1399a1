import Foundation
import SculptIO

/// The one way a run writes JSON: sorted keys, unescaped slashes (paths stay readable),
/// pretty for documents and compact for JSONL lines; documents are written atomically.
enum RunJSON {
    static func encoder(pretty: Bool) -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    static func write<T: Encodable>(_ value: T, to url: URL) throws {
        try AtomicFile.write(try encoder(pretty: true).encode(value), to: url)
    }
}
