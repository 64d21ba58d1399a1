import Foundation

/// A problem reading a text/JSONL input file; the description is one line naming the file and,
/// when it applies, the 1-based line number (`path:line: reason`).
public struct TextLinesError: Error, CustomStringConvertible, Sendable {
    public let file: String
    /// 1-based line number, or nil for a problem with the whole file.
    public let line: Int?
    public let reason: String

    public init(file: String, line: Int?, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String {
        if let line { return "\(file):\(line): \(reason)" }
        return "\(file): \(reason)"
    }
}

/// Reads the input texts of a file, one text per record, for the CLI.
///
/// Format detection: if the first line that is not blank parses as a JSON object, the file is
/// JSONL and every non-blank line must be a JSON object whose `field` is a string (blank lines
/// are skipped). Otherwise it is plain text with one text per line.
///
/// Plain text rules (like Python's `f.read().split("\n")` minus the final empty piece): lines
/// end at "\n"; a trailing "\r" is removed; the empty piece after a final newline is not a
/// line; every other line, empty ones included, is kept verbatim (an empty line encodes as
/// `[CLS] [SEP]`). A UTF-8 byte-order mark at the start is ignored. Bytes that are not valid
/// UTF-8 are an error naming the line.
public enum TextLines {
    public static func read(_ url: URL, field: String = "text") throws -> [String] {
        let path = url.path
        let bytes = try readBytes(url)
        let lines = splitLines(bytes)

        // Detect the format from the first non-blank line.
        var isJSONL = false
        for range in lines where !isBlank(bytes[range]) {
            if case .object? = try? parseJSON(Array(bytes[range])) { isJSONL = true }
            break
        }

        var texts: [String] = []
        texts.reserveCapacity(lines.count)
        for (index, range) in lines.enumerated() {
            let lineNumber = index + 1
            let slice = bytes[range]
            if isJSONL {
                if isBlank(slice) { continue }
                let value: StrictJSON.Value
                do {
                    value = try parseJSON(Array(slice))
                } catch {
                    throw TextLinesError(file: path, line: lineNumber, reason: "not valid JSON (\(error))")
                }
                guard case .object = value else {
                    throw TextLinesError(file: path, line: lineNumber, reason: "expected a JSON object but found \(value.kindDescription)")
                }
                guard let item = value[first: field] else {
                    throw TextLinesError(file: path, line: lineNumber, reason: "no \"\(field)\" field")
                }
                guard let text = item.stringValue else {
                    throw TextLinesError(file: path, line: lineNumber, reason: "field \"\(field)\" is \(item.kindDescription), expected a string")
                }
                texts.append(text)
            } else {
                let text = String(decoding: slice, as: UTF8.self)
                guard text.utf8.elementsEqual(slice) else {
                    throw TextLinesError(file: path, line: lineNumber, reason: "not valid UTF-8")
                }
                texts.append(text)
            }
        }
        return texts
    }

    /// The file's bytes, or an error naming it (missing, a directory, unreadable).
    static func readBytes(_ url: URL) throws -> [UInt8] {
        let path = url.path
        do {
            return [UInt8](try Data(contentsOf: url))
        } catch {
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                throw TextLinesError(file: path, line: nil, reason: "no such file")
            }
            if isDirectory.boolValue { throw TextLinesError(file: path, line: nil, reason: "is a directory, not a file") }
            throw TextLinesError(file: path, line: nil, reason: "cannot be read (\(error.localizedDescription))")
        }
    }

    /// Every non-blank line of a JSONL file as a JSON object, with its 1-based line number.
    public static func readObjects(_ url: URL) throws -> [(line: Int, value: StrictJSON.Value)] {
        let bytes = try readBytes(url)
        var out: [(Int, StrictJSON.Value)] = []
        for (index, range) in splitLines(bytes).enumerated() where !isBlank(bytes[range]) {
            let value: StrictJSON.Value
            do { value = try parseJSON(Array(bytes[range])) } catch {
                throw TextLinesError(file: url.path, line: index + 1, reason: "not valid JSON (\(error))")
            }
            guard case .object = value else {
                throw TextLinesError(file: url.path, line: index + 1, reason: "expected a JSON object but found \(value.kindDescription)")
            }
            out.append((index + 1, value))
        }
        return out
    }

    /// Parses one JSONL line: a byte-order mark is skipped and invalid Unicode in strings
    /// becomes U+FFFD.
    private static func parseJSON(_ bytes: [UInt8]) throws -> StrictJSON.Value {
        try StrictJSON.parse(bytes, maxDepth: 512, options: .lenientText)
    }

    /// Byte ranges of the lines: split at "\n", trailing "\r" dropped, BOM skipped, and no
    /// empty last line after a final newline.
    static func splitLines(_ bytes: [UInt8]) -> [Range<Int>] {
        var start = 0
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { start = 3 }
        var ranges: [Range<Int>] = []
        var lineStart = start
        var i = start
        while i < bytes.count {
            if bytes[i] == 0x0A {
                ranges.append(lineStart..<trimCR(bytes, lineStart, i))
                lineStart = i + 1
            }
            i += 1
        }
        if lineStart < bytes.count { ranges.append(lineStart..<trimCR(bytes, lineStart, bytes.count)) }
        return ranges
    }

    private static func trimCR(_ bytes: [UInt8], _ start: Int, _ end: Int) -> Int {
        end > start && bytes[end - 1] == 0x0D ? end - 1 : end
    }

    private static func isBlank(_ slice: ArraySlice<UInt8>) -> Bool {
        slice.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    }
}

/// "0.5, 0.75,1" as numbers (finite, spaces allowed); nil when any item is not one.
public func commaSeparatedNumbers(_ text: String) -> [Double]? {
    let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
    guard values.allSatisfy({ $0?.isFinite == true }) else { return nil }
    return values.map { $0! }
}
