import Foundation
import SculptIO

/// Tokenisation done once per run: ids go to `cache/tokens-<split>.safetensors` with a
/// fingerprint of the texts and settings, and are reused when the fingerprint matches
/// (a resumed run, a repeated evaluation).
public enum TokenCache {
    public static func tokens(_ texts: [String], tokenizer: WordPieceTokenizer, maxLength: Int,
                              cacheFile: URL?) throws -> [[Int32]] {
        let fingerprint = fingerprintOf(texts, maxLength: maxLength, vocabulary: tokenizer.vocabularySize)
        if let url = cacheFile, let cached = try? load(url, fingerprint: fingerprint, count: texts.count) { return cached }
        let rows = texts.map { tokenizer.encode($0, maxLength: maxLength) }
        if let url = cacheFile {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            var w = SafeTensorsWriter()
            try w.add(name: "ids", int32s: rows.flatMap { $0 }, shape: [rows.reduce(0) { $0 + $1.count }])
            try w.add(name: "lengths", int32s: rows.map { Int32($0.count) }, shape: [rows.count])
            try w.write(to: url, metadata: ["format": "sculpt-tokens", "fingerprint": fingerprint])
        }
        return rows
    }

    static func load(_ url: URL, fingerprint: String, count: Int) throws -> [[Int32]]? {
        let f = try SafeTensorsFile(url: url)
        guard f.metadata["fingerprint"] == fingerprint else { return nil }
        let ids = try f.int32s("ids"), lengths = try f.int32s("lengths")
        guard lengths.count == count, lengths.reduce(0, { $0 + Int($1) }) == ids.count else { return nil }
        var rows: [[Int32]] = []
        var start = 0
        for l in lengths { rows.append(Array(ids[start..<(start + Int(l))])); start += Int(l) }
        return rows
    }

    /// FNV-1a over the settings and every text (with separators), as hex.
    static func fingerprintOf(_ texts: [String], maxLength: Int, vocabulary: Int) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) { for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 } }
        mix("\(maxLength)|\(vocabulary)|\(texts.count)|".utf8)
        for t in texts { mix(t.utf8); mix([0]) }
        return String(h, radix: 16)
    }
}
