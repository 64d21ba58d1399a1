// Errors of the GGUF reader, dequantizer and writer. Every description is a single line that
// names the file (and the key, tensor or field at fault), so the CLI can print it as-is.

/// A GGUF file (or a request made of one) that cannot be honoured.
public enum GGUFError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file could not be opened, inspected or mapped.
    case cannotOpen(file: String, reason: String)
    /// The first four bytes are not "GGUF" (`magic` holds what was there, up to 4 bytes).
    case notGGUF(file: String, magic: [UInt8])
    /// A GGUF version other than 2 or 3.
    case unsupportedVersion(file: String, version: UInt32)
    /// The file ends before `field` (which starts at byte `offset` and needs `needed` bytes) is complete.
    case truncated(file: String, field: String, offset: Int, needed: UInt64, fileSize: Int)
    /// A header field (version, counts, alignment, data section) is invalid.
    case invalidHeader(file: String, reason: String)
    /// A metadata entry is malformed; `key` is the key (or `#index` when the key itself is unreadable).
    case invalidMetadata(file: String, key: String, reason: String)
    /// A tensor info entry is malformed or inconsistent with the file; `tensor` is the name
    /// (or `#index` when the name itself is unreadable).
    case invalidTensor(file: String, tensor: String, reason: String)
    /// A tensor's ggml type number is not one this reader knows.
    case unknownType(file: String, tensor: String, rawValue: UInt32)
    /// The tensor's type is known but cannot be dequantized (or quantized) by this library.
    case unsupportedType(file: String, tensor: String, type: GGMLType)
    /// No tensor of that name.
    case tensorNotFound(file: String, tensor: String)
    /// A bad argument to a free function (`dequantizeRow`, `quantizeRow`).
    case invalidArgument(reason: String)
    /// A request made to `GGUFWriter` (or a quantizer) is inconsistent; `file` is "" before `write`.
    case invalidWrite(file: String, item: String, reason: String)

    public var description: String {
        func q(_ s: String) -> String { StrictJSON.displayQuoted(s) }
        func f(_ s: String) -> String {
            s.isEmpty ? "gguf" : String(StrictJSON.displayQuoted(s, limit: 400).dropFirst().dropLast())
        }
        switch self {
        case .cannotOpen(let file, let reason):
            return "\(f(file)): cannot open GGUF file: \(reason)"
        case .notGGUF(let file, let magic):
            let shown = magic.map { (0x20..<0x7F).contains($0) ? String(UnicodeScalar($0)) : "\\x" + hex2($0) }.joined()
            return "\(f(file)): not a GGUF file (magic \"\(shown)\")"
        case .unsupportedVersion(let file, let version):
            if version == 1 {
                return "\(f(file)): GGUF version 1 is not supported (obsolete 32-bit counts); only versions 2 and 3 are read"
            }
            return "\(f(file)): unsupported GGUF version \(version) (only versions 2 and 3 are read)"
        case .truncated(let file, let field, let offset, let needed, let fileSize):
            return "\(f(file)): truncated: \(field) needs \(needed) bytes at offset \(offset) but the file has \(fileSize) bytes"
        case .invalidHeader(let file, let reason):
            return "\(f(file)): invalid header: \(reason)"
        case .invalidMetadata(let file, let key, let reason):
            return "\(f(file)): metadata key \(key.hasPrefix("#") ? key : q(key)): \(reason)"
        case .invalidTensor(let file, let tensor, let reason):
            return "\(f(file)): tensor \(tensor.hasPrefix("#") ? tensor : q(tensor)): \(reason)"
        case .unknownType(let file, let tensor, let rawValue):
            return "\(f(file)): tensor \(q(tensor)): unknown quantization type \(rawValue)"
        case .unsupportedType(let file, let tensor, let type):
            let who = tensor.isEmpty ? "" : "tensor \(q(tensor)): "
            return "\(f(file)): \(who)type \(type.name) is not supported for (de)quantization"
        case .tensorNotFound(let file, let tensor):
            return "\(f(file)): no tensor named \(q(tensor))"
        case .invalidArgument(let reason):
            return "gguf: \(reason)"
        case .invalidWrite(let file, let item, let reason):
            let prefix = file.isEmpty ? "GGUF writer" : f(file)
            return item.isEmpty ? "\(prefix): \(reason)" : "\(prefix): \(q(item)): \(reason)"
        }
    }

    /// The same error naming `file` instead (used when a parse of in-memory bytes is attributed).
    func withFile(_ file: String) -> GGUFError {
        switch self {
        case .cannotOpen(_, let r): return .cannotOpen(file: file, reason: r)
        case .notGGUF(_, let m): return .notGGUF(file: file, magic: m)
        case .unsupportedVersion(_, let v): return .unsupportedVersion(file: file, version: v)
        case .truncated(_, let fi, let o, let n, let s): return .truncated(file: file, field: fi, offset: o, needed: n, fileSize: s)
        case .invalidHeader(_, let r): return .invalidHeader(file: file, reason: r)
        case .invalidMetadata(_, let k, let r): return .invalidMetadata(file: file, key: k, reason: r)
        case .invalidTensor(_, let t, let r): return .invalidTensor(file: file, tensor: t, reason: r)
        case .unknownType(_, let t, let v): return .unknownType(file: file, tensor: t, rawValue: v)
        case .unsupportedType(_, let t, let ty): return .unsupportedType(file: file, tensor: t, type: ty)
        case .tensorNotFound(_, let t): return .tensorNotFound(file: file, tensor: t)
        case .invalidWrite(_, let i, let r): return .invalidWrite(file: file, item: i, reason: r)
        case .invalidArgument: return self
        }
    }
}

private func hex2(_ b: UInt8) -> String {
    let s = String(b, radix: 16, uppercase: true)
    return s.count == 1 ? "0" + s : s
}
