import Foundation
import SculptIO

/// One labelled text with the line it came from.
public struct TextExample: Sendable, Equatable {
    public var text: String
    public var label: String
    public var line: Int
    public init(text: String, label: String, line: Int) {
        self.text = text
        self.label = label
        self.line = line
    }
}

/// Reads labelled texts from JSONL (one object per line) or CSV (a header row naming the
/// columns). The format follows the extension: `.csv` is CSV, anything else JSONL.
public enum TextExamples {
    public static func read(_ url: URL, textField: String = "text", labelField: String = "label") throws -> [TextExample] {
        let path = url.path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw TuneError("\(path): no such file") }
        guard !isDir.boolValue else { throw TuneError("\(path): is a directory, expected a .jsonl or .csv file") }
        let data = try Data(contentsOf: url)
        guard let text = String(data: data, encoding: .utf8) else { throw TuneError("\(path): not valid UTF-8") }
        let examples = url.pathExtension.lowercased() == "csv"
            ? try readCSV(text, file: path, textField: textField, labelField: labelField)
            : try readJSONL(data, file: path, textField: textField, labelField: labelField)
        guard !examples.isEmpty else { throw TuneError("\(path): the dataset is empty (no examples)") }
        return examples
    }

    static func readJSONL(_ data: Data, file: String, textField: String, labelField: String) throws -> [TextExample] {
        var out: [TextExample] = []
        let bytes = [UInt8](data)
        var lineNumber = 0
        var start = 0
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        while start < bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            let line = bytes[start..<end]
            start = end + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let value: StrictJSON.Value
            do { value = try StrictJSON.parse(Array(line)) } catch {
                throw TextLinesError(file: file, line: lineNumber, reason: "malformed JSON (\(error))")
            }
            guard case .object = value else {
                throw TextLinesError(file: file, line: lineNumber, reason: "expected a JSON object, found \(value.kindDescription)")
            }
            guard let t = value[textField] else { throw TextLinesError(file: file, line: lineNumber, reason: "no \"\(textField)\" field") }
            guard let text = t.stringValue else {
                throw TextLinesError(file: file, line: lineNumber, reason: "field \"\(textField)\" is \(t.kindDescription), expected a string")
            }
            guard let l = value[labelField] else { throw TextLinesError(file: file, line: lineNumber, reason: "no \"\(labelField)\" field") }
            let label: String
            switch l {
            case .string(let s): label = s
            case .number(let n) where l.intValue != nil: label = n
            case .bool(let b): label = b ? "true" : "false"
            default:
                throw TextLinesError(file: file, line: lineNumber, reason: "field \"\(labelField)\" is \(l.kindDescription), expected a string or an integer")
            }
            out.append(TextExample(text: text, label: label, line: lineNumber))
        }
        return out
    }

    static func readCSV(_ text: String, file: String, textField: String, labelField: String) throws -> [TextExample] {
        let records = try CSV.parse(text, file: file)
        guard let header = records.first else { return [] }
        guard let ti = header.fields.firstIndex(of: textField) else {
            throw TextLinesError(file: file, line: header.line, reason: "header has no \"\(textField)\" column (columns: \(header.fields.joined(separator: ", ")))")
        }
        guard let li = header.fields.firstIndex(of: labelField) else {
            throw TextLinesError(file: file, line: header.line, reason: "header has no \"\(labelField)\" column (columns: \(header.fields.joined(separator: ", ")))")
        }
        return try records.dropFirst().map { r in
            guard r.fields.count == header.fields.count else {
                throw TextLinesError(file: file, line: r.line, reason: "\(r.fields.count) fields, the header has \(header.fields.count)")
            }
            return TextExample(text: r.fields[ti], label: r.fields[li], line: r.line)
        }
    }
}
