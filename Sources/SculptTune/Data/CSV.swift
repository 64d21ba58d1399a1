import Foundation
import SculptIO

/// A minimal RFC 4180 CSV reader: comma-separated fields, fields in double quotes may hold
/// commas, newlines and doubled quotes (`""`). Records end at LF or CRLF. Written here because
/// Foundation has none and text datasets often come as CSV.
public enum CSV {
    /// One record with the 1-based line on which it starts (for error messages).
    public struct Record: Sendable, Equatable {
        public var fields: [String]
        public var line: Int
    }

    /// Parses the whole text. Blank lines are skipped. A quote left open is an error naming
    /// the line where the field started.
    public static func parse(_ text: String, file: String = "<csv>") throws -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var afterQuote = false      // just closed a quoted field: only a separator may follow
        var line = 1, recordLine = 1, quoteLine = 1
        var scalars = text.unicodeScalars[...]
        if scalars.first == "\u{FEFF}" { scalars = scalars.dropFirst() }

        func endRecord() {
            fields.append(field)
            field = ""
            if !(fields.count == 1 && fields[0].isEmpty) { records.append(Record(fields: fields, line: recordLine)) }
            fields = []
        }

        var it = scalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        while let c = pending ?? it.next() {
            pending = nil
            if inQuotes {
                if c == "\"" {
                    if let n = it.next() {
                        if n == "\"" { field.unicodeScalars.append("\"") } else { inQuotes = false; afterQuote = true; pending = n }
                    } else { inQuotes = false; afterQuote = true }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case ",":
                fields.append(field); field = ""; afterQuote = false
            case "\n":
                endRecord(); line += 1; recordLine = line; afterQuote = false
            case "\r":
                continue  // CRLF: the LF ends the record
            case "\"" where field.isEmpty && !afterQuote:
                inQuotes = true; quoteLine = line
            default:
                if afterQuote {
                    throw TextLinesError(file: file, line: line, reason: "unexpected character after a closing quote")
                }
                field.unicodeScalars.append(c)
            }
        }
        if inQuotes { throw TextLinesError(file: file, line: quoteLine, reason: "quoted field is never closed") }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }
}
